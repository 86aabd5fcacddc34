"""Pragmas in MSL: which ones a shader may use, and what becomes of the loop unroll hints among them.

Pragmas never reach the host compiler as written (they could change how it builds the module: optimisation
levels, target options, instrumentation). Loop and diagnostic hints, which production MSL uses, are accepted; the
unroll hints travel on as marker identifiers that the translation makes CUDA's ``#pragma unroll``, as Metal's
compiler honours clang's loop pragmas."""
from __future__ import annotations

from .lexer import IDENT, Token, tokenize

# Pragmas that only hint at loops or diagnostics, which production MSL uses; other GCC and clang pragmas could
# change how the module is compiled (optimisation levels, target options, instrumentation).
_HARMLESS_COMPILER_PRAGMAS = {"clang": frozenset({"loop", "diagnostic", "unroll", "nounroll"}),
                              "GCC": frozenset({"unroll", "ivdep", "diagnostic"})}


def refused_pragma(args: list[Token]) -> str | None:
    """Why the pragma ``#pragma <args>`` is refused, or None. Pragmas are otherwise not passed on."""
    if len(args) < 2 or args[0].text not in _HARMLESS_COMPILER_PRAGMAS:
        return None
    if args[1].text in _HARMLESS_COMPILER_PRAGMAS[args[0].text]:
        return None
    return (f"'#pragma {args[0].text} {args[1].text}' is refused: it could change how the host compiler builds "
            "the shader, and Metal does not have it (loop hints such as '#pragma unroll' and "
            "'#pragma clang loop' are accepted)")


def unroll_hint(args: list[Token]) -> str | None:
    """The unrolling a loop pragma asks for: "" (unroll fully), a count ("4"; "1" for none), or None when ``args``
    (``#pragma <args>``) is no unroll hint. Spellings: ``unroll``, ``unroll N``, ``nounroll``, ``GCC unroll N``,
    ``clang loop unroll(full|enable|disable)`` and ``clang loop unroll_count(N)``."""
    texts = [t.text for t in args]
    if texts[:1] == ["nounroll"] or texts[:2] == ["clang", "nounroll"]:
        return "1"
    if texts[:1] == ["unroll"] or texts[:2] in (["clang", "unroll"], ["GCC", "unroll"]):
        rest = texts[1:] if texts[0] == "unroll" else texts[2:]
        rest = [t for t in rest if t not in "()"]
        if not rest:
            return ""
        return rest[0] if len(rest) == 1 and rest[0].isdigit() and int(rest[0]) > 0 else None
    if texts[:2] == ["clang", "loop"]:
        for i, text in enumerate(texts[2:-3], start=2):
            if texts[i + 1] != "(" or texts[i + 3] != ")":
                continue
            value = texts[i + 2]
            if text == "unroll":
                return {"full": "", "enable": "", "disable": "1"}.get(value)
            if text == "unroll_count" and value.isdigit() and int(value) > 0:
                return value
    return None


def refused_pragma_operator(literal: Token) -> str | None:
    """Why ``_Pragma(literal)`` is refused, or None."""
    if literal.text.startswith(("R", "u", "U", "L")):
        return "_Pragma takes an ordinary string literal"
    return refused_pragma(pragma_tokens(literal))


def pragma_tokens(literal: Token) -> list[Token]:
    """The tokens of the pragma ``_Pragma(literal)`` stands for."""
    text = literal.text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return tokenize(text, literal.file)


# A loop's unroll hint, as one identifier: the translation makes it a pragma where the target's compiler takes it
# (CUDA: `#pragma unroll` and its count), as Metal's compiler does with clang's loop pragmas.
UNROLL_MARKER = "__metalgpu_unroll"


def unroll_marker(at: Token, hint: str) -> Token:
    return Token(IDENT, f"{UNROLL_MARKER}_{hint or 'full'}", at.file, at.line, at.column, True, False)


def place_unroll_hints(tokens: list[Token], texts: list[str], target: str) -> None:
    """Loop unroll pragmas, which the preprocessor keeps as marker identifiers: CUDA's `#pragma unroll` on cuda,
    nothing on the cpu, where g++ chooses (its `#pragma GCC unroll` must precede a loop, which a hint in MSL need
    not)."""
    prefix = UNROLL_MARKER + "_"
    for i, tok in enumerate(tokens):
        if tok.kind == IDENT and tok.text.startswith(prefix):
            count = tok.text[len(prefix):]
            texts[i] = "" if target != "cuda" else f'_Pragma("unroll{"" if count == "full" else " " + count}")'

"""The outline of a translation unit: its declarations at namespace and class scope, read for the rewrites that
work on declarations rather than tokens.

This is no C++ parser either: one scan splits namespace and class scope into declarations by bracket matching
and reads, for each, what the translator compares or rewrites: its template heads, whether it declares a class
(and that class's body, scanned in turn) or a function, and a function's name, parameter list, the qualifiers
after it and its body. Function bodies are not looked into. All spans are token indices.
"""
from __future__ import annotations

from dataclasses import dataclass

from .lexer import IDENT, PUNCT, STRING, Token

CLASS_KEYS = frozenset({"struct", "class", "union", "enum"})
# Words followed by a parenthesised argument that is not a parameter list.
SKIPPED_CALLS = frozenset({"decltype", "__attribute__", "alignas", "sizeof", "alignof", "noexcept", "static_assert",
                           "__declspec", "requires"})


@dataclass(frozen=True)
class Declaration:
    start: int                 # first token, template heads included
    end: int                   # index after its last token (the `;` or the body's `}`)
    scope: tuple[str, ...]     # enclosing namespaces and classes, outermost first ("" for unnamed ones)
    in_class: bool             # declared in a class body
    in_extern_c: bool          # declared inside extern "C" { }
    templates: tuple[tuple[int, int], ...]  # each `template <...>` head: its `template` token .. after its `>`
    is_instantiation: bool     # `template` not followed by `<`: an explicit instantiation
    kind: str                  # "function", "class" or "other"
    name: tuple[int, int] | None = None      # the declarator-id (qualified, template arguments included)
    params: tuple[int, int] | None = None    # a function's `(` and `)`
    trailing: tuple[int, int] | None = None  # after the `)`: cv, address spaces, ref, noexcept, -> type
    body: tuple[int, int] | None = None      # the `{` and `}` of a function or class body

    @property
    def head_start(self) -> int:
        """The first token after the template heads (and after `template` of an explicit instantiation)."""
        if self.templates:
            return self.templates[-1][1]
        return self.start + 1 if self.is_instantiation else self.start


def bracket_partners(tokens: list[Token]) -> list[int]:
    """For each `(`, `[`, `{` and its closer, the index of its partner; -1 for other tokens. The parser has
    already refused unbalanced brackets, so a stray closer here is left unmatched."""
    match = [-1] * len(tokens)
    stack: list[int] = []
    for i, tok in enumerate(tokens):
        if tok.kind != PUNCT:
            continue
        if tok.text in ("(", "[", "{"):
            stack.append(i)
        elif tok.text in (")", "]", "}") and stack:
            opener = stack.pop()
            match[opener], match[i] = i, opener
    return match


def call_arguments(tokens: list[Token], match: list[int], opener: int) -> list[tuple[int, int]] | None:
    """The [begin, end) token ranges of the arguments between the `(` at ``opener`` and its partner (brackets
    inside skipped whole); None where a comma's role is unclear: a `<` or `>` may open or close template
    arguments, whose commas do not separate the call's."""
    close = match[opener]
    if close < 0:
        return None
    arguments, begin, k = [], opener + 1, opener + 1
    while k < close:
        text = tokens[k].text
        if tokens[k].kind == PUNCT and text in ("(", "[", "{") and match[k] > k:
            k = match[k] + 1
            continue
        if tokens[k].kind == PUNCT and text in ("<", ">"):
            return None
        if text == ",":
            arguments.append((begin, k))
            begin = k + 1
        k += 1
    if begin < close:
        arguments.append((begin, close))
    return arguments


def skip_angles(tokens: list[Token], match: list[int], i: int, end: int) -> int:
    """From the `<` at ``i``, the index after its closing `>` (``end`` or a `;` if there is none)."""
    depth = 0
    while i < end:
        text = tokens[i].text
        if text in ("(", "[", "{") and match[i] > i:
            i = match[i]
        elif text == "<":
            depth += 1
        elif text in (">", ">>"):
            depth -= len(text)
            if depth <= 0:
                return i + 1
        elif text in (";", "}"):
            return i
        i += 1
    return end


def angle_start(tokens: list[Token], match: list[int], i: int, low: int = 0) -> int:
    """From the `>` at ``i``, walking back, the index of its `<` (``low - 1`` if there is none)."""
    depth = 0
    while i >= low:
        text = tokens[i].text
        if text in (")", "]", "}") and 0 <= match[i] < i:
            i = match[i]
        elif text in (">", ">>"):
            depth += len(text)
        elif text == "<":
            depth -= 1
            if depth <= 0:
                return i
        i -= 1
    return low - 1


def template_parameters(tokens: list[Token], match: list[int], head: tuple[int, int]) -> list[tuple[str, str]]:
    """The named parameters of the `template <...>` head ``head``, as (kind, name) with kind "type", "value",
    "pack" (of types or values) or "template"."""
    start, end = head[0] + 2, head[1] - 1
    pieces, piece, i = [], start, start
    while i < end:
        text = tokens[i].text
        if text == "<":
            i = skip_angles(tokens, match, i, end)
            continue
        if text in ("(", "[", "{") and match[i] > i:
            i = match[i]
        elif text == ",":
            pieces.append(tokens[piece:i])
            piece = i + 1
        i += 1
    pieces.append(tokens[piece:end])
    params = []
    for words in pieces:
        texts = [t.text for t in words]
        texts = texts[:texts.index("=")] if "=" in texts else texts
        names = [t for t in texts if t not in ("typename", "class") and (t[:1].isalpha() or t[:1] == "_")]
        if not texts:
            continue
        if texts[0] == "template":
            kind = "template"
        elif texts[0] in ("typename", "class") and len([t for t in texts if t != "..."]) <= 2:
            kind = "pack" if "..." in texts else "type"
        else:
            kind = "pack" if "..." in texts else "value"
            names = names[1:]  # the first word names the parameter's type
        if names and kind != "template":
            params.append((kind, names[-1]))
        elif kind == "template" and texts[-1] not in ("class", "typename", ">"):
            params.append((kind, texts[-1]))
    return params


class _Scanner:
    def __init__(self, tokens: list[Token], match: list[int]):
        self.tokens = tokens
        self.match = match
        self.found: list[Declaration] = []

    def text(self, i: int) -> str:
        return self.tokens[i].text if 0 <= i < len(self.tokens) else ""

    def scope(self, i: int, end: int, scope: tuple[str, ...], in_class: bool, in_extern_c: bool) -> None:
        """Scan the declarations of one namespace or class body, ``tokens[i:end]``."""
        while i < end:
            text = self.text(i)
            if text == ";":
                i += 1
            elif in_class and text in ("public", "private", "protected") and self.text(i + 1) == ":":
                i += 2
            elif text == "namespace" or (text == "inline" and self.text(i + 1) == "namespace"):
                i = self.namespace(i, end, scope, in_extern_c)
            elif text == "extern" and self.tokens[i + 1].kind == STRING and self.text(i + 2) == "{":
                close = self.match[i + 2]
                self.scope(i + 3, close, (*scope, ""), False, True)
                i = close + 1
            elif text == "}":  # a stray closer: nothing more in this scope
                return
            else:
                i = self.declaration(i, end, scope, in_class, in_extern_c)

    def namespace(self, i: int, end: int, scope: tuple[str, ...], in_extern_c: bool) -> int:
        names, j = [], i
        while j < end and self.text(j) not in ("{", ";", "="):
            if self.tokens[j].kind == IDENT and self.text(j) not in ("namespace", "inline"):
                names.append(self.text(j))
            j += 1
        if self.text(j) != "{":  # an alias: namespace a = b;
            while j < end and self.text(j) != ";":
                j += 1
            return j + 1
        close = self.match[j]
        self.scope(j + 1, close, (*scope, "::".join(names)), False, in_extern_c)
        return close + 1

    def declaration(self, start: int, end: int, scope: tuple[str, ...], in_class: bool, in_extern_c: bool) -> int:
        """Read one declaration from ``start``, record it, and return the index after it."""
        tokens, match = self.tokens, self.match
        i, templates, instantiation = start, [], False
        while self.text(i) == "template":
            if self.text(i + 1) != "<":
                instantiation = True
                i += 1
                break
            close = skip_angles(tokens, match, i + 1, end)
            templates.append((i, close))
            i = close
        head = i
        name = params = trailing = body = None
        class_key = None
        class_name = ""
        seen_equals = False
        j = i
        while j < end:
            text = self.text(j)
            if text == ";":
                break
            if text == "}":  # the scope ends without a `;`: the parser has let it through
                j -= 1
                break
            if text == "[" and self.text(j + 1) == "[":
                j = match[j] + 1
                continue
            if tokens[j].kind == IDENT and text in SKIPPED_CALLS and self.text(j + 1) == "(":
                j = match[j + 1] + 1
                continue
            if text == "operator" and params is None and not seen_equals:
                opening = self.operator_end(j, end)
                if self.text(opening) != "(" or opening >= end:  # no parameter list: C++ refuses it, not we
                    j += 1
                    continue
                name = (self.name_start(j, head), opening)
                params, j = self.parameters(opening, end)
                trailing = (params[1] + 1, j)
                continue
            if text == "(" and params is None and not seen_equals and class_key is None and self.names_before(j):
                name = (self.name_start(j - 1, head), j)
                params, j = self.parameters(j, end)
                trailing = (params[1] + 1, j)
                continue
            if text in ("(", "["):
                j = match[j] + 1
                continue
            if text == "<" and j > head and (tokens[j - 1].kind == IDENT or self.text(j - 1) == ">"):
                j = skip_angles(tokens, match, j, end)
                continue
            if text == "=":
                seen_equals = True
            elif text in CLASS_KEYS and params is None and not seen_equals and class_key is None:
                class_key = j
                class_name, name = self.class_name(j + 1, end)
            elif text == ":" and params is not None and not seen_equals:
                j = self.constructor_initializers(j + 1, end)
                continue
            elif text == "{":
                if class_key is not None and not seen_equals and params is None and body is None:
                    body = (j, match[j])
                    if self.text(class_key) != "enum":
                        self.scope(j + 1, match[j], (*scope, class_name), True, False)
                    j = match[j] + 1
                    continue
                if params is not None and not seen_equals:
                    body = (j, match[j])
                    j = match[j]
                    break
                j = match[j] + 1  # an initializer
                continue
            j += 1
        stop = min(j + 1, end)
        kind = "class" if class_key is not None and params is None else "function" if params is not None else "other"
        self.found.append(Declaration(start, stop, scope, in_class, in_extern_c, tuple(templates), instantiation,
                                      kind, name, params, trailing, body))
        return stop

    def names_before(self, paren: int) -> bool:
        """Is the `(` at ``paren`` a parameter list: does a name (or a template-id) come just before it?"""
        before = self.tokens[paren - 1] if paren > 0 else None
        if before is None:
            return False
        if before.kind == IDENT:
            return before.text not in SKIPPED_CALLS and before.text not in CLASS_KEYS
        if before.text == ">":
            opener = angle_start(self.tokens, self.match, paren - 1)
            return opener > 0 and self.tokens[opener - 1].kind == IDENT
        return False

    def name_start(self, last: int, low: int) -> int:
        """The first token of the qualified name whose last token is at ``last`` (`ns::S<T>::f`, `~S`)."""
        i = last
        while True:
            if self.text(i) in (">", ">>"):
                opener = angle_start(self.tokens, self.match, i, low)
                if opener <= low:
                    return i
                i = opener - 1
            if self.text(i - 1) == "~":
                i -= 1
            if i - 2 >= low and self.text(i - 1) == "::" and (self.tokens[i - 2].kind == IDENT
                                                            or self.text(i - 2) in (">", ">>")):
                i -= 2
                continue
            if i - 1 >= low and self.text(i - 1) == "::":  # ::name
                i -= 1
            return i

    def operator_end(self, i: int, end: int) -> int:
        """From `operator` at ``i``, the index of the `(` that opens its parameters."""
        j = i + 1
        if self.text(j) == "(" and self.text(j + 1) == ")":
            return j + 2
        if self.text(j) == "[" and self.text(j + 1) == "]":
            return j + 2
        while j < end and self.text(j) != "(":
            if self.text(j) == "<" and self.tokens[j - 1].kind == IDENT and j > i + 1:
                j = skip_angles(self.tokens, self.match, j, end)
                continue
            j += 1
        return j

    def parameters(self, opening: int, end: int) -> tuple[tuple[int, int], int]:
        """The parameter list opened at ``opening``, and the index where its trailing part ends: the body's `{`,
        `;`, `=` or the `:` of constructor initializers."""
        close = max(opening, self.match[opening])
        j = close + 1
        while j < end and self.text(j) not in ("{", ";", "=", ":", "}"):
            if self.text(j) in ("(", "[") and self.match[j] > j:
                j = self.match[j] + 1
            elif self.text(j) == "<" and self.tokens[j - 1].kind == IDENT:
                j = skip_angles(self.tokens, self.match, j, end)
            else:
                j += 1
        return (opening, close), j

    def constructor_initializers(self, j: int, end: int) -> int:
        """After the `:` of a constructor, the index of its body's `{` (member initializers may use braces)."""
        while j < end:
            text = self.text(j)
            if text == "{" and not (self.tokens[j - 1].kind == IDENT or self.text(j - 1) == ">"):
                return j
            if text in ("(", "[", "{") and self.match[j] > j:
                j = self.match[j] + 1
            elif text == "<" and self.tokens[j - 1].kind == IDENT:
                j = skip_angles(self.tokens, self.match, j, end)
            elif text == ";":
                return j
            else:
                j += 1
        return j

    def class_name(self, j: int, end: int) -> tuple[str, tuple[int, int] | None]:
        """After a class key: the class's name and the span of its name with template arguments, if any."""
        while j < end:
            text = self.text(j)
            if text == "[" and self.text(j + 1) == "[":
                j = self.match[j] + 1
            elif text in ("alignas", "__attribute__") and self.text(j + 1) == "(":
                j = self.match[j + 1] + 1
            elif self.tokens[j].kind == IDENT and text not in ("class", "struct"):  # enum class X
                last = j
                while self.text(last + 1) == "::" and self.tokens[last + 2].kind == IDENT:
                    last += 2
                stop = last + 1
                if self.text(stop) == "<":
                    stop = skip_angles(self.tokens, self.match, stop, end)
                return self.text(last), (j, stop)
            else:
                return "", None
        return "", None


def scan(tokens: list[Token], match: list[int] | None = None) -> list[Declaration]:
    """Every declaration at namespace and class scope, in source order (a class before its members). ``match``:
    bracket_partners(tokens), if the caller has it."""
    scanner = _Scanner(tokens, bracket_partners(tokens) if match is None else match)
    scanner.scope(0, len(tokens), (), False, False)
    return sorted(scanner.found, key=lambda d: d.start)

"""What the launch wrappers need to know about a kernel's body: whether its threads cooperate (below), and which
of its inputs it streams (``streamed_inputs``, at the end).

Which kernels need the cooperative runner on the CPU backend.

A kernel runs its threads one after another (``mg::for_each_thread``, a loop the compiler can vectorise) unless
it, or a function it reaches, uses something that makes threads of a threadgroup wait for or talk to each other:
barriers, SIMD-group and quad-group functions, or threadgroup memory. Those kernels run as cooperative fibers
(``mg::run_cooperative``, metal/_cooperative_cpu.h).

This is a conservative token scan, not a C++ analysis: every function definition in the program is found by
bracket matching and named by the identifier before its parameter list (members also under their class's name);
a kernel reaches every definition whose name appears anywhere in a body it reaches. When unsure (a definition
whose name cannot be read, an operator overload), a body that uses one of the features makes every kernel
cooperative. Overestimating costs only speed; underestimating would give wrong results.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .lexer import IDENT, Token
from .parser import KernelDecl, Program

TRIGGER_WORDS = frozenset({"threadgroup_barrier", "simdgroup_barrier", "threadgroup", "threadgroup_imageblock",
                           "__metal_get_thread_index_in_simdgroup"})
TRIGGER_PREFIXES = ("simd_", "quad_", "simdgroup_", "__metal_simd_")  # the last: the builtins behind simd_*
_NOT_NAMES = frozenset({"decltype", "__attribute__", "alignas", "sizeof", "noexcept", "alignof", "if", "for",
                        "while", "switch", "return", "static_assert"})
_CLASS_WORDS = ("struct", "class", "union")
_UNNAMED = ""  # definitions whose name could not be read


def is_trigger(token: Token) -> bool:
    return token.kind == IDENT and (token.text in TRIGGER_WORDS or token.text.startswith(TRIGGER_PREFIXES))


def _is_feature(tokens: list[Token], k: int) -> bool:
    """Is ``tokens[k]`` a trigger where it stands? `threadgroup` declares threadgroup memory only where it starts
    the declaration of storage: not after a member function's parameter list (`f() const threadgroup`, MLX's
    complex.h), and not in a pointer or reference type (`threadgroup T& operator+=(threadgroup T& a, ...)`), which
    reaches memory declared elsewhere (a parameter or a variable, which count)."""
    if not is_trigger(tokens[k]):
        return False
    if tokens[k].text != "threadgroup":
        return True
    if k and tokens[k - 1].text in (")", "const", "volatile"):
        return False
    angles = 0
    for tok in tokens[k + 1:k + 64]:
        text = tok.text
        if text == "<":
            angles += 1
        elif text in (">", ">>"):
            angles -= len(text)
        elif angles <= 0 and text in ("*", "&", "&&"):
            return False
        elif angles <= 0 and text in (";", "=", "[", ",", "(", ")", "{"):
            return True
    return True


@dataclass
class _Definitions:
    by_name: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # name -> token ranges

    def add(self, name: str, span: tuple[int, int]) -> None:
        self.by_name.setdefault(name, []).append(span)


def cooperative_kernels(tokens: list[Token], program: Program) -> list[bool]:
    """For each kernel of ``program`` (in order), whether it needs the cooperative runner."""
    definitions = _find_definitions(tokens)
    unsure = any(_uses_feature(tokens, span) for name in (_UNNAMED, "operator")
                 for span in definitions.by_name.get(name, ()))
    return [unsure or _kernel_needs(tokens, kernel, definitions) for kernel in program.kernels]


def function_definitions(tokens: list[Token]) -> dict[str, list[tuple[int, int]]]:
    """Every function definition outside function bodies by the name it defines (members also under their class's
    name; "" for those whose name could not be read): the token ranges from its declaration's start to its `}`."""
    return _find_definitions(tokens).by_name


def _kernel_needs(tokens: list[Token], kernel: KernelDecl, definitions: _Definitions) -> bool:
    if any(p.address_space == "threadgroup" or p.binding == "threadgroup" for p in kernel.params):
        return True
    if kernel.body is None:
        return True
    pending = [kernel.body]
    seen_spans: set[tuple[int, int]] = set()
    seen_names: set[str] = set()
    while pending:
        span = pending.pop()
        if span in seen_spans:
            continue
        seen_spans.add(span)
        for k in range(span[0], span[1]):
            tok = tokens[k]
            if tok.kind != IDENT:
                continue
            if _is_feature(tokens, k):
                return True
            if tok.text in definitions.by_name and tok.text not in seen_names:
                seen_names.add(tok.text)
                pending.extend(definitions.by_name[tok.text])
    return False


def _uses_feature(tokens: list[Token], span: tuple[int, int]) -> bool:
    return any(_is_feature(tokens, k) for k in range(span[0], span[1]))


def _find_definitions(tokens: list[Token]) -> _Definitions:
    """Every function definition outside function bodies (namespace scope and class members), with its span from
    the start of its declaration to its closing brace."""
    found = _Definitions()
    scopes: list[tuple[str, str]] = []  # (kind, class name); kind: "function", "class", "block", "other"
    open_definition: tuple[int, list[str]] | None = None  # the function whose body the scan is in
    statement_start = 0
    parens = 0
    for i, tok in enumerate(tokens):
        text = tok.text
        if tok.kind == IDENT:
            continue
        if text in ("(", "["):
            parens += 1
        elif text in (")", "]"):
            parens -= 1
        elif text == ";" and parens == 0:
            statement_start = i + 1
        elif text == "{":
            if open_definition is not None:
                scopes.append(("block", ""))
            else:
                kind, name = _classify(tokens[statement_start:i])
                if kind == "function":
                    classes = [n for k, n in scopes if k == "class" and n]
                    open_definition = (statement_start, [name, *classes])
                scopes.append((kind, name))
            statement_start = i + 1
        elif text == "}":
            if scopes:
                kind, _ = scopes.pop()
                if kind == "function" and open_definition is not None:
                    start, names = open_definition
                    for name in names:
                        found.add(name, (start, i + 1))
                    open_definition = None
            statement_start = i + 1
    return found


def _classify(head: list[Token]) -> tuple[str, str]:
    """What the `{` after ``head`` opens: ("class", name), ("function", name) or ("other", "")."""
    texts = [t.text for t in head]
    if "(" not in texts and any(word in texts for word in _CLASS_WORDS):
        keyword = max(k for k, t in enumerate(texts) if t in _CLASS_WORDS)
        name = next((t.text for t in head[keyword + 1:] if t.kind == IDENT and t.text != "alignas"), "")
        return "class", name
    if "(" in texts and texts[-1] != "=" and "namespace" not in texts:
        return "function", _definition_name(head)
    return "other", ""


def _definition_name(head: list[Token]) -> str:
    """The identifier before the first parameter list of a definition's head (skipping decltype(...) and the
    like); "operator" for operators; for `auto f = [](...) {`, the variable; else _UNNAMED."""
    angles = parens = 0
    for k, tok in enumerate(head):
        text = tok.text
        if parens:
            parens += (text == "(") - (text == ")")
            continue
        if text == "<":
            angles += 1
        elif text == ">" and angles:
            angles -= 1
        elif text == ">>" and angles:
            angles = max(0, angles - 2)
        if text != "(" or angles:
            continue
        before = head[k - 1] if k else None
        if any(t.text == "operator" for t in head[max(0, k - 3):k]):
            return "operator"
        if before is not None and before.kind == IDENT and before.text in _NOT_NAMES:
            parens = 1  # skip its argument list
            continue
        if before is not None and before.kind == IDENT:
            return before.text
        break
    texts = [t.text for t in head]
    if "=" in texts:
        equals = texts.index("=")
        if equals and head[equals - 1].kind == IDENT:
            return head[equals - 1].text
    return _UNNAMED


def streamed_inputs(tokens: list[Token], kernel: KernelDecl) -> list[int]:
    """Parameter indices of the kernel's read-only buffer pointers that its own body reads at the thread's 1-D grid
    position (``in[id]`` with ``uint id [[thread_position_in_grid]]``): the CUDA wrapper prefetches those into L2
    for the threadgroups a block runs next. A wrong guess costs only bandwidth: a prefetch changes no result."""
    if kernel.body is None:
        return []
    positions = {p.name for p in kernel.params
                 if p.builtin == "thread_position_in_grid" and not re.search(r"[234]\s*$|<", p.type_text)}
    inputs = {p.name: j for j, p in enumerate(kernel.params)
              if p.binding == "buffer" and p.is_pointer
              and (p.address_space == "constant" or re.search(r"\bconst\b", p.type_text))}
    if not positions or not inputs:
        return []
    body = tokens[kernel.body[0]:kernel.body[1]]
    found = {inputs[a.text] for a, b, c, d in zip(body, body[1:], body[2:], body[3:])
             if a.kind == IDENT and a.text in inputs and b.text == "[" and c.kind == IDENT and c.text in positions
             and d.text == "]"}
    return sorted(found)

"""Address spaces on declarations: what erasing them must not break.

The token pass (translate._rewrite) erases Metal's address spaces: `device`, `thread` and `threadgroup` vanish
and `constant` becomes `const`. C++ has one address space, so the rest is done here, on declarations:

- one `const` per qualifier sequence: `constant const T&`, `const constant T&` and
  `static constant constexpr const T x` keep a single `const` (C++ refuses a duplicate);
- a constructor or destructor qualified by an address space (`S() device = default;`) loses it: C++ allows no
  qualifier there, and every object now lives in the one address space;
- declarations that differ only by address space (`S() thread = default; S() device = default;`, `T get() const
  device` and `T get() const thread`, `f(thread T&)` and `f(device T&)`, `pointer_element<device T*>` and
  `pointer_element<thread T*>`) would be redefinitions once erased: of each such family one variant is kept.
  Declarations are compared by their scope, template heads, name, parameter types (names and default arguments
  aside), return type (templates only, as C++ does) and the qualifiers after the parameters, each as it reads
  after erasure; variants whose erased forms still differ (a non-const `thread` and a `const device` conversion
  operator) are all kept. The rule: a variant that defines the function (a body, `= default` or `= delete`)
  wins over one that only declares it; then the one whose address spaces come first in the order thread,
  device, threadgroup, constant (a `thread` object is what a plain C++ object is); then the first in the source.
  The same rule picks the same variant for a member's declaration in the class and its definition outside.
- `coherent(system)` and `coherent(device)` pointer qualifiers vanish (memory is coherent on every target here);
  `volatile` stays.
"""
from __future__ import annotations

from bisect import bisect_right

from .lexer import IDENT, PUNCT, Token
from .outline import Declaration, angle_start, skip_angles

ADDRESS_SPACES = ("thread", "device", "threadgroup", "constant")  # also the order of preference between variants
_SPECIFIERS = frozenset({"inline", "static", "constexpr", "explicit", "virtual", "friend", "METAL_FUNC", "MG_FUNC",
                         "MG_KERNEL", "extern", "__forceinline__", "__device__", "__host__"})
_CV = frozenset({"const", "volatile", *ADDRESS_SPACES})
CONSTANT_DATA = "MG_CONSTANT_DATA"  # what the token pass puts before a program-scope `constant`


def rewrite(tokens: list[Token], texts: list[str], declarations: list[Declaration], match: list[int]) -> None:
    """Finish erasing address spaces in ``texts`` (the text emitted for each token) on ``declarations``."""
    _merge_const(tokens, texts, match)
    _drop_coherent(tokens, texts, match)
    _constant_data_only_on_variables(tokens, texts, declarations, match)
    for declaration in declarations:
        if declaration.kind == "function" and _is_constructor(tokens, declaration):
            start, end = declaration.trailing
            for k in range(start, end):
                if _erased(tokens, texts, k):
                    texts[k] = ""
    _drop_erased_duplicates(tokens, texts, declarations, match)


def _erased(tokens: list[Token], texts: list[str], k: int) -> bool:
    """Is token ``k`` an address space that the token pass rewrote (not `thread_scope::device`, a name)?"""
    return tokens[k].text in ADDRESS_SPACES and texts[k] != tokens[k].text


# -- qualifiers ---------------------------------------------------------------------------------------------------

def _qualifier_run(tokens: list[Token], match: list[int], k: int) -> range:
    """The decl-specifiers (or trailing qualifiers) around token ``k``: names, `::` and template argument lists,
    up to the first other punctuator on each side (`*`, `&`, `,`, `(`, `)`, `;`, `{`, `=`, ...)."""
    low = k
    while low > 0:
        before = tokens[low - 1]
        if before.kind == IDENT or before.text == "::":
            low -= 1
        elif before.text in (">", ">>"):
            opener = angle_start(tokens, match, low - 1)
            if opener <= 0 or tokens[opener - 1].kind != IDENT:
                break
            low = opener - 1
        else:
            break
    high = k + 1
    while high < len(tokens):
        tok = tokens[high]
        if tok.kind == IDENT or tok.text == "::":
            high += 1
        elif tok.text == "<" and tokens[high - 1].kind == IDENT:
            high = skip_angles(tokens, match, high, len(tokens))
        else:
            break
    return range(low, high)


def _merge_const(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    for k, tok in enumerate(tokens):
        if tok.text != "constant" or tok.kind != IDENT or not texts[k].endswith("const"):
            continue
        run = _qualifier_run(tokens, match, k)
        if any(texts[j] == "const" and j != k and tokens[j].text in ("const", "constant") for j in run):
            texts[k] = texts[k][:-len("const")].rstrip()


def _constant_data_only_on_variables(tokens: list[Token], texts: list[str], declarations: list[Declaration],
                                     match: list[int]) -> None:
    """The token pass marks `constant` at namespace scope as program-scope data (MG_CONSTANT_DATA: `__constant__`
    on CUDA); only a variable's own specifiers keep it, not a type inside template arguments
    (`E<constant T*>`), an alias (`using P = constant float*;`) or a class or function declaration."""
    marked = [k for k, text in enumerate(texts) if text.startswith(CONSTANT_DATA)]
    if not marked:
        return
    starts = [d.start for d in declarations]
    for k in marked:
        index = bisect_right(starts, k) - 1
        while index >= 0 and declarations[index].end <= k:
            index -= 1
        declaration = declarations[index] if index >= 0 else None
        if declaration is not None and _declares_program_scope_variable(tokens, match, declaration, k):
            continue
        texts[k] = texts[k][len(CONSTANT_DATA):].lstrip()


def _declares_program_scope_variable(tokens: list[Token], match: list[int], declaration: Declaration,
                                     k: int) -> bool:
    if declaration.kind != "other" or declaration.in_class:
        return False
    j = declaration.head_start
    while j < k:
        text = tokens[j].text
        if text in ("using", "typedef", "=", "(", "{"):
            return False
        if text == "<" and j > 0 and tokens[j - 1].kind == IDENT:
            close = skip_angles(tokens, match, j, k + 1)
            if close > k:
                return False  # inside template arguments
            j = close
            continue
        j += 1
    return True


def _drop_coherent(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    """`coherent(system) device T*`: the qualifier goes; a call of a function named `coherent` stays."""
    for k, tok in enumerate(tokens[:-1]):
        if tok.text != "coherent" or tok.kind != IDENT:
            continue
        following = tokens[k + 1]
        if following.text in ADDRESS_SPACES:
            texts[k] = ""
        elif following.text == "(" and match[k + 1] == k + 3 and tokens[k + 2].kind == IDENT \
                and k + 4 < len(tokens) and tokens[k + 4].kind == IDENT:
            texts[k] = texts[k + 1] = texts[k + 2] = texts[k + 3] = ""


def _is_constructor(tokens: list[Token], declaration: Declaration) -> bool:
    """Does ``declaration`` declare a constructor or destructor (in its class, or `S::S` outside)?"""
    start, end = declaration.name
    names = [k for k in range(start, end) if tokens[k].kind == IDENT]
    if not names or tokens[start].text == "operator" or declaration.trailing is None:
        return False
    if any(tokens[k].text == "~" for k in range(start, end)):
        return True
    depth, components = 0, []  # the names outside template argument lists
    for k in range(start, end):
        text = tokens[k].text
        depth += (text == "<") - (text == ">") - 2 * (text == ">>")
        if depth == 0 and tokens[k].kind == IDENT:
            components.append(text)
    if declaration.in_class and components == [declaration.scope[-1]]:
        return True
    return len(components) >= 2 and components[-1] == components[-2]


# -- variants that differ only by address space --------------------------------------------------------------------

def _drop_erased_duplicates(tokens: list[Token], texts: list[str], declarations: list[Declaration],
                            match: list[int]) -> None:
    families: dict[tuple, list[tuple[tuple, Declaration]]] = {}
    for declaration in declarations:
        erased = _signature(tokens, declaration, match, lambda k: texts[k])
        if erased is None:
            continue
        written = _signature(tokens, declaration, match, lambda k: tokens[k].text)
        families.setdefault(erased, []).append((written, declaration))
    for members in families.values():
        variants: dict[tuple, list[Declaration]] = {}
        for written, declaration in members:
            variants.setdefault(written, []).append(declaration)
        if len(variants) < 2:
            continue
        kept = min(variants, key=lambda variant: _preference(tokens, texts, variants[variant]))
        for written, declaration in members:
            if written != kept:
                for k in range(declaration.start, declaration.end):
                    texts[k] = ""


def _preference(tokens: list[Token], texts: list[str], variant: list[Declaration]) -> tuple:
    """Smaller is preferred: a variant that defines the function, then its address spaces, then source order."""
    defines = any(_defines(tokens, texts, d) for d in variant)
    return not defines, _ranks(tokens, texts, variant[0]), variant[0].start


def _signature(tokens: list[Token], declaration: Declaration, match: list[int], word) -> tuple | None:
    """What makes two declarations the same entity in C++, read through ``word(k)`` (erased or written text);
    None for declarations that are never compared (kernels, variables, non-specialised classes)."""
    d = declaration
    heads = tuple(_spell(tokens, range(*head), word) for head in d.templates)
    if d.kind == "class":
        if d.body is None or d.name is None or "<" not in {tokens[k].text for k in range(*d.name)}:
            return None
        return "class", d.scope, heads, _spell(tokens, range(*d.name), word)
    if d.kind != "function" or d.is_instantiation or d.name is None:
        return None
    head = range(d.head_start, d.name[0])
    if any(tokens[k].text == "kernel" or word(k) == "MG_KERNEL" for k in head):
        return None
    returned = _spell(tokens, [k for k in head if tokens[k].text not in _SPECIFIERS], word) if d.templates else ""
    opening, close = d.params
    params = tuple(_parameter_type(tokens, piece, word) for piece in _split(tokens, match, opening + 1, close))
    trailing = _spell(tokens, range(*d.trailing), word)
    return "function", d.scope, heads, _spell(tokens, range(*d.name), word), returned, params, trailing


def _spell(tokens: list[Token], indices, word) -> str:
    """The words of ``indices``, attributes left out, with single spaces."""
    parts, skip_to = [], -1
    for k in indices:
        if k < skip_to:
            continue
        if tokens[k].text == "[" and k + 1 < len(tokens) and tokens[k + 1].text == "[":
            depth, j = 0, k
            while j < len(tokens):
                depth += (tokens[j].text == "[") - (tokens[j].text == "]")
                j += 1
                if depth == 0:
                    break
            skip_to = j
            continue
        text = word(k)
        if text:
            parts.append(text)
    return " ".join(parts)


def _split(tokens: list[Token], match: list[int], start: int, end: int) -> list[range]:
    """The comma-separated pieces of ``tokens[start:end]`` (brackets and template arguments kept whole)."""
    pieces, piece, i = [], start, start
    while i < end:
        text = tokens[i].text
        if text in ("(", "[", "{") and match[i] > i:
            i = match[i] + 1
            continue
        if text == "<" and i > start and tokens[i - 1].kind == IDENT:
            i = skip_angles(tokens, match, i, end)
            continue
        if text == ",":
            pieces.append(range(piece, i))
            piece = i + 1
        i += 1
    if end > start:
        pieces.append(range(piece, end))
    return pieces


def _parameter_type(tokens: list[Token], piece: range, word) -> str:
    """A parameter's type: its name, default argument and attributes left out."""
    indices = list(piece)
    equals = next((n for n, k in enumerate(indices) if tokens[k].text == "=" and tokens[k].kind == PUNCT), None)
    if equals is not None:
        indices = indices[:equals]
    last = len(indices) - 1
    while last >= 0 and tokens[indices[last]].text == "]":  # array bounds after the name
        depth = 0
        while last >= 0:
            text = tokens[indices[last]].text
            depth += (text == "]") - (text == "[")
            last -= 1
            if depth == 0:
                break
    if last >= 1 and tokens[indices[last]].kind == IDENT and tokens[indices[last]].text not in _CV:
        before = [tokens[k] for k in indices[:last]]
        if any(t.kind == IDENT and t.text not in _CV for t in before) or before[-1].text in ("*", "&", "&&", ">"):
            indices = indices[:last] + indices[last + 1:]
    return _spell(tokens, indices, word)


def _defines(tokens: list[Token], texts: list[str], declaration: Declaration) -> bool:
    if declaration.body is not None:
        return True
    trailing_end = declaration.trailing[1] if declaration.trailing else declaration.end
    return trailing_end + 1 < declaration.end and tokens[trailing_end].text == "=" \
        and tokens[trailing_end + 1].text in ("default", "delete")


def _ranks(tokens: list[Token], texts: list[str], declaration: Declaration) -> tuple[int, ...]:
    """The address spaces a declaration's signature names, each as its place in ADDRESS_SPACES."""
    end = declaration.body[0] if declaration.body is not None else declaration.end
    return tuple(ADDRESS_SPACES.index(tokens[k].text) for k in range(declaration.start, end)
                 if _erased(tokens, texts, k))

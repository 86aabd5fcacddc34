"""C++ that Apple's compiler (clang) accepts and g++ or NVRTC refuse, rewritten to what both accept with the same
meaning.

- An explicit specialisation of a member function template at class scope (`template <> R f(args) {...}` inside a
  class; CWG 727, which g++ does not implement) whose template arguments are deduced from its parameters becomes a
  plain overload: for a call whose arguments have the specialisation's parameter types, C++ prefers the
  non-template to the template (that is what such a specialisation is for); a call naming its template arguments
  (`s.f<float>(x)`) would reach the primary template instead.
- GNU range designators (`float s[N] = { [0 ... N-1] = x };`) in a function body: the array is declared with
  `{}` (every element zero, as C leaves the ones no designator names) and each designator becomes an assignment
  after the declaration, a range a loop over one value evaluated once, as GNU C does.
- An out-of-class definition of a `static constexpr` data member (`constexpr int S::x;`) is dropped: since C++17
  such a member is inline and the definition redundant, and NVRTC refuses it with the `__constant__` that a
  program-scope `constant` gets. Other out-of-class definitions of static data members keep their initialiser
  and lose `__constant__`, which CUDA refuses on a class member.
- A class of the shader's own that converts to `float` or `double` gets a conversion to the CPU's `half` as well.
  g++ 13 and later give `_Float16` C++23's rules in every language mode: float converts to it only explicitly, so
  `static_cast<half>(x)` and `half h = x` find no way through the class's `operator float` (MLX's `fp8_e8m0`). The
  added operator is a template that only the compiler's own 16-bit float selects (there is none on CUDA, where
  `half` is a class constructed from float), so every other conversion picks what it picked before.
"""
from __future__ import annotations

from .lexer import IDENT, PUNCT, Token
from .outline import Declaration

CONSTANT_DATA = "MG_CONSTANT_DATA"


def rewrite(tokens: list[Token], texts: list[str], declarations: list[Declaration], match: list[int]) -> None:
    _float16_conversions(tokens, texts, declarations)
    for declaration in declarations:
        if declaration.kind == "function":
            _member_specialisation(tokens, texts, declaration)
            if declaration.body is not None:
                _range_designators(tokens, texts, match, declaration.body)
        elif declaration.kind == "other" and not declaration.in_class:
            _static_member_definition(tokens, texts, declaration)


def _member_specialisation(tokens: list[Token], texts: list[str], declaration: Declaration) -> None:
    if not declaration.in_class or not declaration.templates:
        return
    template, after = declaration.templates[-1]
    if after - template != 3:  # not `template < >`
        return
    if any(tokens[k].text == "<" for k in range(*declaration.name)) and tokens[declaration.name[0]].text != "operator":
        return  # explicit template arguments (`f<0>`): no overload can stand for it
    for k in range(template, after):
        texts[k] = ""


_FLOAT_TYPES = ("float", "double")
_FLOAT16_NAMES = frozenset({"half", "_Float16", "half_t"})


def _float16_conversions(tokens: list[Token], texts: list[str], declarations: list[Declaration]) -> None:
    """Before the first `operator float()` (or `double`) of each class, a template conversion to _Float16 through
    it, with the same `explicit` and `const`; not in a class that converts to half itself."""
    bodies = sorted(d.body for d in declarations if d.kind == "class" and d.body is not None)
    conversions: dict[tuple[int, int], list[tuple[Declaration, str]]] = {}
    for declaration in declarations:
        if declaration.kind != "function" or not declaration.in_class or declaration.name is None:
            continue
        first, end = declaration.name
        if end - first != 2 or tokens[first].text != "operator":
            continue
        owner = max((b for b in bodies if b[0] < declaration.start < b[1]), default=None)
        if owner is not None:
            conversions.setdefault(owner, []).append((declaration, tokens[first + 1].text))
    for members in conversions.values():
        targets = [target for _, target in members]
        if any(target in _FLOAT16_NAMES for target in targets):
            continue
        to_float = [(d, target) for d, target in members if target in _FLOAT_TYPES and not d.templates]
        if not to_float:
            continue
        target = "float" if "float" in (t for _, t in to_float) else "double"
        variants = [d for d, t in to_float if t == target]
        consts = {_is_const(tokens, d) for d in variants}
        explicit = any(tokens[k].text == "explicit" for d in variants for k in range(d.head_start, d.name[0]))
        added = " ".join(
            "template <class MgFloat16, ::mg::detail::enable_if_t<::mg::detail::is_builtin_float16<MgFloat16>::value,"
            f" int> = 0> constexpr {'explicit ' if explicit else ''}operator MgFloat16() {'const' if const else ''} "
            f"{{ return static_cast<MgFloat16>(static_cast<{target}>(*this)); }}"
            for const in sorted(consts))
        first = variants[0].start
        texts[first] = f"{added} {texts[first]}"


def _is_const(tokens: list[Token], declaration: Declaration) -> bool:
    return declaration.trailing is not None and any(tokens[k].text == "const" for k in range(*declaration.trailing))


def _static_member_definition(tokens: list[Token], texts: list[str], declaration: Declaration) -> None:
    """`[template <...>] constexpr T S::x;` at namespace scope: dropped; `T S::x = v;`: no __constant__."""
    start, end = declaration.head_start, declaration.end
    words = [tokens[k].text for k in range(start, end)]
    if "::" not in words or any(w in words for w in ("(", "using", "typedef", "namespace", "friend")):
        return
    declarator = next((k for k in range(start, end) if tokens[k].text in ("=", "{", "[", ";")), end)
    if declarator < start + 2 or tokens[declarator - 2].text != "::" or tokens[declarator - 1].kind != IDENT:
        return  # not a qualified name just before the initialiser
    if "constexpr" in words and tokens[declarator].text in (";", "[") \
            and not any(tokens[k].text in ("=", "{") for k in range(declarator, end)):
        for k in range(declaration.start, end):
            texts[k] = ""
        return
    for k in range(start, declarator):
        if texts[k].startswith(CONSTANT_DATA):
            texts[k] = texts[k][len(CONSTANT_DATA):].lstrip()


def _range_designators(tokens: list[Token], texts: list[str], match: list[int], body: tuple[int, int]) -> None:
    k = body[0] + 1
    while k < body[1]:
        if tokens[k].text == "{" and match[k] > k > 0 and tokens[k - 1].text == "=":
            designators = _designators(tokens, match, k)
            if designators is not None and any(len(d) == 3 for d in designators):
                _assign_after(tokens, texts, match, k, designators)
            k = match[k] + 1
            continue
        k += 1


def _designators(tokens: list[Token], match: list[int], brace: int) -> list[tuple] | None:
    """The items of the initialiser list at ``brace`` if each is `[a] = v` or `[a ... b] = v`: each as token
    ranges (a, v) or (a, b, v); None otherwise."""
    items, k, close = [], brace + 1, match[brace]
    while k < close:
        if tokens[k].text != "[" or match[k] < k or tokens[match[k] + 1].text != "=":
            return None
        bound_end, value = match[k], match[k] + 2
        ellipsis = next((j for j in range(k + 1, bound_end) if tokens[j].text == "..."), None)
        stop = value
        while stop < close and tokens[stop].text != ",":
            stop = match[stop] + 1 if tokens[stop].text in ("(", "[", "{") and match[stop] > stop else stop + 1
        if value == stop:
            return None
        if ellipsis is None:
            items.append((range(k + 1, bound_end), range(value, stop)))
        else:
            items.append((range(k + 1, ellipsis), range(ellipsis + 1, bound_end), range(value, stop)))
        k = stop + 1
    return items


def _assign_after(tokens: list[Token], texts: list[str], match: list[int], brace: int, designators: list) -> None:
    """Declare the array with `{}` and assign the designated elements after its `;` (a non-const array of a
    declaration that declares only it)."""
    close = match[brace]
    if close + 1 >= len(tokens) or tokens[close + 1].text != ";":
        return
    name = brace - 2
    while name > 0 and tokens[name].text == "]":  # array bounds
        name = match[name] - 1
    statement = name
    while statement > 0 and not (tokens[statement - 1].kind == PUNCT and tokens[statement - 1].text in (";", "{", "}")):
        statement -= 1
    head = {tokens[j].text for j in range(statement, name)}
    if tokens[name].kind != IDENT or head & {"const", "constexpr", "constant", ","}:
        return

    def spelled(indices: range) -> str:
        return "(" + " ".join(texts[j] for j in indices if texts[j]) + ")"

    array, statements = tokens[name].text, []
    for item in designators:
        if len(item) == 2:
            statements.append(f"{array}[{spelled(item[0])}] = {spelled(item[1])};")
        else:
            first, last, value = (spelled(r) for r in item)
            statements.append(f"{{ const auto mg_value = {value}; for (long mg_i = {first}; mg_i <= {last}; ++mg_i) "
                              f"{array}[mg_i] = mg_value; }}")
    for j in range(brace + 1, close):
        texts[j] = ""
    texts[close + 1] += " " + " ".join(statements)

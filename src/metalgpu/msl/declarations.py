"""The type declarations of a preprocessed MSL translation unit, read for laying out structs (``structs.py``).

One scan over the tokens records, by qualified name, what every namespace and struct scope declares: structs,
classes and unions (their member declarations, bases and ``alignas``), typedefs and ``using`` aliases, enums,
templates of structs and aliases (with explicit specialisations), and integer constants (``constexpr``
variables, enumerators, ``static constexpr`` members) for array bounds. Function bodies and everything else are
skipped by bracket matching; names are looked up as C++ does, from the innermost scope outwards.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError
from .lexer import IDENT, PUNCT, Token

_SKIPPED_MEMBERS = frozenset({"friend", "static_assert", "operator"})
_TYPE_OPERATORS = frozenset({"decltype", "__typeof__", "typeof"})  # their parentheses make no function


@dataclass
class Template:
    params: list[tuple[str, bool, list[Token]]]  # name, is a type parameter, default argument tokens


@dataclass
class Struct:
    name: str                  # qualified, with template arguments for an explicit specialisation
    scope: tuple[str, ...]     # where its member types are looked up (its own qualified name)
    is_union: bool
    tokens: list[Token]        # the token list that holds the body
    body: tuple[int, int]      # tokens[start:end] is the text between the braces
    bases: list[list[Token]]
    align: list[Token] | None  # alignas(...) of the struct itself
    template: Template | None = None
    where: Token | None = None


@dataclass
class Alias:
    scope: tuple[str, ...]     # the scope the aliased type is spelled in
    type_tokens: list[Token]
    dims: list[list[Token]] = field(default_factory=list)  # typedef float row[4];
    template: Template | None = None


@dataclass
class Enum:
    scope: tuple[str, ...]
    underlying: list[Token] | None


@dataclass
class Constant:
    scope: tuple[str, ...]
    tokens: list[Token] | None  # None: an enumerator one more than the previous one
    previous: str | None = None


@dataclass
class Field:
    type_tokens: list[Token]
    declarators: list[tuple[Token, bool, list[list[Token]]]]  # name, is a pointer, array bounds
    align: list[Token] | None


def matching(tokens: list[Token]) -> dict[int, int]:
    """Index of the closing bracket of every (, [ and { ."""
    pairs, stack = {}, []
    for i, tok in enumerate(tokens):
        if tok.kind != PUNCT:
            continue
        if tok.text in "([{":
            stack.append(i)
        elif tok.text in ")]}" and stack:
            pairs[stack.pop()] = i
    return pairs


def angle_end(tokens: list[Token], i: int, end: int, match: dict[int, int]) -> int:
    """Index just past the ``>`` that closes the ``<`` at ``i`` (``>>`` closes two)."""
    depth, k = 0, i
    while k < end:
        text = tokens[k].text
        if text in ("(", "[", "{"):
            k = match.get(k, end - 1)
        elif text == "<":
            depth += 1
        elif text in (">", ">>"):
            depth -= len(text)
            if depth <= 0:
                return k + 1
        k += 1
    return end


def split_commas(tokens: list[Token]) -> list[list[Token]]:
    parts, current, depth = [], [], 0
    for tok in tokens:
        if tok.text in ("(", "[", "{", "<"):
            depth += 1
        elif tok.text in (")", "]", "}", ">"):
            depth -= 1
        elif tok.text == ">>":
            depth -= 2
        if tok.text == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        parts.append(current)
    return parts


def spell(tokens: list[Token]) -> str:
    text = " ".join(tok.text for tok in tokens)
    return re.sub(r"\s*(::|<|>|,|\(|\)|\[|\])\s*", lambda m: m[1] + " " if m[1] == "," else m[1], text).strip()


def skip_declaration(tokens: list[Token], i: int, end: int, match: dict[int, int]) -> int:
    """Index just past the declaration that starts at ``i``: its ``;``, or a function body's ``}``."""
    seen_call = seen_equals = init_list = False
    k = i
    while k < end:
        tok = tokens[k]
        if tok.text == ";":
            return k + 1
        if tok.text == "=":
            seen_equals = True
        elif tok.text == ":" and seen_call:
            init_list = True  # a constructor's member initialisers: y{b} is no body
        elif tok.text in ("(", "["):
            seen_call = seen_call or tok.text == "("
            k = match.get(k, end - 1) + 1
            continue
        elif tok.text == "{":
            close = match.get(k, end - 1)
            before = tokens[k - 1]
            if seen_call and not seen_equals and not (init_list and (before.kind == IDENT or before.text == ">")):
                return close + 1
            k = close + 1
            continue
        k += 1
    return end

class Declarations:
    """What a translation unit declares, by qualified name."""

    def __init__(self, tokens: list[Token]):
        self.structs: dict[str, Struct] = {}
        self.aliases: dict[str, Alias] = {}
        self.enums: dict[str, Enum] = {}
        self.constants: dict[str, Constant] = {}
        self.using_namespaces: dict[tuple[str, ...], list[str]] = {}
        self.scan(tokens, 0, len(tokens), (), matching(tokens))

    # ----- scanning declarations --------------------------------------------------------------------------

    def scan(self, tokens: list[Token], i: int, end: int, scope: tuple[str, ...], match: dict[int, int],
              members: list | None = None) -> None:
        """Record the declarations of tokens[i:end] in ``scope``; inside a struct body, append its data
        members to ``members``."""
        while i < end:
            text = tokens[i].text
            if text in (";", "__extension__"):
                i += 1
            elif text in ("public", "private", "protected") and i + 1 < end and tokens[i + 1].text == ":":
                i += 2
            elif text == "namespace":
                i = self._namespace(tokens, i, end, scope, match)
            elif text == "inline" and i + 1 < end and tokens[i + 1].text == "namespace":
                i += 1
            elif text == "extern" and i + 1 < end and tokens[i + 1].kind == "string":
                i += 2
                if i < end and tokens[i].text == "{":
                    self.scan(tokens, i + 1, match[i], scope, match, members)
                    i = match[i] + 1
            elif text == "template":
                i = self._template(tokens, i, end, scope, match, members)
            elif text == "using":
                i = self._using(tokens, i, end, scope, match, None)
            elif text == "typedef":
                i = self._typedef(tokens, i, end, scope, match)
            elif text in ("struct", "class", "union", "enum"):
                i = self._tagged(tokens, i, end, scope, match, members, None)
            else:
                stop = skip_declaration(tokens, i, end, match)
                self._declaration(tokens[i:stop], scope, members)
                i = stop

    def _namespace(self, tokens, i, end, scope, match) -> int:
        names, k = [], i + 1
        while k < end and tokens[k].text not in ("{", "=", ";"):
            if tokens[k].kind == IDENT and tokens[k].text != "inline":
                names.append(tokens[k].text)
            k += 1
        if k < end and tokens[k].text == "{":
            self.scan(tokens, k + 1, match[k], scope + tuple(names), match)
            return match[k] + 1
        return skip_declaration(tokens, i, end, match)

    def _template(self, tokens, i, end, scope, match, members) -> int:
        if i + 1 >= end or tokens[i + 1].text != "<":  # an explicit instantiation
            return skip_declaration(tokens, i, end, match)
        close = angle_end(tokens, i + 1, end, match)
        params = []
        for part in split_commas(tokens[i + 2:close - 1]):
            default = []
            if any(t.text == "=" for t in part):
                cut = next(n for n, t in enumerate(part) if t.text == "=")
                part, default = part[:cut], part[cut + 1:]
            names = [t for t in part if t.kind == IDENT]
            if not names or any(t.text == "..." for t in part):
                params = None  # variadic or unusual parameters: this template cannot be laid out
                break
            is_type = part[0].text in ("typename", "class") and len(names) <= 2
            params.append((names[-1].text, is_type, default))
        k = close
        if params is None:
            return skip_declaration(tokens, k, end, match)
        if k < end and tokens[k].text in ("struct", "class", "union"):
            return self._tagged(tokens, k, end, scope, match, None, Template(params))
        if k < end and tokens[k].text == "using":
            return self._using(tokens, k, end, scope, match, Template(params))
        return skip_declaration(tokens, k, end, match)

    def _using(self, tokens, i, end, scope, match, template) -> int:
        stop = skip_declaration(tokens, i, end, match)
        body = tokens[i + 1:stop - 1]
        if body and body[0].text == "namespace":
            self.using_namespaces.setdefault(scope, []).append(self.qualified_head(body[1:]))
        elif len(body) >= 3 and body[0].kind == IDENT and body[1].text == "=":
            self.aliases[self.join(scope, body[0].text)] = Alias(scope, body[2:], template=template)
        elif body and body[-1].kind == IDENT:  # using ns::Name;
            self.aliases.setdefault(self.join(scope, body[-1].text), Alias(scope, body))
        return stop

    def _typedef(self, tokens, i, end, scope, match) -> int:
        k = i + 1
        if k < end and tokens[k].text in ("struct", "class", "union", "enum"):
            brace = k + 1
            while brace < end and tokens[brace].text not in ("{", ";"):
                brace += 1
            if brace < end and tokens[brace].text == "{":
                stop = skip_declaration(tokens, match[brace] + 1, end, match)
                declarators = tokens[match[brace] + 1:stop - 1]
                name = next((t.text for t in declarators if t.kind == IDENT), None)
                tag = tokens[k + 1] if tokens[k + 1].kind == IDENT else None
                if name is not None:
                    self._tagged(tokens, k, end, scope, match, None, None, name=tag.text if tag else name)
                    if tag is not None and tag.text != name:
                        self.aliases[self.join(scope, name)] = Alias(scope, [tag])
                return stop
        stop = skip_declaration(tokens, i, end, match)
        body = tokens[i + 1:stop - 1]
        if any(t.text == "(" for t in body):
            return stop  # a function type
        dims = []
        while body and body[-1].text == "]":
            opening = max(n for n, t in enumerate(body) if t.text == "[")
            dims.insert(0, body[opening + 1:-1])
            body = body[:opening]
        if len(body) >= 2 and body[-1].kind == IDENT:
            self.aliases[self.join(scope, body[-1].text)] = Alias(scope, body[:-1], dims)
        return stop

    def _tagged(self, tokens, i, end, scope, match, members, template, name: str | None = None) -> int:
        """A struct, class, union or enum at tokens[i]: its definition if it has one, then any declarators."""
        keyword = tokens[i].text
        k, align, tag, args = i + 1, None, [], None
        while k < end:
            tok = tokens[k]
            if tok.text == "[" and k + 1 < end and tokens[k + 1].text == "[":
                k = match[k] + 1
            elif tok.text in ("alignas", "__attribute__") and k + 1 < end and tokens[k + 1].text == "(":
                align = tokens[k + 2:match[k + 1]] if tok.text == "alignas" else align
                k = match[k + 1] + 1
            elif tok.text in ("class", "struct", "final") and tok.kind == IDENT:
                k += 1
            elif tok.text == "<" and tag:
                close = angle_end(tokens, k, end, match)
                args, k = tokens[k:close], close
            elif tok.text == "::" or (tok.kind == IDENT and (not tag or tag[-1].text == "::")):
                tag.append(tok)
                k += 1
            else:
                break
        underlying, bases = None, []
        if k < end and tokens[k].text == ":" and keyword == "enum":
            brace = k + 1
            while brace < end and tokens[brace].text not in ("{", ";"):
                brace += 1
            underlying, k = tokens[k + 1:brace], brace
        elif k < end and tokens[k].text == ":":
            brace = k + 1
            while brace < end and tokens[brace].text not in ("{", ";"):
                brace += 1
            bases = [[t for t in part if t.text not in ("public", "private", "protected")]
                     for part in split_commas(tokens[k + 1:brace])]
            k = brace
        if k >= end or tokens[k].text != "{":
            if members is not None and k < end and tokens[k].kind == IDENT:  # `struct Foo x;` as a member
                stop = skip_declaration(tokens, i, end, match)
                self._declaration(tokens[i:stop], scope, members)
                return stop
            return skip_declaration(tokens, i, end, match)
        close = match[k]
        own = name or (tag[-1].text if tag else None)
        if keyword == "enum":
            if own is not None:
                self.enums[self.join(scope, own)] = Enum(scope, underlying)
            self._enumerators(tokens[k + 1:close], self.join(scope, own) if keyword == "enum" and own and
                              tokens[i + 1].text in ("class", "struct") else ("::".join(scope)), scope)
        else:
            key = own if own is not None else f"<anonymous {tokens[i].line}:{tokens[i].column}>"
            if args is not None:
                if template is None or template.params:
                    return self._after_body(tokens, close, end, match)  # a partial specialisation: not laid out
                key, template = own + spell(args), None
            qualified = self.join(scope, key)
            struct = Struct(qualified, tuple(qualified.split("::")), keyword == "union", tokens, (k + 1, close),
                             bases, align, template, tokens[i])
            self.structs[qualified] = struct
            if template is None:
                self.scan(tokens, k + 1, close, struct.scope, match, [])  # nested declarations
            if members is not None:
                after = skip_declaration(tokens, close + 1, end, match)
                declarators = tokens[close + 1:after - 1]
                if declarators:  # struct { ... } a, b[2];
                    reference = Token(IDENT, "::" + qualified, tokens[i].file, tokens[i].line, tokens[i].column)
                    members.append(Field([reference], [declarator(p) for p in split_commas(declarators)], None))
                elif own is None:
                    members.append(struct)  # an anonymous struct or union: its members belong to the outer one
                return after
        return self._after_body(tokens, close, end, match)

    def _after_body(self, tokens, close, end, match) -> int:
        return skip_declaration(tokens, close + 1, end, match)

    def _enumerators(self, body: list[Token], prefix: str, scope: tuple[str, ...]) -> None:
        previous = None
        for part in split_commas(body):
            if not part or part[0].kind != IDENT:
                continue
            name = f"{prefix}::{part[0].text}" if prefix else part[0].text
            value = part[2:] if len(part) > 2 and part[1].text == "=" else None
            self.constants[name] = Constant(scope, value, previous)
            previous = name

    def _declaration(self, decl: list[Token], scope: tuple[str, ...], members: list | None) -> None:
        """A declaration that is no type: a data member, an integer constant, or something to ignore."""
        body, align = _without_attributes(decl[:-1] if decl and decl[-1].text == ";" else decl)
        words = {t.text for t in body if t.kind == IDENT}
        if not body or words & _SKIPPED_MEMBERS:
            return
        top = _top_level(body)
        texts = [t.text for t in top]
        head = texts[:texts.index("=")] if "=" in texts else texts
        if any(text == "(" and (n == 0 or head[n - 1] not in _TYPE_OPERATORS) for n, text in enumerate(head)):
            return  # a function
        if members is not None and "static" not in words:
            try:
                members.append(Field(*self._declarators(body), align))
            except ArgumentError as error:  # raised when the struct is laid out, not when the shader loads
                members.append(error)
        elif "=" in texts and words & {"constexpr", "const", "constant"}:
            equals = len(body) - 1 - [t.text for t in reversed(body)].index("=") if texts.count("=") == 1 else None
            if equals is not None and equals > 0 and body[equals - 1].kind == IDENT:
                self.constants[self.join(scope, body[equals - 1].text)] = Constant(scope, body[equals + 1:])

    @staticmethod
    def _declarators(body: list[Token]) -> tuple[list[Token], list]:
        """Split a data member declaration into its type and declarators (name, pointer?, array bounds)."""
        parts = split_commas(body)
        first = parts[0]
        name_at = _declarator_name(first)
        if name_at is None:
            raise ArgumentError(f"{first[0].pos}: cannot read the member declaration '{spell(first)}'")
        type_end = name_at
        while type_end > 0 and first[type_end - 1].text in ("*", "&", "&&"):
            type_end -= 1
        return first[:type_end], [declarator(first[type_end:])] + [declarator(part) for part in parts[1:]]

    # ----- names ------------------------------------------------------------------------------------------

    @staticmethod
    def join(scope: tuple[str, ...], name: str) -> str:
        return "::".join((*scope, name))

    @staticmethod
    def qualified_head(tokens: list[Token]) -> str:
        return "".join(tok.text for tok in head_tokens(tokens))

    def find(self, name: str, scope: tuple[str, ...], *tables: dict) -> tuple[str, Any] | None:
        """Look ``name`` up from ``scope`` outwards (and through using-directives), in ``tables`` in order."""
        if name.startswith("::"):
            candidates = [name[2:]]
        else:
            candidates = ["::".join((*scope[:n], name)) for n in range(len(scope), -1, -1)]
            for n in range(len(scope), -1, -1):
                for used in self.using_namespaces.get(scope[:n], ()):
                    candidates.append(f"{used.lstrip(':')}::{name}")
        for candidate in candidates:
            for table in tables:
                if candidate in table:
                    return candidate, table[candidate]
        return None

    def unique_suffix(self, name: str) -> str | None:
        matches = [n for n in (*self.structs, *self.aliases, *self.enums) if n.endswith("::" + name)]
        if len(matches) > 1:
            raise ArgumentError(f"'{name}' is ambiguous in the loaded shader: {', '.join(sorted(matches))}")
        return matches[0] if matches else None

def _top_level(decl: list[Token]) -> list[Token]:
    """The tokens of a declaration outside any brackets (an opening bracket stands for its group)."""
    top, depth = [], 0
    for tok in decl:
        if tok.text in (")", "]", "}"):
            depth -= 1
            continue
        if depth == 0:
            top.append(tok)
        if tok.text in ("(", "[", "{"):
            depth += 1
    return top


def _close_of(tokens: list[Token], opening: int) -> int:
    depth = 0
    for k in range(opening, len(tokens)):
        if tokens[k].text in ("(", "[", "{"):
            depth += 1
        elif tokens[k].text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return k
    return len(tokens) - 1


def _declarator_name(tokens: list[Token]) -> int | None:
    """Index of the name a declarator declares: the last identifier before any bound, bit-field or initialiser."""
    name, depth = None, 0
    for k, tok in enumerate(tokens):
        if tok.text == "<":
            depth += 1
        elif tok.text in (">", ">>"):
            depth -= len(tok.text)
        elif depth <= 0 and tok.text in ("[", ":", "=", "{"):
            break
        elif depth <= 0 and tok.kind == IDENT:
            name = k
    return name


def declarator(tokens: list[Token]) -> tuple[Token, bool, list[list[Token]]]:
    name_at = _declarator_name(tokens)
    if name_at is None:
        raise ArgumentError(f"{tokens[0].pos if tokens else '?'}: cannot read the declarator '{spell(tokens)}'")
    pointer = any(t.text in ("*", "**") for t in tokens[:name_at])
    if any(t.text in ("&", "&&") for t in tokens[:name_at]):
        raise ArgumentError(f"{tokens[name_at].pos}: a struct member cannot be a reference")
    rest, dims = tokens[name_at + 1:], []
    if rest and rest[0].text == ":":
        raise ArgumentError(f"{tokens[name_at].pos}: bit-field '{tokens[name_at].text}' has no Metal layout "
                            "that struct_dtype can promise")
    while rest and rest[0].text == "[":
        close = _close_of(rest, 0)
        dims.append(rest[1:close])
        rest = rest[close + 1:]
    return tokens[name_at], pointer, dims


def head_tokens(tokens: list[Token]) -> list[Token]:
    """The qualified name a type spelling starts with: ``ns::Name`` of ``ns::Name<int>``, ``unsigned`` of
    ``unsigned int``."""
    head = []
    for tok in tokens:
        follows = not head or (head[-1].kind == IDENT) == (tok.text == "::")  # names and :: alternate
        if (tok.text == "::" or tok.kind == IDENT) and follows:
            head.append(tok)
        else:
            break
    return head


def _without_attributes(decl: list[Token]) -> tuple[list[Token], list[Token] | None]:
    """A declaration without its [[attributes]], __attribute__((...)) and alignas(...), and alignas's operand."""
    cleaned, align, k = [], None, 0
    while k < len(decl):
        tok = decl[k]
        if tok.text in ("alignas", "__attribute__") and k + 1 < len(decl) and decl[k + 1].text == "(":
            close = _close_of(decl, k + 1)
            if tok.text == "alignas":
                align = decl[k + 2:close]
            k = close + 1
        elif tok.text == "[" and k + 1 < len(decl) and decl[k + 1].text == "[":
            k = _close_of(decl, k) + 1
        else:
            cleaned.append(tok)
            k += 1
    return cleaned, align


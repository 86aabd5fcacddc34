"""The structs a shader declares, laid out by Metal's rules as numpy structured dtypes.

One scan over the preprocessed tokens records the type declarations of every namespace and struct scope:
structs, classes and unions (their member declarations, bases, ``alignas``), typedefs and ``using`` aliases,
enums, templates of structs and aliases (with explicit specialisations), and integer constants
(``constexpr`` variables, enumerators, ``static constexpr`` members) for array bounds. Layouts are computed on
demand: C++'s rules (each member at the next multiple of its alignment; a struct aligned like its strictest
member and padded to a multiple of that) over the sizes and alignments of Metal's types from ``types.py``
(``float3`` takes 16 bytes, ``packed_float3`` 12, ``bool`` 1, ``size_t`` 8, a pointer 8).

In the dtypes, a vector is a subarray of its components (``float4`` -> ``(float32, (4,))``). numpy cannot skip
the padding lane inside a subarray: a lone ``float3`` member shows its 3 lanes, while arrays of 3-lane vectors
and matrices with 3 rows show 4 lanes per vector, padding included.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, ShaderCompileError
from ..types import resolve_type
from .constexpr import evaluate
from .declarations import (
    Alias,
    Declarations,
    Enum,
    Struct,
    Template,
    angle_end,
    head_tokens,
    matching,
    spell,
    split_commas,
)
from .lexer import IDENT, NUMBER, Token, tokenize

POINTER_BYTES = 8  # device and constant pointers (argument buffers) are 64-bit GPU addresses
_DROPPED = frozenset({"const", "volatile", "device", "constant", "thread", "threadgroup", "threadgroup_imageblock",
                      "ray_data", "object_data", "struct", "class", "union", "enum", "typename", "mutable",
                      "restrict", "__restrict", "__restrict__", "static", "inline", "constexpr"})
_STD_NAMESPACES = ("metal::", "simd::", "std::")
# C spellings of Metal scalars that types.py does not list
_SCALAR_SPELLINGS = {
    "unsigned": "uint", "signed": "int", "signed int": "int", "long int": "long", "long long": "long",
    "long long int": "long", "unsigned long int": "ulong", "unsigned long long": "ulong",
    "unsigned long long int": "ulong", "short int": "short", "unsigned short int": "ushort",
    "ptrdiff_t": "long", "intptr_t": "long", "uintptr_t": "ulong",
    "atomic_int": "int", "atomic_uint": "uint", "atomic_float": "float", "atomic_bool": "bool",
}
_MATRIX = re.compile(r"(half|float|bfloat)([234])x([234])")




@dataclass(frozen=True)
class Layout:
    """How one value of a type sits in memory: a dtype (its itemsize may be under ``size`` for a 3-lane vector,
    whose padding lane a subarray cannot skip), the bytes it takes and its alignment."""

    dtype: np.dtype
    size: int
    align: int



class StructTable(Declarations):
    """The type declarations of one preprocessed translation unit, and the layouts of its structs."""

    def __init__(self, tokens: list[Token]):
        self._layouts: dict[str, Layout] = {}
        self._in_progress: set[str] = set()
        self._bound: dict[str, Layout] = {}  # synthetic names of template type arguments
        super().__init__(tokens)

    # ----- the public face ------------------------------------------------------------------------------

    def dtype(self, name: str) -> np.dtype:
        """The numpy dtype of the struct (or any type) ``name`` names: ``"Params"``, ``"ns::Params"``,
        ``"Conv<2>"``. An unqualified name also finds a struct declared in a namespace when only one matches."""
        return self.layout_of(name).dtype

    def layout_of(self, name: str, scope: tuple[str, ...] = ()) -> Layout:
        try:
            tokens = tokenize(name, "<struct name>")
        except ShaderCompileError:
            raise ArgumentError(f"{name!r} is not a type name") from None
        tokens = [t for t in tokens if t.text not in _DROPPED]
        if not tokens:
            raise ArgumentError("struct_dtype needs a type name")
        head = self.qualified_head(tokens)
        if self.find(head, scope, self.structs, self.aliases, self.enums) is None and not head.startswith("::"):
            unique = self.unique_suffix(head)
            if unique is not None:
                tokens = tokenize(unique + spell(tokens)[len(head):], "<struct name>")
        return self.type_layout(tokens, scope, None)

    def names(self) -> list[str]:
        return sorted(n for n, s in self.structs.items() if s.template is None and "<anonymous" not in n)

    # ----- layouts ----------------------------------------------------------------------------------------

    def type_layout(self, tokens: list[Token], scope: tuple[str, ...], where: Token | None) -> Layout:
        """The layout of the type ``tokens`` spell, looked up from ``scope``."""
        tokens = [t for t in tokens if t.text not in _DROPPED]
        if tokens and tokens[-1].text in ("*", "**"):
            return Layout(np.dtype(np.uint64), POINTER_BYTES, POINTER_BYTES)
        if not tokens:
            raise self._unknown("(no type)", where)
        if len(tokens) == 1 and tokens[0].text in self._bound:
            return self._bound[tokens[0].text]
        head = self.qualified_head(tokens)
        rest = tokens[len(head_tokens(tokens)):]
        args = None
        if rest and rest[0].text == "<":
            close = angle_end(rest, 0, len(rest), matching(rest))
            args, rest = split_commas(rest[1:close - 1]), rest[close:]
        if rest and not all(t.kind == IDENT for t in rest):
            raise self._unknown(spell(tokens), where)
        if not rest:
            found = self._user_type(head, args, scope, where)
            if found is not None:
                return found
        return self._builtin(spell(tokens), head, args, scope, where)

    def _user_type(self, head: str, args, scope, where) -> Layout | None:
        if args is not None:
            spelled = head + "<" + ", ".join(spell(self._canonical(a, scope)) for a in args) + ">"
            found = self.find(spelled, scope, self.structs)
            if found is not None:
                return self._struct_layout(found[1])
        found = self.find(head, scope, self.structs, self.aliases, self.enums)
        if found is None:
            return None
        qualified, decl = found
        if isinstance(decl, Enum):
            return self.type_layout(decl.underlying, decl.scope, where) if decl.underlying else _scalar("int")
        if isinstance(decl, Alias):
            if decl.template is not None:
                if args is None:
                    raise ArgumentError(f"{_at(where)}'{qualified}' is an alias template: give its arguments")
                bound = self._bind(decl.template, args, scope, where, qualified)
                layout = self.type_layout(_substitute(decl.type_tokens, bound), decl.scope, where)
            else:
                layout = self.type_layout(decl.type_tokens, decl.scope, where)
            return self._array(layout, [self.constant(d, decl.scope) for d in decl.dims]) if decl.dims else layout
        if decl.template is not None:
            if args is None:
                raise ArgumentError(f"{_at(where)}'{qualified}' is a template: give its arguments, "
                                    f"as in '{qualified.rsplit('::', 1)[-1]}<...>'")
            bound = self._bind(decl.template, args, scope, where, qualified)
            spelled = qualified + "<" + ", ".join(_bound_text(v) for v in bound.values()) + ">"
            scope_of_instance = (*decl.scope[:-1], spelled.rsplit("::", 1)[-1] if "::" not in spelled.split("<")[0]
                                 else spelled.split("<")[0].rsplit("::", 1)[-1] + spelled[spelled.index("<"):])
            instance = Struct(spelled, scope_of_instance, decl.is_union, _substitute(decl.tokens, bound), decl.body,
                               [_substitute(b, bound) for b in decl.bases],
                               _substitute(decl.align, bound) if decl.align else None, None, decl.where)
            self.scan(instance.tokens, *instance.body, instance.scope, matching(instance.tokens), [])
            return self._struct_layout(instance)
        return self._struct_layout(decl)

    def _canonical(self, arg: list[Token], scope) -> list[Token]:
        """A template argument as an explicit specialisation would spell it (a constant becomes its value)."""
        try:
            return [_number(self.constant(arg, scope), arg[0])]
        except (ConstantError, ArgumentError):
            return arg

    def _bind(self, template: Template, args: list[list[Token]], scope, where, name) -> dict[str, list[Token]]:
        if len(args) > len(template.params):
            raise ArgumentError(f"{_at(where)}'{name}' takes {len(template.params)} template arguments, "
                                f"got {len(args)}")
        bound: dict[str, list[Token]] = {}
        for n, (param, is_type, default) in enumerate(template.params):
            if n < len(args):
                arg, arg_scope = args[n], scope
            elif default:
                arg, arg_scope = _substitute(default, bound), scope
            else:
                raise ArgumentError(f"{_at(where)}'{name}' needs a value for its template parameter '{param}'")
            if is_type:
                synthetic = f"@{spell(arg)}@{'::'.join(arg_scope)}"  # the same argument, the same instance
                if synthetic not in self._bound:
                    self._bound[synthetic] = self.type_layout(arg, arg_scope, where)
                bound[param] = [_synthetic(synthetic, arg[0])]
            else:
                bound[param] = [_number(self.constant(arg, arg_scope), arg[0])]
        return bound

    def _builtin(self, text: str, head: str, args, scope, where) -> Layout:
        bare = head.lstrip(":")
        for prefix in _STD_NAMESPACES:
            bare = bare.removeprefix(prefix)
        if args is not None:
            if bare in ("array", "vec", "packed_vec") and len(args) == 2:
                count = self.constant(args[1], scope)
                if bare == "array":
                    return self._array(self.type_layout(args[0], scope, where), [count])
                scalar = self.type_layout(args[0], scope, where).dtype
                name = next((n for n in ("bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong",
                                         "half", "bfloat", "float") if resolve_type(n).scalar_dtype == scalar), None)
                if name is not None and count in (2, 3, 4):
                    return _scalar(f"{'packed_' if bare == 'packed_vec' else ''}{name}{count}")
            if bare == "atomic" and len(args) == 1:
                return self.type_layout(args[0], scope, where)
            raise self._unknown(text, where)
        spelled = " ".join(text.split())
        spelled = _SCALAR_SPELLINGS.get(spelled, spelled)
        for prefix in _STD_NAMESPACES:
            spelled = spelled.removeprefix(prefix)
        matrix = _MATRIX.fullmatch(spelled)
        if matrix:
            column = _scalar(f"{matrix[1]}{matrix[3]}")
            columns = int(matrix[2])
            lanes = 4 if matrix[3] == "3" else int(matrix[3])
            return Layout(np.dtype((column.dtype.base, (columns, lanes))), columns * column.size, column.align)
        try:
            return _scalar(spelled)
        except ArgumentError:
            raise self._unknown(text, where) from None

    def _unknown(self, text: str, where: Token | None) -> ArgumentError:
        known = [n.rsplit("::", 1)[-1] for n in (*self.structs, *self.aliases, *self.enums) if "<" not in n]
        close = difflib.get_close_matches(text.split("<")[0].rsplit("::", 1)[-1], known, n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        if where is None:
            return ArgumentError(f"the loaded shader declares no type '{text}'{hint}")
        return ArgumentError(f"{_at(where)}cannot lay out type '{text}': it is neither a Metal type nor a struct, "
                             f"typedef or enum the shader declares{hint}")

    def _struct_layout(self, struct: Struct) -> Layout:
        if struct.name in self._layouts:
            return self._layouts[struct.name]
        if struct.name in self._in_progress:
            raise ArgumentError(f"{_at(struct.where)}struct '{struct.name}' contains itself")
        self._in_progress.add(struct.name)
        try:
            layout = self._compute(struct)
        finally:
            self._in_progress.discard(struct.name)
        self._layouts[struct.name] = layout
        return layout

    def _compute(self, struct: Struct) -> Layout:
        members: list = []
        self.scan(struct.tokens, *struct.body, struct.scope, matching(struct.tokens), members)
        fields: list[tuple[str, np.dtype, int]] = []
        offset = size = 0
        align = 1
        parent = struct.scope[:-1]
        for base in struct.bases:
            layout = self.type_layout(base, parent, base[0] if base else struct.where)
            if layout.dtype.names:  # an empty base takes no room
                offset = _round_up(offset, layout.align)
                fields += _inlined(layout.dtype, offset)
                offset += layout.size
            align = max(align, layout.align)
        for member in members:
            if isinstance(member, ArgumentError):
                raise member
            if isinstance(member, Struct):
                placed = [(None, self._struct_layout(member), None)]
            else:
                where = member.type_tokens[0] if member.type_tokens else member.declarators[0][0]
                base = self.type_layout(member.type_tokens, struct.scope, where)
                extra = self.constant(member.align, struct.scope) if member.align else 1
                placed = []
                for name, pointer, dims in member.declarators:
                    layout = Layout(np.dtype(np.uint64), POINTER_BYTES, POINTER_BYTES) if pointer else base
                    if dims:
                        layout = self._array(layout, [self.constant(d, struct.scope) for d in dims])
                    placed.append((name.text, layout, extra))
            for name, layout, extra in placed:
                member_align = max(layout.align, extra or 1)
                at = 0 if struct.is_union else _round_up(offset, member_align)
                if name is None:
                    fields += _inlined(layout.dtype, at)
                else:
                    fields.append((name, layout.dtype, at))
                offset = at + layout.size if not struct.is_union else offset
                size = max(size, at + layout.size)
                align = max(align, member_align)
        if struct.align:
            align = max(align, self.constant(struct.align, parent))
        size = _round_up(max(size, offset, 1), align)
        names = [f[0] for f in fields]
        for n, name in enumerate(names):
            if name in names[n + 1:]:  # a base's member hidden by the derived struct's own
                names[n] = f"{name}@{fields[n][2]}"
        dtype = np.dtype({"names": names, "formats": [f[1] for f in fields],
                          "offsets": [f[2] for f in fields], "itemsize": size})
        return Layout(dtype, size, align)

    def _array(self, element: Layout, dims: list[int]) -> Layout:
        for d in dims:
            if d <= 0:
                raise ArgumentError(f"an array bound must be positive, got {d}")
        count = int(np.prod(dims))
        dtype = element.dtype
        if dtype.itemsize != element.size:  # 3-lane vectors: show the padding lane, which numpy cannot skip
            dtype = np.dtype((dtype.base, (*dims, *dtype.shape[:-1], element.size // dtype.base.itemsize)))
        else:
            dtype = np.dtype((dtype, tuple(dims)))
        return Layout(dtype, count * element.size, element.align)

    # ----- constants --------------------------------------------------------------------------------------

    def constant(self, tokens: list[Token], scope: tuple[str, ...]) -> int:
        """The value of an integer constant expression: literals, operators, sizeof/alignof, constants."""
        def layout(type_tokens: list[Token]) -> tuple[int, int]:
            found = self.type_layout(type_tokens, scope, type_tokens[0])
            return found.size, found.align

        return evaluate(tokens, _constant_error, lambda name, _: self._named_constant(name, scope),
                        "a constant expression", qualified_names=True, layout=layout)

    def _named_constant(self, name: str, scope: tuple[str, ...]) -> int:
        found = self.find(name, scope, self.constants)
        if found is None:
            raise ConstantError(f"'{name}' is not an integer constant the shader declares")
        constant = found[1]
        if constant.tokens is not None:
            return self.constant(constant.tokens, constant.scope)
        if constant.previous is None:
            return 0
        return self._named_constant("::" + constant.previous, ()) + 1


class ConstantError(ArgumentError):
    """An expression that is not an integer constant the layout can compute."""


def _constant_error(tok: Token | None, message: str) -> ConstantError:
    return ConstantError(f"{tok.pos}: {message}" if tok is not None else message)


def _overlaps(a: tuple, b: tuple) -> bool:
    """Whether two fields (dtype, offset) of a structured dtype share bytes: members of one union."""
    return a[1] < b[1] + b[0].itemsize and b[1] < a[1] + a[0].itemsize


def _substitute(tokens: list[Token], bound: dict[str, list[Token]]) -> list[Token]:
    out = []
    for tok in tokens:
        out.extend(bound[tok.text] if tok.kind == IDENT and tok.text in bound else (tok,))
    return out


def _synthetic(name: str, where: Token) -> Token:
    return Token(IDENT, name, where.file, where.line, where.column)


def _number(value: int, where: Token) -> Token:
    return Token(NUMBER, str(value), where.file, where.line, where.column)


def _bound_text(tokens: list[Token]) -> str:
    """A template argument as a person wrote it (a bound type argument is ``@spelling@scope``)."""
    return spell(tokens).split("@")[1] if tokens[0].text.startswith("@") else spell(tokens)


def _scalar(name: str) -> Layout:
    mtype = resolve_type(name)
    if mtype.is_vector:
        return Layout(np.dtype((mtype.scalar_dtype, (mtype.lanes,))), mtype.itemsize, mtype.alignment)
    return Layout(mtype.scalar_dtype, mtype.itemsize, mtype.alignment)


def _inlined(dtype: np.dtype, offset: int) -> list[tuple[str, np.dtype, int]]:
    return [(name, dtype.fields[name][0], offset + dtype.fields[name][1]) for name in dtype.names or ()]


def _round_up(value: int, align: int) -> int:
    return -(-value // align) * align


def _at(where: Token | None) -> str:
    return f"{where.pos}: " if where is not None else ""


def pack_struct(dtype: np.dtype, values: Any, what: str) -> np.ndarray:
    """One value of the struct ``dtype`` from a dict of its fields (nested structs as dicts too), a tuple, a
    numpy structured scalar or bytes. Every field must be given, except the other members of a union."""
    record = np.zeros((), dtype)
    _fill(record, values, what)
    return record


def _fill(record: np.ndarray, values: Any, what: str) -> None:
    dtype = record.dtype
    if not isinstance(values, dict):
        try:
            record[()] = values
        except (TypeError, ValueError) as error:
            raise ArgumentError(f"{what}: cannot convert {values!r}: {error}") from None
        return
    unknown = [key for key in values if key not in (dtype.names or ())]
    if unknown:
        raise ArgumentError(f"{what} has no field {unknown[0]!r}; its fields: {', '.join(dtype.names or ())}")
    given = [dtype.fields[key] for key in values]
    missing = [name for name in dtype.names or () if name not in values
               and not any(_overlaps(dtype.fields[name], other) for other in given)]
    if missing:
        raise ArgumentError(f"{what}: fields {', '.join(repr(m) for m in missing)} are not given")
    for key, value in values.items():
        target = record[key]
        if dtype.fields[key][0].names is not None and isinstance(value, dict):
            _fill(target, value, f"{what}.{key}")
            continue
        try:
            record[key] = value
        except (TypeError, ValueError, OverflowError) as error:
            raise ArgumentError(f"{what}.{key}: cannot store {value!r} in {dtype.fields[key][0]}: {error}") from None

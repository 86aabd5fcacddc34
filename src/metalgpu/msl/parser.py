"""The MSL declaration reader: finds kernels, their parameter bindings and function constants.

This is no C++ parser. One linear scan over the preprocessed tokens splits namespace scope into
declarations, skipping every ``{...}`` body by bracket matching, and reads only what the runtime
needs: kernel signatures (plain, attributed, and explicit instantiations of templates) and
``[[function_constant(n)]]`` declarations. Token ranges are half-open: ``tokens[start:end]``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShaderCompileError, SourcePos
from .lexer import IDENT, NUMBER, STRING, Token

BUILTINS = frozenset("""
    thread_position_in_grid thread_position_in_threadgroup thread_index_in_threadgroup
    threadgroup_position_in_grid threads_per_threadgroup threadgroups_per_grid threads_per_grid
    dispatch_threads_per_threadgroup grid_origin grid_size thread_execution_width threads_per_simdgroup
    thread_index_in_simdgroup simdgroup_index_in_threadgroup simdgroups_per_threadgroup
    dispatch_simdgroups_per_threadgroup quadgroup_index_in_threadgroup quadgroups_per_threadgroup
    thread_index_in_quadgroup threads_per_quadgroup dispatch_quadgroups_per_threadgroup
""".split())
HARMLESS_PARAM_ATTRIBUTES = frozenset({"raster_order_group", "maybe_unused", "function_constant"})
ADDRESS_SPACES = ("device", "constant", "threadgroup", "thread")
MAX_BINDING_INDEX = 30
MAX_FUNCTION_CONSTANT_INDEX = 65535
_SPECIFIERS = frozenset({"kernel", "static", "inline", "extern", "constexpr", "template"})
_QUALIFIERS = frozenset({"const", "volatile", "restrict", *ADDRESS_SPACES})
_SKIPPED_CALLS = frozenset({"decltype", "__attribute__", "alignas", "sizeof", "noexcept"})


@dataclass(frozen=True)
class Param:
    name: str
    type_text: str
    address_space: str | None
    is_pointer: bool
    is_reference: bool
    binding: str  # "buffer", "threadgroup", "builtin" or "none"
    index: int | None
    builtin: str | None
    pos: SourcePos


@dataclass(frozen=True)
class KernelDecl:
    name: str  # the C++ name, namespace-qualified
    host_name: str
    template_args: str | None
    params: tuple[Param, ...]
    pos: SourcePos
    body: tuple[int, int] | None  # tokens[start:end] is the `{ ... }` of the definition
    name_token: int | None = None  # tokens[name_token] names a plain kernel's definition (None: a template's)
    params_span: tuple[int, int] | None = None  # tokens[start:end] inside the parentheses of the declaration that
    # names the kernel (its definition or explicit instantiation); None if that declaration has none


@dataclass(frozen=True)
class FunctionConstant:
    name: str
    type_text: str
    index: int
    pos: SourcePos
    span: tuple[int, int]  # tokens[start:end] is the whole declaration, `;` included


@dataclass(frozen=True)
class Program:
    kernels: tuple[KernelDecl, ...]
    function_constants: tuple[FunctionConstant, ...]


@dataclass(frozen=True)
class _Attribute:
    name: str
    args: tuple[Token, ...]
    token: Token


@dataclass(frozen=True)
class _Head:
    """What a declaration says about the function it declares."""

    name: Token
    name_index: int  # where `name` is in the token list
    qualified: str  # the name as written, e.g. "f" or "detail::f"
    template_args: str | None
    params: tuple[int, int] | None  # inside the parentheses; None when there are none
    attributes: tuple[_Attribute, ...]
    is_kernel: bool
    return_type: tuple[Token, ...]


@dataclass(frozen=True)
class _Template:
    params: tuple[int, int]
    body: tuple[int, int] | None
    is_kernel: bool


def parse(tokens: list[Token], sources: dict[str, str] | None = None) -> Program:
    """Read the kernels and function constants of a preprocessed translation unit.

    ``sources`` (``{file: text}``, as the preprocessor returns it) only adds source lines to errors.
    """
    return _Parser(tokens, sources or {}).run()


def spell(tokens) -> str:
    """Tokens as type text with single spaces: ``device const float *``, ``vec<float, 4>``."""
    parts: list[str] = []
    previous = None
    for tok in tokens:
        if previous is not None and not _glued(previous, tok):
            parts.append(" ")
        parts.append(tok.text)
        previous = tok
    return "".join(parts)


def _glued(previous: Token, tok: Token) -> bool:
    if tok.text in (",", ")", "]", ">", ">>", "::") or previous.text in ("(", "[", "<", "::"):
        return True
    return tok.text == "<" and previous.kind == IDENT  # a template argument list


class _Parser:
    def __init__(self, tokens: list[Token], sources: dict[str, str]):
        self.tokens = tokens
        self.sources = sources
        self.match = self._match_brackets()
        self.scopes: list[str] = []  # enclosing namespaces; "" for anonymous ones and extern "C"
        self.templates: dict[str, list[_Template]] = {}
        self.kernels: list[KernelDecl] = []
        self.constants: list[FunctionConstant] = []

    # ----- helpers ---------------------------------------------------------------------------

    def _error(self, tok: Token, message: str) -> ShaderCompileError:
        lines = self.sources.get(tok.file, "").replace("\r\n", "\n").split("\n")
        source_line = lines[tok.line - 1] if 0 < tok.line <= len(lines) and tok.file in self.sources else None
        return ShaderCompileError.at(SourcePos(tok.file, tok.line, tok.column), message, source_line)

    def _peek(self, i: int) -> str | None:
        return self.tokens[i].text if i < len(self.tokens) else None

    def _accept(self, i: int, text: str) -> int:
        """``i + 1`` if the token at ``i`` is ``text``, else ``i``."""
        return i + 1 if self._peek(i) == text else i

    def _match_brackets(self) -> list[int]:
        """For each bracket, the index of its partner; -1 for other tokens."""
        match = [-1] * len(self.tokens)
        stack: list[int] = []
        closers = {")": "(", "]": "[", "}": "{"}
        for i, tok in enumerate(self.tokens):
            if tok.text in ("(", "[", "{"):
                stack.append(i)
            elif tok.text in closers:
                if not stack:
                    raise self._error(tok, f"unmatched '{tok.text}'")
                opener = stack.pop()
                if self.tokens[opener].text != closers[tok.text]:
                    raise self._error(self.tokens[opener], f"'{self.tokens[opener].text}' is closed by '{tok.text}'")
                match[opener], match[i] = i, opener
        if stack:
            raise self._error(self.tokens[stack[-1]], f"unmatched '{self.tokens[stack[-1]].text}'")
        return match

    def _skip_angles(self, i: int, end: int) -> int:
        """From the ``<`` at ``i``, the index after its closing ``>`` (or ``end``)."""
        depth = 0
        while i < end:
            text = self.tokens[i].text
            if text in ("(", "[", "{"):
                i = self.match[i]
            elif text == "<":
                depth += 1
            elif text in (">", ">>"):
                depth -= len(text)
                if depth <= 0:
                    return i + 1
            elif text == ";":
                return i
            i += 1
        return end

    def _angle_start(self, i: int) -> int:
        """From the ``>`` at ``i``, walking back, the index of its ``<`` (-1 if none)."""
        depth = 0
        while i >= 0:
            text = self.tokens[i].text
            if text in (")", "]"):
                i = self.match[i]
            elif text in (">", ">>"):
                depth += len(text)
            elif text == "<":
                depth -= 1
                if depth <= 0:
                    return i
            i -= 1
        return -1

    def _attributes(self, i: int) -> tuple[_Attribute, ...]:
        """The items of the ``[[ ... ]]`` whose first ``[`` is at ``i``."""
        end = self.match[i] - 1
        items, k = [], i + 2
        while k < end:
            if self.tokens[k].text == ",":
                k += 1
                continue
            name = self.tokens[k]
            while self._peek(k + 1) == "::" and k + 2 < end:
                k += 2
                name = self.tokens[k]
            if name.kind != IDENT:
                raise self._error(name, f"expected an attribute name, found '{name.text}'")
            k += 1
            args: tuple[Token, ...] = ()
            if self._peek(k) == "(":
                args = tuple(self.tokens[k + 1:self.match[k]])
                k = self.match[k] + 1
            items.append(_Attribute(name.text, args, name))
        return tuple(items)

    def _qualified(self, name: str) -> str:
        return "::".join([*(s for s in self.scopes if s), name])

    # ----- namespace scope ---------------------------------------------------------------------

    def run(self) -> Program:
        tokens, i = self.tokens, 0
        while i < len(tokens):
            text = tokens[i].text
            if text == "}":
                if not self.scopes:
                    raise self._error(tokens[i], "unmatched '}'")
                self.scopes.pop()
                i += 1
            elif text == ";":
                i += 1
            elif text == "namespace" or (text == "inline" and self._peek(i + 1) == "namespace"):
                i = self._namespace(self._accept(i, "inline") + 1)
            elif text == "extern" and self._peek(i + 2) == "{" and tokens[i + 1].kind == STRING:
                self.scopes.append("")
                i += 3
            else:
                i = self._declaration(i)
        return Program(tuple(self.kernels), tuple(self.constants))

    def _namespace(self, i: int) -> int:
        names = []
        while self._peek(i) not in ("{", ";", "=", None):
            if self.tokens[i].kind == IDENT:
                names.append(self.tokens[i].text)
            i += 1
        if self._peek(i) != "{":  # a namespace alias
            return self._declaration(i)
        self.scopes.append("::".join(names))
        return i + 1

    def _declaration(self, start: int) -> int:
        """Read one declaration from ``start``; return the index after it."""
        tokens, i = self.tokens, start
        while i < len(tokens):
            text = tokens[i].text
            if text in ("(", "["):
                i = self.match[i] + 1
            elif text == ";":
                self._analyze(start, i, None)
                return i + 1
            elif text == "{":
                self._analyze(start, i, (i, self.match[i] + 1))
                return self.match[i] + 1
            elif text == "}":
                self._analyze(start, i, None)
                return i
            else:
                i += 1
        self._analyze(start, i, None)
        return i

    def _analyze(self, start: int, end: int, body: tuple[int, int] | None) -> None:
        if start == end:
            return
        if self.tokens[start].text == "template":
            if self._peek(start + 1) == "<":
                self._template_definition(self._skip_angles(start + 1, end), end, body)
            else:
                self._instantiation(start + 1, end)
            return
        for k in range(start, end - 1):
            if self.tokens[k].text == "[" and self.tokens[k + 1].text == "[" and any(
                    a.name == "function_constant" for a in self._attributes(k)):
                self._function_constant(start, end, body)
                return
        self._refuse_program_scope_builtins(start, end)
        head = self._head(start, end)
        if head is not None and head.is_kernel and head.params is not None and body is not None:
            host_name = self._host_name(head) or head.name.text
            self._add_kernel(head, self._qualified(head.qualified), host_name, None, head.params, body,
                             name_token=head.name_index)

    def _refuse_program_scope_builtins(self, start: int, end: int) -> None:
        """A variable at namespace scope with a builtin attribute (`uint id [[thread_position_in_grid]];`, newer
        Metal) would otherwise compile to a plain global that stays 0: a clear error instead."""
        k = start
        while k < end - 1:
            text = self.tokens[k].text
            if text == "(":
                k = self.match[k] + 1  # parameters may carry builtins
                continue
            if text == "[" and self.tokens[k + 1].text == "[":
                for attribute in self._attributes(k):
                    if attribute.name in BUILTINS:
                        raise self._error(attribute.token, f"[[{attribute.name}]] on a variable at program scope is "
                                          "not supported: declare it as a parameter of the kernel instead")
                k = self.match[k] + 1
                continue
            k += 1

    # ----- functions and kernels ---------------------------------------------------------------

    def _head(self, start: int, end: int) -> _Head | None:
        """The function declared by ``tokens[start:end]``, or None if it declares none."""
        tokens, i = self.tokens, start
        attributes: list[_Attribute] = []
        words: list[int] = []  # indices of the tokens that are neither attributes nor specifiers
        is_kernel = False
        while i < end and tokens[i].text != "(":
            text = tokens[i].text
            if text == "[" and tokens[i + 1].text == "[":
                attributes.extend(self._attributes(i))
                i = self.match[i] + 1
            elif text in _SKIPPED_CALLS and self._peek(i + 1) == "(":
                i = self.match[i + 1] + 1
            elif text in ("=", "operator"):
                return None
            elif text == "<" and i > start and tokens[i - 1].kind == IDENT:
                i = self._skip_angles(i, end)
            else:
                is_kernel = is_kernel or text == "kernel"
                if text not in _SPECIFIERS and tokens[i].kind != STRING:
                    words.append(i)
                i += 1
        is_kernel = is_kernel or any(a.name == "kernel" for a in attributes)
        name_end, template_args = i, None
        if i == start:
            return None
        if tokens[name_end - 1].text in (">", ">>"):
            opener = self._angle_start(name_end - 1)
            if opener <= start:
                return None
            template_args = spell(tokens[opener + 1:name_end - 1]) + (">" if tokens[name_end - 1].text == ">>" else "")
            name_end = opener
        first = name_end - 1
        if first < start or tokens[first].kind != IDENT:
            return None
        while first >= start + 2 and tokens[first - 1].text == "::" and tokens[first - 2].kind == IDENT:
            first -= 2
        return_type = tuple(tokens[k] for k in words if k < first)
        params = (i + 1, self.match[i]) if i < end else None
        return _Head(tokens[name_end - 1], name_end - 1, "".join(t.text for t in tokens[first:name_end]), template_args,
                     params, tuple(attributes), is_kernel, return_type)

    def _host_name(self, head: _Head) -> str | None:
        for attribute in head.attributes:
            if attribute.name == "host_name":
                if len(attribute.args) != 1 or attribute.args[0].kind != STRING:
                    raise self._error(attribute.token, 'host_name takes one string literal: [[host_name("name")]]')
                text = attribute.args[0].text
                return text[text.index('"') + 1:-1]
        return None

    def _template_definition(self, start: int, end: int, body: tuple[int, int] | None) -> None:
        head = self._head(start, end) if start < end else None
        if head is None or head.params is None or body is None:
            return
        self.templates.setdefault(head.name.text, []).append(_Template(head.params, body, head.is_kernel))

    def _find_template(self, name: str, param_count: int | None) -> _Template | None:
        candidates = self.templates.get(name, [])
        kernels = [t for t in candidates if t.is_kernel] or candidates
        if param_count is not None:
            kernels = [t for t in kernels if len(self._split_params(t.params)) == param_count] or kernels
        return kernels[-1] if kernels else None

    def _instantiation(self, start: int, end: int) -> None:
        head = self._head(start, end)
        if head is None:
            return
        param_count = None if head.params is None else len(self._split_params(head.params))
        template = self._find_template(head.name.text, param_count)
        if not head.is_kernel and not (template and template.is_kernel):
            return  # an instantiation of some helper function
        label = head.qualified + (f"<{head.template_args}>" if head.template_args is not None else "")
        host_name = self._host_name(head)
        if host_name is None:
            raise self._error(head.name, f"the explicit instantiation of kernel '{label}' needs a name: "
                                         f'add [[host_name("...")]]')
        if head.params is None and template is None:
            raise self._error(head.name, f"no template definition of '{head.name.text}' precedes this instantiation")
        params = head.params if head.params is not None else template.params
        body = template.body if template is not None else None
        self._add_kernel(head, self._qualified(head.qualified), host_name, head.template_args, params, body, template)

    def _add_kernel(self, head: _Head, name: str, host_name: str, template_args: str | None,
                    params: tuple[int, int], body: tuple[int, int] | None, template: _Template | None = None,
                    name_token: int | None = None) -> None:
        if head.params is not None and spell(head.return_type) != "void":
            raise self._error(head.name, f"kernel '{host_name}' must return void, not '{spell(head.return_type)}'")
        for other in self.kernels:
            if other.host_name == host_name:
                raise self._error(head.name, f"kernel '{host_name}' is defined twice; Metal kernels cannot be "
                                             f"overloaded (the first definition is at {other.pos})")
        described = [self._param(a, b) for a, b in self._split_params(params)]
        if template is not None and template.params != params:
            described = self._fill_from_template(described, template, head.name)
        bound = self._bind(described, host_name)
        self.kernels.append(KernelDecl(name, host_name, template_args, tuple(bound), head.name.pos, body, name_token,
                                       head.params))

    # ----- kernel parameters -------------------------------------------------------------------

    def _split_params(self, span: tuple[int, int]) -> list[tuple[int, int]]:
        tokens, (i, end) = self.tokens, span
        pieces, start = [], i
        while i < end:
            text = tokens[i].text
            if text in ("(", "[", "{"):
                i = self.match[i] + 1
            elif text == "<" and tokens[i - 1].kind == IDENT:
                i = self._skip_angles(i, end)
            elif text == ",":
                pieces.append((start, i))
                start = i = i + 1
            else:
                i += 1
        pieces.append((start, end))
        return [(a, b) for a, b in pieces if b > a and not (b - a == 1 and tokens[a].text == "void")]

    def _param(self, start: int, end: int) -> tuple[list[Token], list[_Attribute], Token, bool]:
        """One parameter: its declaration tokens (name and default value removed), attributes, name
        (the first token when it has none) and whether it was named."""
        tokens, i = self.tokens, start
        declaration: list[Token] = []
        attributes: list[_Attribute] = []
        while i < end and tokens[i].text != "=":
            if tokens[i].text == "[" and tokens[i + 1].text == "[":
                attributes.extend(self._attributes(i))
                i = self.match[i] + 1
            elif tokens[i].text == "[":
                declaration.extend(tokens[i:self.match[i] + 1])
                i = self.match[i] + 1
            else:
                declaration.append(tokens[i])
                i += 1
        name = self._pop_name(declaration)
        return declaration, attributes, name or tokens[start], name is not None

    @staticmethod
    def _pop_name(declaration: list[Token]) -> Token | None:
        """Remove and return the declarator's name: the last identifier followed only by `)` and
        array bounds, with some type left before it. None for an unnamed parameter (`device float*`)."""
        depth = 0
        for k in range(len(declaration) - 1, -1, -1):
            text = declaration[k].text
            depth += (text == "]") - (text == "[")
            if depth > 0 or text in ("]", "[", ")"):
                continue
            if declaration[k].kind != IDENT or not any(
                    t.kind == IDENT and t.text not in _QUALIFIERS for t in declaration[:k]):
                return None
            return declaration.pop(k)
        return None

    def _fill_from_template(self, described: list, template: _Template, where: Token) -> list:
        """An instantiation may leave out parameter names and attributes: take the template's."""
        from_template = [self._param(a, b) for a, b in self._split_params(template.params)]
        if len(from_template) != len(described):
            return described
        filled = []
        for (declaration, attributes, name, named), (_, t_attributes, t_name, t_named) in zip(described, from_template):
            if named:
                filled.append((declaration, attributes or t_attributes, name, True))
            else:
                filled.append((declaration, attributes or t_attributes, t_name, t_named))
        return filled

    def _bind(self, params: list, kernel: str) -> list[Param]:
        """Give every parameter its binding; unattributed buffers take the lowest free index."""
        described, used = [], {"buffer": set(), "threadgroup": set()}
        for declaration, attributes, name, named in params:
            if not named:
                raise self._error(name, f"a parameter of kernel '{kernel}' has no name")
            space, is_pointer, is_reference = _shape(declaration)
            binding, index, builtin = self._binding_attribute(attributes, name, kernel)
            if index is not None:
                if index in used[binding]:
                    raise self._error(name, f"{binding} index {index} is used twice in kernel '{kernel}'")
                used[binding].add(index)
            if binding == "none" and (is_pointer or is_reference):
                binding = {"device": "buffer", "constant": "buffer", "threadgroup": "threadgroup"}.get(space, "none")
            if binding == "none":
                raise self._error(name, f"parameter '{name.text}' of kernel '{kernel}' needs an attribute "
                                        "such as [[buffer(n)]]")
            described.append([name, spell(declaration), space, is_pointer, is_reference, binding, index, builtin])
        for item in described:
            name, binding, index = item[0], item[5], item[6]
            if binding in used and index is None:
                index = min(set(range(MAX_BINDING_INDEX + 2)) - used[binding])
                if index > MAX_BINDING_INDEX:
                    raise self._error(name, f"kernel '{kernel}' has more than {MAX_BINDING_INDEX + 1} {binding} "
                                            "parameters")
                used[binding].add(index)
                item[6] = index
        return [Param(n.text, t, s, p, r, b, i, u, n.pos) for n, t, s, p, r, b, i, u in described]

    def _binding_attribute(self, attributes: list[_Attribute], name: Token, kernel: str):
        """(binding, explicit index, builtin) from a parameter's attributes."""
        found = None
        for attribute in attributes:
            if attribute.name in HARMLESS_PARAM_ATTRIBUTES:
                continue
            if attribute.name not in BUILTINS and attribute.name not in ("buffer", "threadgroup"):
                raise self._error(attribute.token, f"unsupported attribute [[{attribute.name}]] on parameter "
                                                   f"'{name.text}' of kernel '{kernel}'")
            if found is not None:
                raise self._error(attribute.token, f"parameter '{name.text}' of kernel '{kernel}' has two bindings")
            found = attribute
        if found is None:
            return "none", None, None
        if found.name in BUILTINS:
            return "builtin", None, found.name
        return found.name, self._index(found), None

    def _index(self, attribute: _Attribute, largest: int = MAX_BINDING_INDEX) -> int:
        args = attribute.args
        if len(args) != 1 or args[0].kind != NUMBER:
            raise self._error(attribute.token, f"[[{attribute.name}(n)]] needs an integer literal index")
        digits = args[0].text.replace("'", "").rstrip("uUlL")
        try:
            index = int(digits, 0) if not (digits.startswith("0") and digits.isdigit()) else int(digits, 8)
        except ValueError:
            raise self._error(args[0], f"'{args[0].text}' is not an integer index") from None
        if not 0 <= index <= largest:
            raise self._error(args[0], f"{attribute.name} index {index} is outside 0..{largest}")
        return index

    # ----- function constants ------------------------------------------------------------------

    def _function_constant(self, start: int, end: int, body) -> None:
        tokens = self.tokens
        attributes, declaration = [], []
        i = start
        while i < end:
            if tokens[i].text == "[" and self._peek(i + 1) == "[":
                attributes.extend(self._attributes(i))
                i = self.match[i] + 1
            else:
                declaration.append(tokens[i])
                i += 1
        before_value = declaration[:next((k for k, t in enumerate(declaration) if t.text == "="), len(declaration))]
        names = [t for t in before_value if t.kind == IDENT]
        where = names[-1] if names else tokens[start]
        if body is not None or any(t.text in ("=", ",", "(") for t in declaration):
            raise self._error(where, "a function constant is declared alone, with no initializer: "
                                     "constant T name [[function_constant(n)]];")
        if not declaration or declaration[0].text != "constant" or len(names) < 3:
            raise self._error(where, "a function constant is declared as: constant T name [[function_constant(n)]];")
        attribute = next(a for a in attributes if a.name == "function_constant")
        index = self._index(attribute, MAX_FUNCTION_CONSTANT_INDEX)
        if any(c.index == index for c in self.constants):
            raise self._error(attribute.token, f"function constant index {index} is used twice")
        type_text = spell(declaration[1:-1])
        self.constants.append(FunctionConstant(where.text, type_text, index, where.pos, (start, end + 1)))


def _shape(declaration: list[Token]) -> tuple[str | None, bool, bool]:
    """(address space, is pointer, is reference) of a parameter's declaration, outside template args."""
    space, is_pointer, is_reference, depth = None, False, False, 0
    for tok in declaration:
        text = tok.text
        depth += (text == "<") - (text == ">") - 2 * (text == ">>")
        if depth > 0:
            continue
        if text in ADDRESS_SPACES and space is None:
            space = text
        is_pointer = is_pointer or text == "*"
        is_reference = is_reference or text in ("&", "&&")
    return space, is_pointer, is_reference



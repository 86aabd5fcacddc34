"""The MSL declaration reader: finds kernels, their parameter bindings and function constants.

This is no C++ parser. One linear scan over the preprocessed tokens splits namespace scope into
declarations, skipping every ``{...}`` body by bracket matching, and reads only what the runtime
needs: kernel signatures (plain, attributed, and explicit instantiations of templates) and
``[[function_constant(n)]]`` declarations. Token ranges are half-open: ``tokens[start:end]``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ShaderCompileError, SourcePos
from .constexpr import NamedConstants, evaluate
from .lexer import IDENT, STRING, Token
from .walker import Attribute, TokenWalker, spell, takes_arguments

BUILTINS = frozenset("""
    thread_position_in_grid thread_position_in_threadgroup thread_index_in_threadgroup threadgroup_position_in_grid
    threads_per_threadgroup threadgroups_per_grid threads_per_grid dispatch_threads_per_threadgroup grid_origin
    grid_size thread_execution_width threads_per_simdgroup thread_index_in_simdgroup simdgroup_index_in_threadgroup
    simdgroups_per_threadgroup dispatch_simdgroups_per_threadgroup quadgroup_index_in_threadgroup
    quadgroups_per_threadgroup thread_index_in_quadgroup threads_per_quadgroup dispatch_quadgroups_per_threadgroup
""".split())
HARMLESS_PARAM_ATTRIBUTES = frozenset({"raster_order_group", "maybe_unused", "function_constant"})
ADDRESS_SPACES = ("device", "constant", "threadgroup", "thread")
MAX_BINDING_INDEX = 30
MAX_FUNCTION_CONSTANT_INDEX = 65535
_SPECIFIERS = frozenset({"kernel", "static", "inline", "extern", "constexpr", "template"})
_QUALIFIERS = frozenset({"const", "volatile", "restrict", *ADDRESS_SPACES})
# Words that end a type and cannot name a scope: in `void ::ns::f`, the `::` starts a name from the global namespace.
_NOT_SCOPES = frozenset({"void", "bool", "char", "short", "int", "long", "float", "double", "signed", "unsigned",
                         "auto", "kernel", "static", "inline", "constexpr", "const", "volatile", "template",
                         "typename", "extern", "half", "bfloat", "uint", "ushort", "uchar", "ulong"})
_SKIPPED_CALLS = frozenset({"decltype", "__attribute__", "alignas", "sizeof", "noexcept"})
_FUNCTION_CONSTANT_SPECIFIERS = frozenset({"constant", "static", "constexpr", "const"})
_CONSTANT_STARTS = frozenset({"constant", "static", "constexpr", "const", "enum", "typedef"})
_INTEGER_TYPE_WORDS = frozenset({
    "bool", "char", "short", "int", "long", "unsigned", "signed", "uchar", "ushort", "uint", "ulong", "size_t",
    "ptrdiff_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "auto",
    "metal", "::"})


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
    # [[function_constant(name)]]: the parameter exists only while that bool constant is true (MSL spec).
    function_constant: str | None = None


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
    # tokens[start:end] is the kernel's own declaration: a plain kernel's whole definition, or the explicit
    # instantiation statement of a template's. A translation that leaves the kernel out drops these tokens.
    span: tuple[int, int] | None = None
    # [[max_total_threads_per_threadgroup(E)]]: the expression E as C++ text (it may name template parameters).
    max_total_threads: str | None = None
    # the parameter list of the template a kernel instantiates, as C++ text (None for a plain kernel)
    template_params: str | None = None
    overloaded: bool = False  # one of several kernel templates of its name: see kernel_templates.picked_by_signature


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
class _Head:
    """What a declaration says about the function it declares."""

    name: Token
    name_index: int  # where `name` is in the token list
    qualified: str  # the name as written, e.g. "f" or "detail::f"
    template_args: str | None
    params: tuple[int, int] | None  # inside the parentheses; None when there are none
    attributes: tuple[Attribute, ...]
    is_kernel: bool
    return_type: tuple[Token, ...]


@dataclass(frozen=True)
class _ParamSyntax:
    """A parameter as written: declaration without name or default, attributes, name (or first token), named."""

    declaration: list[Token]
    attributes: list[Attribute]
    name: Token
    named: bool


@dataclass(frozen=True)
class _Template:
    params: tuple[int, int]
    body: tuple[int, int] | None
    is_kernel: bool
    template_params: str = ""
    attributes: tuple[Attribute, ...] = ()


def parse(tokens: list[Token], sources: dict[str, str] | None = None) -> Program:
    """Read the kernels and function constants of a preprocessed translation unit; ``sources`` (``{file: text}``,
    as the preprocessor returns it) only adds source lines to errors."""
    return _Parser(tokens, sources or {}).run()


class _Parser(TokenWalker):
    def __init__(self, tokens: list[Token], sources: dict[str, str]):
        super().__init__(tokens, sources)
        self.scopes: list[str] = []  # enclosing namespaces; "" for anonymous ones and extern "C"
        self.templates: dict[str, list[_Template]] = {}
        self.kernels: list[KernelDecl] = []
        self.kernel_positions: dict[str, SourcePos] = {}  # by host name, to refuse a second definition
        self.template_params: dict[tuple[int, int], tuple[Param, ...]] = {}  # a template's parameters, bound
        self.constants: list[FunctionConstant] = []
        self.named = NamedConstants(self._error)

    # ----- helpers ---------------------------------------------------------------------------

    def _qualified(self, name: str) -> str:
        if name.startswith("::"):  # written from the global namespace
            return name[2:]
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
                header_end = self._skip_angles(start + 1, end)
                template_params = _spell_expression(self.tokens[start + 2:header_end - 1])
                template_params += " >" * (self.tokens[header_end - 1].text == ">>")  # a default's '>' shares the end
                self._template_definition(header_end, end, body, template_params)
            else:
                self._instantiation(start + 1, end, (start, end + 1 if self._peek(end) == ";" else end))
            return
        attributes = self._outer_attributes(start, end)
        if any(a.name == "function_constant" for a in attributes):
            self._function_constant(start, end, body)
            return
        for attribute in attributes:
            if attribute.name in BUILTINS:  # newer Metal; it would otherwise compile to a global that stays 0
                raise self._error(attribute.token, f"[[{attribute.name}]] on a variable at program scope is "
                                  "not supported: declare it as a parameter of the kernel instead")
        if self.tokens[start].text in _CONSTANT_STARTS:
            self._named_constant(start, end, body)
        head = self._head(start, end)
        if head is not None and head.is_kernel and head.params is not None and body is not None:
            host_name = self._host_name(head) or head.name.text
            self._add_kernel(head, self._qualified(head.qualified), host_name, None, head.params, body,
                             name_token=head.name_index, span=(start, body[1]))

    # ----- functions and kernels ---------------------------------------------------------------

    def _head(self, start: int, end: int) -> _Head | None:
        """The function declared by ``tokens[start:end]``, or None if it declares none."""
        tokens, i = self.tokens, start
        attributes: list[Attribute] = []
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
        while first >= start + 2 and tokens[first - 1].text == "::" and tokens[first - 2].kind == IDENT \
                and tokens[first - 2].text not in _NOT_SCOPES:
            first -= 2
        if first > start and tokens[first - 1].text == "::":  # `void ::ns::f`: a name from the global namespace
            first -= 1
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

    def _template_definition(self, start: int, end: int, body: tuple[int, int] | None, template_params: str) -> None:
        head = self._head(start, end) if start < end else None
        if head is None or head.params is None or body is None:
            return
        self.templates.setdefault(head.name.text, []).append(
            _Template(head.params, body, head.is_kernel, template_params, head.attributes))

    def _find_template(self, name: str, param_count: int | None, arguments: str | None) -> _Template | None:
        candidates = self.templates.get(name, [])
        kernels = [t for t in candidates if t.is_kernel] or candidates
        if param_count is not None:
            kernels = [t for t in kernels if len(self._split_params(t.params)) == param_count] or kernels
        if arguments is not None:
            kernels = [t for t in kernels if takes_arguments(t.template_params, arguments)] or kernels
        return kernels[-1] if kernels else None

    def _instantiation(self, start: int, end: int, span: tuple[int, int]) -> None:
        head = self._head(start, end)
        if head is None:
            return
        param_count = None if head.params is None else len(self._split_params(head.params))
        template = self._find_template(head.name.text, param_count, head.template_args)
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
        overloaded = head.params is not None and sum(t.is_kernel for t in self.templates.get(head.name.text, ())) > 1
        self._add_kernel(head, self._qualified(head.qualified), host_name, head.template_args, params,
                         template.body if template is not None else None, template, span=span, overloaded=overloaded)

    def _add_kernel(self, head: _Head, name: str, host_name: str, template_args: str | None, params: tuple[int, int],
                    body: tuple[int, int] | None, template: _Template | None = None, name_token: int | None = None,
                    span: tuple[int, int] | None = None, overloaded: bool = False) -> None:
        if head.params is not None and spell(head.return_type) != "void":
            raise self._error(head.name, f"kernel '{host_name}' must return void, not '{spell(head.return_type)}'")
        other = self.kernel_positions.get(host_name)
        if other is not None:
            raise self._error(head.name, f"kernel '{host_name}' is defined twice; Metal kernels cannot be "
                                         f"overloaded (the first definition is at {other})")
        self.kernel_positions[host_name] = head.name.pos
        # Instantiations that take their parameters from the template (`decltype(k<T>) k<T>;`, thousands in a
        # production library) share one reading of them.
        shared = template is not None and template.params == params
        bound = self.template_params.get(params) if shared else None
        if bound is None:
            described = [self._param(a, b) for a, b in self._split_params(params)]
            if template is not None and not shared:
                described = self._fill_from_template(described, template)
            bound = tuple(self._bind(described, host_name))
            if shared:
                self.template_params[params] = bound
        max_threads = self._max_total_threads(head.attributes) or (
            self._max_total_threads(template.attributes) if template is not None else None)
        self.kernels.append(KernelDecl(name, host_name, template_args, bound, head.name.pos, body, name_token,
                                       head.params, span=span, max_total_threads=max_threads, overloaded=overloaded,
                                       template_params=template.template_params if template else None))

    def _max_total_threads(self, attributes: tuple[Attribute, ...]) -> str | None:
        """The expression of a [[max_total_threads_per_threadgroup(E)]] among a kernel's attributes."""
        for attribute in attributes:
            if attribute.name == "max_total_threads_per_threadgroup":
                if not attribute.args:
                    raise self._error(attribute.token, "[[max_total_threads_per_threadgroup(n)]] needs a thread count")
                return _spell_expression(attribute.args)
        return None

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

    def _param(self, start: int, end: int) -> _ParamSyntax:
        tokens, i = self.tokens, start
        declaration: list[Token] = []
        attributes: list[Attribute] = []
        while i < end and tokens[i].text != "=":
            if tokens[i].text == "[" and tokens[i + 1].text == "[":
                attributes.extend(self._attributes(i))
                i = self.match[i] + 1
            else:  # an array extent whole, or one token
                stop = self.match[i] + 1 if tokens[i].text == "[" else i + 1
                declaration.extend(tokens[i:stop])
                i = stop
        name = self._pop_name(declaration)
        return _ParamSyntax(declaration, attributes, name or tokens[start], name is not None)

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

    def _fill_from_template(self, described: list[_ParamSyntax], template: _Template) -> list[_ParamSyntax]:
        """An instantiation may leave out parameter names and attributes: take the template's. Where both give
        attributes, the definition's win, as with Apple's compiler: the specialisation is instantiated from the
        definition (PyTorch's RMSNorm instantiates `[[thread_position_in_grid]]` over a definition that reads
        `[[threadgroup_position_in_grid]]`, and computes rows from the latter)."""
        from_template = [self._param(a, b) for a, b in self._split_params(template.params)]
        if len(from_template) != len(described):
            return described
        return [replace(p, attributes=t.attributes or p.attributes, name=p.name if p.named else t.name,
                        named=p.named or t.named) for p, t in zip(described, from_template, strict=True)]

    def _bind(self, params: list[_ParamSyntax], kernel: str) -> list[Param]:
        """Give every parameter its binding; unattributed buffers take the lowest free index."""
        bound, used = [], {"buffer": set(), "threadgroup": set()}
        for param in params:
            name = param.name
            if not param.named:
                raise self._error(name, f"a parameter of kernel '{kernel}' has no name")
            space, is_pointer, is_reference = _shape(param.declaration)
            binding, index, builtin = self._binding_attribute(param.attributes, name, kernel)
            condition = self._parameter_condition(param.attributes, name, kernel)
            if index is not None:
                if index in used[binding]:
                    raise self._error(name, f"{binding} index {index} is used twice in kernel '{kernel}'")
                used[binding].add(index)
            if binding == "none" and (is_pointer or is_reference):
                binding = {"device": "buffer", "constant": "buffer", "threadgroup": "threadgroup"}.get(space, "none")
            if binding == "none":
                raise self._error(name, f"parameter '{name.text}' of kernel '{kernel}' needs an attribute "
                                        "such as [[buffer(n)]]")
            bound.append(Param(name.text, spell(param.declaration), space, is_pointer, is_reference, binding, index,
                               builtin, name.pos, condition))
        for k, param in enumerate(bound):
            if param.binding in used and param.index is None:
                index = min(set(range(MAX_BINDING_INDEX + 2)) - used[param.binding])
                if index > MAX_BINDING_INDEX:
                    raise self._error(params[k].name, f"kernel '{kernel}' has more than {MAX_BINDING_INDEX + 1} "
                                                      f"{param.binding} parameters")
                used[param.binding].add(index)
                bound[k] = replace(param, index=index)
        return bound

    def _parameter_condition(self, attributes: list[Attribute], name: Token, kernel: str) -> str | None:
        """The bool function constant named by a parameter's [[function_constant(name)]], if any."""
        for attribute in attributes:
            if attribute.name == "function_constant":
                args = attribute.args
                if len(args) != 1 or args[0].kind != IDENT:
                    raise self._error(attribute.token, f"parameter '{name.text}' of kernel '{kernel}': "
                                      "[[function_constant(name)]] names a bool function constant")
                return args[0].text
        return None

    def _binding_attribute(self, attributes: list[Attribute], name: Token, kernel: str):
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

    def _index(self, attribute: Attribute, largest: int = MAX_BINDING_INDEX) -> int:
        """The index of ``[[buffer(i)]]``, ``[[threadgroup(i)]]`` or ``[[function_constant(i)]]``: an integer
        constant expression (``FC_BIN + 1``, ``N + 2``) of literals, macros and the namespace-scope constants."""
        where = attribute.args[0] if attribute.args else attribute.token

        def error(tok: Token | None, message: str) -> ShaderCompileError:
            return self._error(tok or where, message)

        if not attribute.args:
            raise self._error(attribute.token, f"[[{attribute.name}(n)]] needs an index")
        scope = self._scope()
        index = evaluate(list(attribute.args), error, lambda name, tok: self.named.value(name, scope, tok),
                         f"the index of [[{attribute.name}]]", qualified_names=True)
        if not 0 <= index <= largest:
            raise self._error(where, f"{attribute.name} index {index} is outside 0..{largest}")
        return index

    # ----- function constants and named constants -----------------------------------------------

    def _function_constant(self, start: int, end: int, body) -> None:
        """``constant T name [[function_constant(n)]];``, also with static, constexpr and const in any order."""
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
        where = next((t for t in reversed(before_value) if t.kind == IDENT), tokens[start])
        if body is not None or any(t.text in ("=", ",", "(") for t in declaration):
            raise self._error(where, "a function constant is declared alone, with no initializer: "
                                     "constant T name [[function_constant(n)]];")
        name, words = (declaration[-1], declaration[:-1]) if declaration else (tokens[start], [])  # attributes only
        type_tokens = [t for t in words if t.text not in _FUNCTION_CONSTANT_SPECIFIERS]
        if name.kind != IDENT or not type_tokens or "constant" not in {t.text for t in words} or any(
                t.text in ("*", "&", "&&", "[", "]") for t in declaration):
            raise self._error(where, "a function constant is declared as: constant T name [[function_constant(n)]]; "
                                     "(T a scalar or vector type; static, constexpr and const may be added)")
        if self._peek(end) != ";":
            raise self._error(name, "expected ';' after the function constant's declaration")
        attribute = next(a for a in attributes if a.name == "function_constant")
        index = self._index(attribute, MAX_FUNCTION_CONSTANT_INDEX)
        if any(c.index == index for c in self.constants):
            raise self._error(attribute.token, f"function constant index {index} is used twice")
        self.constants.append(FunctionConstant(name.text, spell(type_tokens), index, name.pos, (start, end + 1)))

    def _scope(self) -> tuple[str, ...]:
        """The enclosing named namespaces, outermost first."""
        return tuple(part for scope in self.scopes if scope for part in scope.split("::"))

    def _named_constant(self, start: int, end: int, body: tuple[int, int] | None) -> None:
        """Record an integer constant (``constant constexpr int kIndex = 2;``) or the enumerators of an enum, for
        attribute indices that name them."""
        tokens, words = self.tokens, [t.text for t in self.tokens[start:end]]
        if "enum" in words[:2]:
            if body is not None:
                self._enumerators(start, end, body)
            return
        if "=" not in words or not {"constexpr", "const", "constant"}.intersection(words[:words.index("=")]):
            return
        equals = start + words.index("=")
        name = tokens[equals - 1]
        type_words = [w for w in words[:equals - 1 - start] if w not in _FUNCTION_CONSTANT_SPECIFIERS]
        if name.kind != IDENT or not type_words or not _INTEGER_TYPE_WORDS.issuperset(type_words):
            return
        first_declarator = self._split_params((equals + 1, end))[:1]
        if first_declarator:
            self.named.define(self._scope(), name.text, tokens[first_declarator[0][0]:first_declarator[0][1]])

    def _enumerators(self, start: int, end: int, body: tuple[int, int]) -> None:
        tokens, k = self.tokens, start
        while tokens[k].text != "enum":
            k += 1
        scoped = self._peek(k + 1) in ("class", "struct")
        k += 1 + scoped
        if self._peek(k) == "[":
            k = self.match[k] + 1
        scope = self._scope()
        # an unscoped enum's enumerators are named in the enclosing namespace too
        targets = ([(*scope, tokens[k].text)] if k < end and tokens[k].kind == IDENT else []) + \
            ([] if scoped else [scope])
        previous: dict[tuple[str, ...], str] = {}
        for first, last in self._split_params((body[0] + 1, body[1] - 1)):
            if tokens[first].kind != IDENT:
                continue
            equals = next((m for m in range(first, last) if tokens[m].text == "="), None)
            initializer = tokens[equals + 1:last] if equals is not None else None
            for target in targets:
                previous[target] = self.named.define(target, tokens[first].text, initializer, previous.get(target))


def _spell_expression(tokens) -> str:
    """Tokens as C++ text, one space between each: the meaning of an expression never depends on the spacing."""
    return " ".join(tok.text for tok in tokens)


def _shape(declaration: list[Token]) -> tuple[str | None, bool, bool]:
    """(address space, is pointer, is reference) of a parameter's declaration, outside template args."""
    space, is_pointer, is_reference, depth = None, False, False, 0
    is_array = parenthesized = False
    for tok in declaration:
        text = tok.text
        depth += (text == "<") - (text == ">") - 2 * (text == ">>")
        if depth > 0:
            continue
        if text in ADDRESS_SPACES and space is None:
            space = text
        is_pointer = is_pointer or text == "*"
        is_reference = is_reference or text in ("&", "&&")
        is_array = is_array or text == "["
        parenthesized = parenthesized or text == "("
    # an array parameter (`constant int strides[2]`) is a pointer, as in C++; `(&tile)[16]` is a reference
    return space, is_pointer or (is_array and not parenthesized), is_reference



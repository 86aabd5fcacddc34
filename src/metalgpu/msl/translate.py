"""MSL tokens -> one C++ translation unit for a target.

The user's code is re-emitted token by token at its original lines and columns (with ``#line`` directives), with
only MSL-only syntax rewritten:

- address spaces: ``device`` and ``thread`` vanish, ``constant`` becomes ``const`` (a distinct qualifier, so
  overloads on it keep working; at namespace scope it also gets the target's ``MG_CONSTANT_DATA``) and
  ``threadgroup`` vanishes, here token by token; msl/address_spaces.py finishes the job on declarations
  (duplicate ``const``, variants that differ only by address space), msl/threadgroup.py turns threadgroup
  variables into per-threadgroup storage;
- ``kernel`` and ``[[kernel]]`` become ``MG_KERNEL``; other Metal attributes are dropped, standard C++ ones kept;
  plain kernels become templates and explicit instantiations of kernels go, so that only the kernels a
  translation wraps are compiled;
- ``1.5h`` literals become ``half(1.5f)``; function constants become compile-time constants;
- C++ that only clang accepts (msl/compat.py), conditional operators with 16-bit floats (msl/conditionals.py);
- swizzles (``v.zyx``, ``v.xy = w``) become calls of helpers emitted before the user's code (msl/swizzles.py).

After the user's code come the wrappers, one per kernel, that the backend calls (see docs/architecture.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError
from .address_spaces import rewrite as rewrite_address_spaces
from .analysis import cooperative_kernels, streamed_inputs
from .compat import rewrite as rewrite_compat
from .conditionals import rewrite as rewrite_conditionals
from .kernel_templates import (
    drop_kernel_instantiations,
    is_deduced_instantiation,
    signature_alias,
    template_plain_kernels,
)
from .lexer import IDENT, NUMBER, PUNCT, Token
from .outline import bracket_partners
from .outline import scan as scan_declarations
from .parser import KernelDecl, Program
from .preprocess import PreprocessResult
from .swizzles import rewrite as rewrite_swizzles
from .threadgroup import rewrite as rewrite_threadgroup

STANDARD_ATTRIBUTES = {"likely", "unlikely", "maybe_unused", "fallthrough", "nodiscard", "noreturn", "deprecated",
                       "carries_dependency"}
_HALF_LITERAL = re.compile(r"^((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[hH]$")


@dataclass(frozen=True)
class Translation:
    source: str
    kernels: tuple[KernelDecl, ...]  # kernel i is reached through mg_run_i / mg_info_i
    # (file, line) -> sorted (column in the translation, column in the user's source) of each token, for the
    # lines where they differ (rewritten keywords, macro expansions): compiler columns are mapped back with it.
    columns: dict[tuple[str, int], list[tuple[int, int]]]


def translate(pre: PreprocessResult, program: Program, target: str,
              constants: dict[int, Any] | None = None, check_bounds: bool = False) -> Translation:
    """The C++ source for ``target`` ("cpu" or "cuda"); ``constants`` maps function-constant indices to values;
    ``check_bounds`` (cuda, Interface(debug=True)) tests every access through a kernel's buffer pointers."""
    texts = _rewrite(pre.tokens, program)
    match = bracket_partners(pre.tokens)
    declarations = scan_declarations(pre.tokens, match)
    rewrite_address_spaces(pre.tokens, texts, declarations, match)
    rewrite_compat(pre.tokens, texts, declarations, match)
    plain_kernels = template_plain_kernels(pre.tokens, texts, declarations)
    for kernel in program.kernels:
        if kernel.name_token is not None:  # see kernel_callee
            texts[kernel.name_token] = KERNEL_PREFIX + texts[kernel.name_token]
    drop_kernel_instantiations(pre.tokens, texts, declarations, program)
    rewrite_threadgroup(pre.tokens, texts, declarations, match, plain_kernels)
    swizzle_helpers = rewrite_swizzles(pre.tokens, texts)
    lines = [f"#define MG_TARGET_{target.upper()} 1"]
    if check_bounds:
        _check_bounds(pre.tokens, texts, program)
        lines.append("#define MG_DEBUG_BOUNDS 1")
    lines += ["#include <metal_stdlib>", f"#include <metal/_launch_{target}.h>", "#include <metal/_translator.h>"]
    lines += _function_constant_defines(program, constants or {})
    lines.append(swizzle_helpers)
    rewrite_conditionals(pre.tokens, texts, match)  # last: its copies of operands hold every other rewrite
    body, columns = _emit(pre.tokens, texts)
    # Kernels whose threads wait for or talk to each other: fibers on the CPU, one threadgroup per block on CUDA.
    cooperative = cooperative_kernels(pre.tokens, program)
    wrappers = [_cpu_wrapper(i, kernel, cooperative[i]) if target == "cpu" else
                _cuda_wrapper(i, kernel, cooperative[i], [] if cooperative[i] else streamed_inputs(pre.tokens, kernel))
                for i, kernel in enumerate(program.kernels)]
    return Translation("\n".join(lines) + "\n" + body + "\n" + "\n".join(wrappers), program.kernels, columns)


# -- rewriting ----------------------------------------------------------------------------------------------------

def _rewrite(tokens: list[Token], program: Program) -> list[str]:
    """The text to emit for each token ('' drops it)."""
    texts = [t.text for t in tokens]
    constant_index = {fc.name: fc.index for fc in program.function_constants}
    for fc in program.function_constants:
        start, end = fc.span
        texts[start] = f"static constexpr {fc.type_text} {fc.name} = MG_FC_VALUE_{fc.index};"
        for i in range(start + 1, end):
            texts[i] = ""
    scopes: list[str] = []  # "namespace", "class", "function" (any brace inside a function), "init"
    parens = 0
    statement_start = 0     # index of the first token of the current declaration or statement
    previous_significant = ""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        text = tok.text
        if texts[i] != text:  # already rewritten (function constant)
            i += 1
            continue
        in_function = "function" in scopes
        if tok.kind == PUNCT:
            if text == "[" and i + 1 < len(tokens) and tokens[i + 1].text == "[":
                i = _rewrite_attribute(tokens, texts, i, previous_significant)
                continue
            if text in "([":
                parens += 1
            elif text in ")]":
                parens -= 1
            elif text == "{":
                scopes.append(_classify_brace(tokens, statement_start, i, in_function))
                statement_start = i + 1
            elif text == "}":
                if scopes:
                    scopes.pop()
                statement_start = i + 1
            elif text == ";" and parens == 0:
                statement_start = i + 1
        elif tok.kind == IDENT:
            if text in ("device", "thread") and previous_significant == "::":
                pass  # thread_scope::device, thread_scope::thread: names, not address spaces
            elif text in ("device", "thread") or (text == "kernel" and previous_significant == "template"):
                texts[i] = ""
            elif text == "kernel":
                texts[i] = "MG_KERNEL"
            elif text == "constant":
                texts[i] = "const"
                if not in_function and parens == 0 and (not scopes or scopes[-1] == "namespace") \
                        and not _declares_function(tokens, i):
                    texts[i] = "MG_CONSTANT_DATA const"
            elif text == "threadgroup":
                texts[i] = ""  # or threadgroup storage: msl/threadgroup.py
            elif text == "is_function_constant_defined" and i + 3 < len(tokens) \
                    and tokens[i + 2].text in constant_index and tokens[i + 3].text == ")":
                texts[i] = f"MG_FC_DEFINED_{constant_index[tokens[i + 2].text]}"
                texts[i + 1] = texts[i + 2] = texts[i + 3] = ""
                i += 4
                continue
        elif tok.kind == NUMBER:
            match = _HALF_LITERAL.match(text)
            if match:
                number = match.group(1)
                if not any(c in number for c in ".eE"):
                    number += ".0"
                texts[i] = f"half({number}f)"
        if texts[i]:
            previous_significant = text
        i += 1
    return texts


def _check_bounds(tokens: list[Token], texts: list[str], program: Program) -> None:
    """Shadow every pointer [[buffer(i)]] parameter of each kernel body by a bounds-checked one
    (metal/_debug_cuda.h): the parameter is renamed, and the body starts by declaring the checked name."""
    seen: set[tuple[int, int]] = set()
    for kernel in program.kernels:
        if kernel.body is None or kernel.body in seen:
            continue
        seen.add(kernel.body)
        names = _parameter_name_tokens(tokens, kernel.body[0])
        declarations = []
        for param in kernel.params:
            if param.binding != "buffer" or not param.is_pointer or param.name not in names:
                continue
            texts[names[param.name]] = f"mg_unchecked_{param.name}"
            declarations.append(f"auto {param.name} = mg::check_bounds(mg_unchecked_{param.name}, {param.index});")
        if declarations:
            texts[kernel.body[0]] += " " + " ".join(declarations)


def _parameter_name_tokens(tokens: list[Token], body: int) -> dict[str, int]:
    """The token of each parameter's name in the parameter list just before the function body at ``body``:
    the last identifier of each top-level, comma-separated parameter, outside its attributes."""
    close = body - 1
    if close < 0 or tokens[close].text != ")":
        return {}
    depth, start = 0, None
    for j in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(tokens[j].text, 0)
        if depth == 0:
            start = j
            break
    if start is None:
        return {}
    names, depth, last = {}, 0, None
    for j in range(start + 1, close + 1):
        text = tokens[j].text
        if depth == 0 and text in (",", ")"):
            if last is not None:
                names[tokens[last].text] = last
            last = None
        if text in ("(", "[", "<"):
            depth += 1
        elif text in (")", "]", ">", ">>"):
            depth -= len(text)
        elif depth == 0 and tokens[j].kind == IDENT:
            last = j
    return names


def _rewrite_attribute(tokens: list[Token], texts: list[str], start: int, previous: str) -> int:
    """Handle the attribute ``[[ ... ]]`` at ``start``; returns the index after it."""
    depth, end = 0, start
    while end < len(tokens):
        if tokens[end].text == "[":
            depth += 1
        elif tokens[end].text == "]":
            depth -= 1
            if depth == 0:
                break
        end += 1
    names = {t.text for t in tokens[start + 2:end - 1] if t.kind == IDENT}
    if names and names <= STANDARD_ATTRIBUTES:
        return end + 1
    for k in range(start, end + 1):
        texts[k] = ""
    if "kernel" in names and previous != "template":
        texts[start] = "MG_KERNEL"
    return end + 1


def _classify_brace(tokens: list[Token], statement_start: int, brace: int, in_function: bool) -> str:
    if in_function:
        return "function"
    head = [t.text for t in tokens[statement_start:brace]]
    if "namespace" in head or (head[:1] == ["extern"] and len(head) == 2):
        return "namespace"
    if "(" not in head and any(word in head for word in ("struct", "class", "union", "enum")):
        return "class"
    if "(" in head and (not head or head[-1] != "="):
        return "function"
    return "init"


def _declares_function(tokens: list[Token], start: int) -> bool:
    """Is the namespace-scope declaration starting at ``start`` a function (a '(' before '=', ';' or '{')?"""
    for tok in tokens[start:]:
        if tok.text in ("=", ";", "{", "["):
            return False
        if tok.text == "(":
            return True
    return False


def _function_constant_defines(program: Program, constants: dict[int, Any]) -> list[str]:
    known = {fc.index: fc for fc in program.function_constants}
    for index in constants:
        if index not in known:
            raise ArgumentError(f"the shader declares no [[function_constant({index})]]")
    lines = []
    for index, fc in sorted(known.items()):
        if index in constants:
            lines += [f"#define MG_FC_DEFINED_{index} true",
                      f"#define MG_FC_VALUE_{index} ({_literal(constants[index], fc.name)})"]
        else:
            lines += [f"#define MG_FC_DEFINED_{index} false", f"#define MG_FC_VALUE_{index} {{}}"]
    return lines


def _literal(value: Any, name: str) -> str:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}ll" if value < 0 else f"{value}ull"
    if isinstance(value, float):
        if value != value:  # written by their bits: both g++ and NVRTC accept these as constant expressions
            return "__builtin_bit_cast(float, 0x7fc00000u)"
        if abs(value) == float("inf"):
            return ("" if value > 0 else "-") + "__builtin_bit_cast(float, 0x7f800000u)"
        return repr(value)
    raise ArgumentError(f"function constant '{name}': value {value!r} is not a bool, int or float")


# -- emitting -----------------------------------------------------------------------------------------------------

def _emit(tokens: list[Token], texts: list[str]) -> tuple[str, dict]:
    """Tokens at their original lines and columns where possible, so compiler diagnostics land where the user
    wrote them; where a column had to move, the returned map says where it came from."""
    out: list[str] = []
    columns: dict[tuple[str, int], list[tuple[int, int]]] = {}
    shifted: set[tuple[str, int]] = set()
    file, line, column = None, 0, 1
    for tok, text in zip(tokens, texts):
        if not text:
            continue
        if tok.file != file or tok.line != line:
            if tok.file == file and 0 < tok.line - line <= 8:
                out.append("\n" * (tok.line - line))
            else:
                escaped = tok.file.replace("\\", "\\\\").replace('"', '\\"')
                out.append(f'\n#line {tok.line} "{escaped}"\n')
            file, line, column = tok.file, tok.line, 1
        if tok.column > column:
            out.append(" " * (tok.column - column))
            column = tok.column
        elif tok.column < column and out and not out[-1].endswith(("\n", " ")):
            out.append(" ")
            column += 1
        columns.setdefault((file, line), []).append((column, tok.column))
        if column != tok.column:
            shifted.add((file, line))
        out.append(text)
        column += len(text)
    return "".join(out), {key: columns[key] for key in shifted}


# -- wrappers -----------------------------------------------------------------------------------------------------

_LINEAR = "((z - g.origin[2]) * g.size[1] + (y - g.origin[1])) * g.size[0] + (x - g.origin[0])"
_GROUP_SIZE = "(g.size[0] * g.size[1] * g.size[2])"
_DISPATCH_SIZE = "(d.group[0] * d.group[1] * d.group[2])"
_CPU_BUILTINS = {
    "thread_position_in_grid": "x, y, z",
    "thread_position_in_threadgroup": "x - g.origin[0], y - g.origin[1], z - g.origin[2]",
    "threadgroup_position_in_grid": "g.id[0], g.id[1], g.id[2]",
    "threads_per_threadgroup": "g.size[0], g.size[1], g.size[2]",
    "dispatch_threads_per_threadgroup": "d.group[0], d.group[1], d.group[2]",
    "threadgroups_per_grid": "d.groups[0], d.groups[1], d.groups[2]",
    "threads_per_grid": "d.grid[0], d.grid[1], d.grid[2]",
    "grid_size": "d.grid[0], d.grid[1], d.grid[2]",
    "grid_origin": "0u, 0u, 0u",
    "thread_index_in_threadgroup": f"{_LINEAR}, 0u, 0u",
    "thread_execution_width": "32u, 0u, 0u",
    "threads_per_simdgroup": "32u, 0u, 0u",
    "thread_index_in_simdgroup": f"({_LINEAR}) % 32u, 0u, 0u",
    "simdgroup_index_in_threadgroup": f"({_LINEAR}) / 32u, 0u, 0u",
    "simdgroups_per_threadgroup": f"({_GROUP_SIZE} + 31u) / 32u, 0u, 0u",
    "dispatch_simdgroups_per_threadgroup": f"({_DISPATCH_SIZE} + 31u) / 32u, 0u, 0u",
    "threads_per_quadgroup": "4u, 0u, 0u",
    "thread_index_in_quadgroup": f"({_LINEAR}) % 4u, 0u, 0u",
    "quadgroup_index_in_threadgroup": f"({_LINEAR}) / 4u, 0u, 0u",
    "quadgroups_per_threadgroup": f"({_GROUP_SIZE} + 3u) / 4u, 0u, 0u",
    "dispatch_quadgroups_per_threadgroup": f"({_DISPATCH_SIZE} + 3u) / 4u, 0u, 0u",
}
# On CUDA the SIMD-group and quad-group builtins come from the lane the hardware gives a thread: warps follow
# threadIdx linearised over the full block shape (mg::warp_order_index), while thread_index_in_threadgroup uses the
# group's actual size. The two agree for 1-D threadgroups and for whole ones; in a partial 2-D or 3-D threadgroup at
# the grid's edge they differ, and only the hardware numbering matches what simd_shuffle and the others exchange.
_WARP_ORDER = "mg::warp_order_index()"
_LAST_WARP_ORDER = "mg::last_warp_order_index(g)"
_CUDA_BUILTINS = {
    **_CPU_BUILTINS,
    "thread_index_in_simdgroup": f"{_WARP_ORDER} % 32u, 0u, 0u",
    "simdgroup_index_in_threadgroup": f"{_WARP_ORDER} / 32u, 0u, 0u",
    "simdgroups_per_threadgroup": f"{_LAST_WARP_ORDER} / 32u + 1u, 0u, 0u",
    "thread_index_in_quadgroup": f"{_WARP_ORDER} % 4u, 0u, 0u",
    "quadgroup_index_in_threadgroup": f"{_WARP_ORDER} / 4u, 0u, 0u",
    "quadgroups_per_threadgroup": f"{_LAST_WARP_ORDER} / 4u + 1u, 0u, 0u",
}
_BINDING_KIND = {"buffer": "mg::bind_buffer", "threadgroup": "mg::bind_threadgroup", "builtin": "mg::bind_builtin"}


KERNEL_PREFIX = "mg_kernel_fn_"


def kernel_callee(kernel: KernelDecl) -> str:
    """The kernel as the wrappers name it, qualified from the global namespace. A plain kernel's definition is
    renamed (KERNEL_PREFIX, by translate()), so that one called like a function of Metal (`mix`, reached through
    `using namespace metal;`) or of CUDA (`max`, `sqrt`, `all`, declared globally by NVRTC) is not confused with
    those overloads; Metal never lets other code call a kernel, so nothing else names it."""
    scope, _, name = kernel.name.rpartition("::")
    if kernel.name_token is not None:  # a plain kernel, made a template of one defaulted parameter
        name = KERNEL_PREFIX + name
    qualified = f"{scope}::{name}" if scope else name
    qualified = qualified if qualified.startswith("::") else f"::{qualified}"
    if kernel.name_token is not None:
        return f"{qualified}<>"
    if is_deduced_instantiation(kernel):  # the specialisation whose type the alias after it names
        alias = f"{scope}::{signature_alias(kernel)}" if scope else signature_alias(kernel)
        return f"(*static_cast<{alias if alias.startswith('::') else '::' + alias}*>(&{qualified}))"
    return f"{qualified}<{kernel.template_args}>" if kernel.template_args is not None else qualified


def _call_parts(kernel: KernelDecl, slot, threadgroup_address,
                builtins: dict[str, str] = _CPU_BUILTINS) -> tuple[list[str], list[str]]:
    """The binding-info initialisers and the call's arguments, in the kernel's parameter order; ``builtins`` gives
    the x, y, z expressions of each builtin."""
    infos, args = [], []
    for j, param in enumerate(kernel.params):
        ptype = f"mg::param_t<F, {j}>"
        index = param.index if param.index is not None else -1
        infos.append(f"mg::describe<{ptype}>({j}, {_BINDING_KIND[param.binding]}, {index})")
        if param.binding == "buffer":
            args.append(f"mg::buffer_arg<{ptype}>({slot(param.index)})")
        elif param.binding == "threadgroup":
            args.append(f"static_cast<{ptype}>({threadgroup_address(param.index)})")
        else:
            args.append(f"mg::builtin<{ptype}>({builtins[param.builtin]})")
    return infos, args


def _line_directive(kernel: KernelDecl) -> str:
    escaped = kernel.pos.file.replace("\\", "\\\\").replace('"', '\\"')
    return f'#line {kernel.pos.line} "{escaped}"'


def _cpu_wrapper(i: int, kernel: KernelDecl, cooperative: bool = False) -> str:
    callee = kernel_callee(kernel)
    infos, args = _call_parts(kernel, lambda index: f"slots[{index}]",
                              lambda index: f"mg::threadgroup_arena({index}, d.threadgroup_bytes[{index}])")
    # Buffer arguments are converted once, before the thread loop.
    locals_ = [f"  mg::param_t<F, {j}> a{j} = {arg};" for j, arg in enumerate(args) if arg.startswith("mg::buffer_arg")]
    args = [f"a{j}" if arg.startswith("mg::buffer_arg") else arg for j, arg in enumerate(args)]
    info_list = ",\n    ".join(infos) or "{-1, 0, 0, 0, 0, 0, 0, 0, 0}"
    # issue 5: kernels whose threads wait for each other run as fibers; the others keep the plain loop.
    run, result, tail = ("return mg::run_cooperative", "", ", report") if cooperative else \
        ("mg::for_each_thread", "\n  (void)report;\n  return 0;", "")
    return f"""{_line_directive(kernel)}
namespace mg_kernel_{i} {{
using F = decltype(&{callee});
static const mg::binding_info bindings[] = {{
    {info_list}}};
}}
MG_EXPORT const mg::binding_info* mg_info_{i}(int32_t* count) {{
  *count = {len(infos)};
  return mg_kernel_{i}::bindings;
}}
MG_EXPORT int mg_run_{i}(void* const* slots, const mg::dispatch_t* dispatch, uint64_t first, uint64_t end,
                        uint32_t* report) {{
  using F = mg_kernel_{i}::F;
  const mg::dispatch_t& d = *dispatch;
{chr(10).join(locals_)}
  {run}(d, first, end, [&](const mg::group_ctx& g, uint32_t x, uint32_t y, uint32_t z) {{
    (void)g; (void)x; (void)y; (void)z;
    {callee}({", ".join(args)});
  }}{tail});{result}
}}
"""


INLINE_CONSTANT_BYTES = 1024  # the most bytes of small constant arguments a CUDA launch record carries


@dataclass(frozen=True)
class CudaLaunchLayout:
    """Where mg::launch_t<slots, threadgroups, constant_bytes> (metal/_launch_cuda.h) puts its fields, in bytes."""

    slots: int
    threadgroups: int
    inline_slots: int = 0  # bit i: slot i may hold an inline constant (else it always holds a device address)

    @property
    def constant_bytes(self) -> int:
        """Room for inline constants: only where some slot may hold one."""
        return INLINE_CONSTANT_BYTES if self.inline_slots else 0

    @property
    def offsets(self) -> dict[str, int]:
        grid = 16 * self.slots
        offset = grid + 44
        constants = -(-(offset + 4 * max(self.threadgroups, 1)) // 16) * 16
        return {"slots": 0, "slot_bytes": 8 * self.slots, "grid": grid, "group": grid + 12, "groups": grid + 24,
                "inline_mask": grid + 36, "groups_per_block": grid + 40, "threadgroup_offset": offset,
                "constants": constants}

    @property
    def size(self) -> int:
        return -(-(self.offsets["constants"] + max(self.constant_bytes, 1)) // 16) * 16


def cuda_launch_layout(kernel: KernelDecl) -> CudaLaunchLayout:
    """The launch record a kernel's CUDA wrapper takes: as many slots as its [[buffer(i)]] indices need, and room
    for inline constants only if a parameter can take them: a `constant` or reference one. A value given for any
    other (a `device const` pointer) goes to device memory, so those slots always hold device addresses and the
    compiler may be told so (mg::global_slot: global loads and stores instead of generic ones, 15% of a streaming
    kernel's time on an H200)."""
    buffers = [p for p in kernel.params if p.binding == "buffer"]
    threadgroups = [p.index for p in kernel.params if p.binding == "threadgroup"]
    inline = sum(1 << p.index for p in buffers if p.address_space == "constant" or p.is_reference)
    return CudaLaunchLayout(max([p.index + 1 for p in buffers], default=1), max(threadgroups, default=-1) + 1,
                            inline)


def _cuda_wrapper(i: int, kernel: KernelDecl, cooperative: bool = False, streamed: list[int] = ()) -> str:
    callee = kernel_callee(kernel)
    layout = cuda_launch_layout(kernel)
    record = f"mg::launch_t<{layout.slots}, {layout.threadgroups}, {layout.constant_bytes}>"

    def slot(index: int) -> str:
        return f"mg::slot(d, {index})" if (layout.inline_slots >> index) & 1 else f"mg::global_slot(d, {index})"

    infos, args = _call_parts(kernel, slot, lambda index: f"mg::threadgroup_parameter(d, {index})", _CUDA_BUILTINS)
    info_list = ",\n    ".join(infos) or "{-1, 0, 0, 0, 0, 0, 0, 0, 0}"
    if cooperative:  # one threadgroup per block: its threads meet at barriers and share memory
        run = f"""  const mg::group_ctx g = mg::current_group(d);
  const uint32_t x = g.origin[0] + threadIdx.x, y = g.origin[1] + threadIdx.y, z = g.origin[2] + threadIdx.z;
  if (x >= d.grid[0] || y >= d.grid[1] || z >= d.grid[2]) return;  // Metal's partial edge threadgroups
  {callee}({", ".join(args)});"""
    else:  # threads on their own: a block may run several threadgroups (mg::for_each_group)
        prefetches = "".join(
            f"\n    mg::prefetch_l2(d, {kernel.params[j].index}, "
            f"mg::buffer_arg<mg::param_t<F, {j}>>({slot(kernel.params[j].index)}) + x);" for j in streamed)
        run = f"""  mg::for_each_group(d, [&](const mg::group_ctx& g, uint32_t x, uint32_t y, uint32_t z) {{
    {callee}({", ".join(args)});
  }}, [&](uint32_t x) {{{prefetches or " (void)x; "}}});"""
    return f"""{_line_directive(kernel)}
namespace mg_kernel_{i} {{
using F = decltype(&{callee});
MG_EXPORT __device__ const mg::binding_info mg_info_{i}[] = {{
    {info_list}}};
MG_EXPORT __device__ const int32_t mg_info_count_{i} = {len(infos)};
MG_EXPORT __device__ const int32_t mg_groups_per_block_{i} = {1 if cooperative else "MG_GROUPS_PER_BLOCK"};
MG_EXPORT __device__ const int32_t mg_layout_{i}[3] = {{{layout.slots}, {layout.threadgroups}, {layout.inline_slots}}};
static_assert(sizeof({record}) == {layout.size} && alignof({record}) == 16,
              "the launch record must match msl/translate.py's CudaLaunchLayout");
}}
MG_EXPORT __global__ void __launch_bounds__(1024) mg_run_{i}(const __grid_constant__ {record} d) {{
  using F = mg_kernel_{i}::F;
{run}
}}
"""



"""The launch wrappers a translation ends with: one per kernel it holds, which the backend calls (see
docs/architecture.md, "The compiled module"). Each carries the kernel's index in the whole program, so that
``mg_run_<i>`` names the same kernel in a module of all kernels and in one of a few.
"""
from __future__ import annotations

from .abi import CudaLaunchLayout
from .kernel_templates import picked_by_signature, signature_alias
from .literals import string_literal
from .parser import KernelDecl

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
    if picked_by_signature(kernel):  # the specialisation whose type the alias after it names
        alias = f"{scope}::{signature_alias(kernel)}" if scope else signature_alias(kernel)
        arguments = f"<{kernel.template_args}>" if kernel.template_args is not None else ""
        return f"(*static_cast<{alias if alias.startswith('::') else '::' + alias}*>(&{qualified}{arguments}))"
    return f"{qualified}<{kernel.template_args}>" if kernel.template_args is not None else qualified


# A parameter that a false or undefined function constant removed: a null pointer, or a reference to a zeroed
# object of its type, which the kernel must not use (the MSL spec); it is bound to nothing and described to nobody.
ABSENT_HELPER = """namespace mg_wrapper {
template <class P, bool = mg::is_pointer_v<P>> struct absent { MG_FUNC P get() { return nullptr; } };
template <class P> struct absent<P, false> {
  typename mg::const_info<typename mg::remove_ref<P>::type>::bare value{};
  MG_FUNC P get() { return static_cast<P>(value); }
};
}  // namespace mg_wrapper
"""


def _call_parts(kernel: KernelDecl, slot, threadgroup_address, builtins: dict[str, str] = _CPU_BUILTINS,
                absent: frozenset[int] = frozenset()) -> tuple[list[str], list[str]]:
    """The binding-info initialisers and the call's arguments, in the kernel's parameter order; ``builtins`` gives
    the x, y, z expressions of each builtin; the parameters at ``absent`` are passed ``absent<j>.get()`` (declared
    by ``_absent_locals``)."""
    infos, args = [], []
    for j, param in enumerate(kernel.params):
        ptype = f"mg::param_t<F, {j}>"
        index = param.index if param.index is not None else -1
        if j in absent and param.binding != "builtin":
            args.append(f"absent{j}.get()")
            continue
        infos.append(f"mg::describe<{ptype}>({j}, {_BINDING_KIND[param.binding]}, {index})")
        if param.binding == "buffer":
            args.append(f"mg::buffer_arg<{ptype}>({slot(param.index)})")
        elif param.binding == "threadgroup":
            args.append(f"static_cast<{ptype}>({threadgroup_address(param.index)})")
        else:
            args.append(f"mg::builtin<{ptype}>({builtins[param.builtin]})")
    return infos, args


def _absent_locals(absent: frozenset[int], kernel: KernelDecl) -> list[str]:
    return [f"  mg_wrapper::absent<mg::param_t<F, {j}>> absent{j};" for j in sorted(absent)
            if kernel.params[j].binding != "builtin"]


def _line_directive(kernel: KernelDecl) -> str:
    return f'#line {kernel.pos.line} {string_literal(kernel.pos.file)}'


def cpu_wrapper(i: int, kernel: KernelDecl, cooperative: bool = False, absent: frozenset[int] = frozenset(),
                max_threads: str | None = None) -> str:
    """The exported entry points of kernel ``i`` on the CPU: ``mg_info_<i>``, ``mg_max_threads_<i>`` (its
    [[max_total_threads_per_threadgroup]], 0 without one) and ``mg_run_<i>``."""
    callee = kernel_callee(kernel)
    infos, args = _call_parts(kernel, lambda index: f"slots[{index}]",
                              lambda index: f"mg::threadgroup_arena({index}, d.threadgroup_bytes[{index}])",
                              absent=absent)
    # Buffer arguments are converted once, before the thread loop.
    locals_ = _absent_locals(absent, kernel)
    locals_ += [f"  mg::param_t<F, {j}> a{j} = {arg};" for j, arg in enumerate(args)
                if arg.startswith("mg::buffer_arg")]
    args = [f"a{j}" if arg.startswith("mg::buffer_arg") else arg for j, arg in enumerate(args)]
    info_list = ",\n    ".join(infos) or "{-1, 0, 0, 0, 0, 0, 0, 0, 0}"
    # Kernels whose threads wait for each other run as fibers; the others keep the plain loop.
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
MG_EXPORT uint32_t mg_max_threads_{i}() {{ return {max_threads or "0"}; }}
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


def cuda_launch_layout(kernel: KernelDecl) -> CudaLaunchLayout:
    """The launch record a kernel's CUDA wrapper takes: as many slots as its [[buffer(i)]] indices need, and room
    for inline constants only if a parameter can take them: a `constant` or reference one. A value given for any
    other (a `device const` pointer) goes to device memory, so those slots always hold device addresses and the
    compiler may be told so (mg::global_slot: global loads and stores instead of generic ones, which a streaming
    kernel runs faster with: benchmarks/README.md)."""
    buffers = [p for p in kernel.params if p.binding == "buffer"]
    threadgroups = [p.index for p in kernel.params if p.binding == "threadgroup"]
    inline = sum(1 << p.index for p in buffers if p.address_space == "constant" or p.is_reference)
    return CudaLaunchLayout(max([p.index + 1 for p in buffers], default=1), max(threadgroups, default=-1) + 1,
                            inline)


def cuda_wrapper(i: int, kernel: KernelDecl, cooperative: bool = False, streamed: list[int] = (),
                 absent: frozenset[int] = frozenset(), max_threads: str | None = None) -> str:
    """The kernel ``mg_run_<i>`` and its metadata on CUDA; [[max_total_threads_per_threadgroup]] becomes its
    ``__launch_bounds__``, which the driver reports as the function's limit."""
    callee = kernel_callee(kernel)
    streamed = [j for j in streamed if j not in absent]
    layout = cuda_launch_layout(kernel)
    record = f"mg::launch_t<{layout.slots}, {layout.threadgroups}, {layout.constant_bytes}>"

    def slot(index: int) -> str:
        return f"mg::slot(d, {index})" if (layout.inline_slots >> index) & 1 else f"mg::global_slot(d, {index})"

    infos, args = _call_parts(kernel, slot, lambda index: f"mg::threadgroup_parameter(d, {index})", _CUDA_BUILTINS,
                              absent)
    locals_ = "".join(f"{line}\n" for line in _absent_locals(absent, kernel))
    bound = "1024" if max_threads is None else f"({max_threads} < 1024u ? {max_threads} : 1024u)"
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
              "the launch record must match msl/abi.py's CudaLaunchLayout");
}}
MG_EXPORT __global__ void __launch_bounds__({bound}) mg_run_{i}(const __grid_constant__ {record} d) {{
  using F = mg_kernel_{i}::F;
  mg::wait_for_predecessor();
{locals_}{run}
}}
"""

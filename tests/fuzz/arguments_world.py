"""The worker's side of the argument fuzzer: Interfaces with kernels loaded, and the building of every value a
recipe (argument_recipes.py) describes, followed by set_function and run_function calls with them.

The kernels touch only the first element of each buffer (and count their threads), so that any grid and any
buffer the library accepts is memory-safe: whatever faults, hangs or computes a wrong count is the library's doing,
not the kernel's.
"""
from __future__ import annotations

import decimal
import fractions
import math

import numpy as np

import metalgpu

SHADER = """#include <metal_stdlib>
using namespace metal;
struct Params { float scale; uint count; packed_float3 offset; };

kernel void count_threads(device atomic_uint* counter [[buffer(0)]], uint3 position [[thread_position_in_grid]],
                          uint3 grid [[threads_per_grid]]) {
    if (all(position < grid)) { atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed); }
}

kernel void scaled(device float* out [[buffer(0)]], constant float& factor [[buffer(1)]],
                   device const float* in [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    if (i == 0) { out[0] = in[0] * factor; }
}

kernel void with_params(constant Params& p [[buffer(0)]], device float4* out [[buffer(1)]],
                        constant float* table [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    if (i == 0) { out[0] = float4(p.offset, p.scale) * float(p.count) + table[0]; }
}

kernel void with_scratch(device float* out [[buffer(0)]], threadgroup float* scratch [[threadgroup(0)]],
                         threadgroup int* other [[threadgroup(3)]], uint lid [[thread_index_in_threadgroup]],
                         uint group [[threadgroup_position_in_grid]]) {
    if (lid == 0) { scratch[0] = 1.0f; other[0] = 2; }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (lid == 0 && group == 0) { out[0] = scratch[0] + float(other[0]); }
}

kernel void element_types(device half* h [[buffer(0)]], device packed_float3* p [[buffer(1)]],
                          device int2* v [[buffer(2)]], constant uchar* bytes [[buffer(3)]],
                          device bfloat* b [[buffer(4)]], constant ulong& big [[buffer(30)]],
                          device float3* padded [[buffer(5)]], uint i [[thread_position_in_grid]]) {
    if (i == 0) {
        h[0] = half(1.5f); p[0] = packed_float3(1.0f, 2.0f, 3.0f); v[0] = int2(int(bytes[0]), int(big & 7));
        b[0] = bfloat(2.0f); padded[0] = float3(4.0f);
    }
}

kernel void limited(device atomic_uint* counter [[buffer(0)]], uint i [[thread_position_in_grid]])
    [[max_total_threads_per_threadgroup(64)]] {
    atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed);
}
"""

SPECIALISED_SHADER = """#include <metal_stdlib>
using namespace metal;
constant bool add_bias [[function_constant(0)]];
constant float bias [[function_constant(1)]];
constant int repeat_count [[function_constant(2)]];
kernel void specialised(device float* out [[buffer(0)]],
                        device const float* extra [[buffer(1), function_constant(add_bias)]],
                        uint i [[thread_position_in_grid]]) {
    if (i == 0) {
        float v = is_function_constant_defined(repeat_count) ? float(repeat_count) : -1.0f;
        if (is_function_constant_defined(add_bias) && add_bias) { v += extra[0] + bias; }
        out[0] = v;
    }
}
"""

KERNELS = ("count_threads", "scaled", "with_params", "with_scratch", "element_types", "limited")
RUN_TIMEOUT = 2.0  # a recipe without a timeout of its own runs under this one: a huge grid must not stall the fuzzing


class Unbuildable(Exception):
    """A recipe step that cannot be built as data (never raised by the library)."""


class _Opaque:
    """An object of no type the library knows."""


class ArgumentWorld:
    def __init__(self):
        self.gpu = metalgpu.Interface("cpu")
        self.gpu.load_shader_from_str(SHADER)
        self.specialised = metalgpu.Interface("cpu")
        self.specialised.load_shader_from_str(SPECIALISED_SHADER)
        self.other = metalgpu.Interface("cpu")  # its buffers are foreign to the two above
        self._made: list[metalgpu.Buffer] = []  # buffers made for the current recipe, released after it

    # -- values ----------------------------------------------------------------------------------------------
    def build(self, recipe, gpu: metalgpu.Interface):
        """The Python value a recipe describes."""
        kind, *args = recipe
        if kind == "value":
            return args[0]
        if kind == "buffer":
            return self._buffer(gpu, *args)
        if kind == "create":  # create_buffer with fuzzed arguments
            count, type_, storage = (self.build(part, gpu) for part in args)
            buffer = gpu.create_buffer(count, type_, storage)
            self._made.append(buffer)
            return buffer
        if kind == "array":
            return make_array(*args)
        if kind == "array_to_buffer":
            buffer = gpu.array_to_buffer(make_array(*args))
            self._made.append(buffer)
            return buffer
        if kind == "numpy_scalar":
            dtype, value = args
            with np.errstate(all="ignore"):
                return np.array(value).astype(dtype)[()]
        if kind == "tuple":
            return tuple(self.build(part, gpu) for part in args[0])
        if kind == "list":
            return [self.build(part, gpu) for part in args[0]]
        if kind == "dict":
            return {self.build(key, gpu): self.build(value, gpu) for key, value in args[0]}
        if kind == "metal_size":
            return metalgpu.MetalSize(*(self.build(part, gpu) for part in args[0]))
        if kind == "decimal":
            return decimal.Decimal(args[0])
        if kind == "fraction":
            return fractions.Fraction(*args)
        if kind == "object":
            return _Opaque()
        if kind == "type":
            return {"int": int, "float": float, "bool": bool, "complex": complex, "object": object, "str": str,
                    "np.float32": np.float32, "np.float64": np.float64, "np.int8": np.int8,
                    "np.complex64": np.complex64, "np.void": np.void}[args[0]]
        if kind == "generator":
            return (self.build(part, gpu) for part in args[0])
        if kind == "interface":
            return gpu
        raise Unbuildable(kind)

    def _buffer(self, gpu: metalgpu.Interface, type_name: str, count: int, storage: str, state: str):
        owner = self.other if state == "foreign" else gpu
        buffer = owner.create_buffer(count, type_name, storage)
        self._made.append(buffer)
        if storage == "shared":
            buffer.contents[...] = 0
        if state == "released":
            buffer.release()
        elif state.startswith("view:"):
            buffer = buffer.view(state[5:])
        elif state == "busy":  # an asynchronous dispatch may still use it when the recipe's runs
            try:
                gpu.run_function(1, [buffer], function_name="count_threads", wait_for_completion=False)
            except metalgpu.MetalError:
                pass
        return buffer

    # -- the calls -------------------------------------------------------------------------------------------
    def run(self, recipe: dict) -> str:
        gpu = self.specialised if recipe["kernel"] == "specialised" else self.gpu
        try:
            gpu.set_function(recipe["kernel"])
            selected = ""
            if recipe.get("set") is not None:  # a fuzzed set_function; the kernel above stays on failure
                name, constants = (self.build(part, gpu) for part in recipe["set"])
                try:
                    gpu.set_function(name, constants)
                    selected = "set; "
                except metalgpu.MetalError as error:
                    selected = f"set: {type(error).__name__}; "
            keywords = {key: self.build(recipe[key], gpu) for key in ("threads_per_threadgroup", "threadgroup_memory",
                                                                        "timeout", "function_name") if key in recipe}
            keywords.setdefault("timeout", RUN_TIMEOUT)
            grid = self.build(recipe["grid"], gpu)
            buffers = self.build(recipe["buffers"], gpu)
            wait = recipe.get("wait", True)
            dispatch = gpu.run_function(grid, buffers, wait_for_completion=wait, **keywords)
            if not wait:
                dispatch.wait()
            return selected + self._check_count(recipe, gpu, grid, buffers)
        finally:
            for buffer in self._made:
                buffer.release()
            self._made.clear()
            gpu.synchronize()

    @staticmethod
    def _check_count(recipe: dict, gpu: metalgpu.Interface, grid, buffers) -> str:
        """After a run of count_threads or limited on a fresh uint counter, the counter holds the grid's threads
        (modulo 2**32, as the kernel's atomic counts)."""
        name = recipe.get("function_name", ("value", gpu._function.name))
        if name not in (("value", "count_threads"), ("value", "limited")) or recipe["buffers"][0] != "list":
            return "ran"
        counter = recipe["buffers"][1][0] if recipe["buffers"][1] else None
        if counter is None or counter[0] != "buffer" or (counter[1], counter[3], counter[4]) != ("uint", "shared",
                                                                                                "live"):
            return "ran"
        from metalgpu.sizes import normalize_size
        threads = math.prod(normalize_size(grid, "grid")) % 2**32
        counted = int(buffers[0].contents[0])
        if counted != threads:
            raise AssertionError(f"{name[1]} over grid {grid!r} ({threads} threads) counted {counted}")
        return f"counted {threads}"

    def check_sane(self) -> str:
        """A plain dispatch still runs right on every Interface after the recipes before it."""
        gpu = self.gpu
        counter = gpu.create_buffer(1, "uint")
        try:
            gpu.run_function((5, 3, 2), [counter], function_name="count_threads", timeout=30)
            if int(counter.contents[0]) != 30:
                raise AssertionError(f"count_threads over 30 threads counted {int(counter.contents[0])}")
        finally:
            counter.release()
        out = self.specialised.create_buffer(1, "float")
        try:
            self.specialised.run_function(1, [out, None], function_name="specialised", timeout=30)
        finally:
            out.release()
        return "sane"


def make_array(dtype: str, shape: tuple[int, ...], layout: str) -> np.ndarray:
    """A numpy array of ``dtype`` with ``shape``, laid out as ``layout`` says (contiguous, strided, reversed,
    transposed, broadcast, read-only, byte-swapped, misaligned)."""
    size = math.prod(shape)
    with np.errstate(all="ignore"):
        base = np.arange(1, max(size * 2, 2) + 1, dtype=np.int64) % 100
        if dtype in ("U3", "S3", "O"):
            flat = base.astype(dtype)
        elif dtype.startswith(("datetime64", "timedelta64")):
            flat = base.astype(dtype)
        elif dtype == "struct":
            flat = np.zeros(max(size * 2, 2), dtype=[("a", np.float32), ("b", np.int32)])
        else:
            flat = base.astype(dtype)
    if layout == "strided":
        array = flat[::2][:size].reshape(shape)
    elif layout == "reversed":
        array = flat[:size][::-1].reshape(shape)
    elif layout == "transposed":
        array = flat[:size].reshape(shape).T
    elif layout == "broadcast":
        array = np.broadcast_to(flat[:1].reshape(()), shape)
    elif layout == "readonly":
        array = flat[:size].reshape(shape)
        array.flags.writeable = False
    elif layout == "swapped":
        array = flat[:size].reshape(shape)
        array = array.astype(array.dtype.newbyteorder()) if array.dtype.byteorder != "|" else array
    elif layout == "misaligned":
        raw = np.zeros(flat[:size].nbytes + 1, np.uint8)[1:]
        raw[:] = flat[:size].view(np.uint8).reshape(-1) if flat.dtype.kind != "O" else 0
        array = raw.view(flat.dtype).reshape(shape) if flat.dtype.kind != "O" else flat[:size].reshape(shape)
    else:
        array = flat[:size].reshape(shape)
    return array

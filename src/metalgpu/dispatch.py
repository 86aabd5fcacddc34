"""Backend-agnostic dispatch: the binding plan that checks a buffer list against the kernel's signature and packs
it once (with the sizes of sizes.py), the cache of recent plans, the ``Dispatch`` handle of an asynchronous
run, and the record of a batch that a backend submits as one (``RecordedBatch``). It knows kernels and memory only
through the small interfaces below (KernelSignature, Allocation): the Interface resolves Buffers to their
Allocations before a plan is made, and backends launch plans."""
from __future__ import annotations

import ctypes
import numbers
import struct
import weakref
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from .errors import ArgumentError
from .sizes import default_threadgroup, normalize_size
from .types import MetalType, metal_type_of_array, pack_values, resolve_type

MAX_BINDINGS = 31  # Metal's buffer and threadgroup argument tables have 31 entries each


class Allocation(ABC):
    """Memory a backend handed out. ``host`` is a uint8 numpy view of it, or None for device-only memory."""

    address: int
    nbytes: int
    host: np.ndarray | None

    @abstractmethod
    def free(self) -> None: ...


class ArrayAllocation(Allocation):
    """A host array's own memory, bound in place (a numpy array on the cpu backend); kept alive with this."""

    def __init__(self, array: np.ndarray):
        self._array = array
        self.host = array.reshape(-1).view(np.uint8)
        self.address = array.ctypes.data
        self.nbytes = array.nbytes

    def free(self) -> None:
        self._array = self.host = None


class KernelSignature(Protocol):
    """What a plan needs to know of a kernel (library.Function has it)."""

    name: str
    bindings: list  # msl.abi.BindingInfo, one per bound parameter
    max_threads: int
    preferred_threads: int
    absent_slots: frozenset[int]

    def describe_param(self, binding) -> str: ...


@dataclass
class LaunchPlan:
    """One dispatch, checked and packed: what a backend needs to launch it."""

    kernel_name: str
    grid: tuple[int, int, int]
    group: tuple[int, int, int]
    groups: tuple[int, int, int]
    buffer_addresses: list[int]          # slot i: address of buffer i's data, or of a constant's bytes
    threadgroup_bytes: list[int]         # slot i: size of [[threadgroup(i)]] memory
    allocations: list[Allocation] = field(default_factory=list)  # the memory bound, held as long as the plan
    allocation_params: list[str] = field(default_factory=list)  # which parameter each of `allocations` binds
    constants: dict[int, np.ndarray] = field(default_factory=dict)  # slot -> packed bytes of a constant value
    slot_bytes: list[int] = field(default_factory=lambda: [0] * MAX_BINDINGS)  # bytes bound at each slot
    slot_params: dict[int, str] = field(default_factory=dict)  # slot -> the parameter it binds, for messages
    packed: Any = None  # the backend's own launch record for this plan, built on its first launch
    template: LaunchPlan | None = None  # the plan this one repeats with other constant values (constant_plans.py)


def build_plan(function: KernelSignature, arguments: Sequence[Any], grid: Any, threads_per_threadgroup: Any,
               threadgroup_memory: dict[int, int] | None, max_threadgroup_memory: int,
               buffer_types: Sequence[BufferType | None] = ()) -> LaunchPlan:
    """Check ``arguments`` (slot i: an Allocation, None, or a constant value) against the kernel's bindings and
    pack them with the sizes. ``buffer_types[i]``, where given, is what the Buffer of an Allocation holds: its
    element type is checked against the parameter's (check_buffer_type)."""
    if not isinstance(arguments, (list, tuple)):
        raise ArgumentError(f"buffers must be a list of Buffer, None or constant values, not "
                            f"{type(arguments).__name__}")
    if len(arguments) > MAX_BINDINGS:
        raise ArgumentError(f"{len(arguments)} buffers given; Metal binds at most {MAX_BINDINGS}")
    if threadgroup_memory is not None and not isinstance(threadgroup_memory, dict):
        raise ArgumentError(f"threadgroup_memory must be a dict {{index: nbytes}}, not "
                            f"{type(threadgroup_memory).__name__}")
    grid3 = normalize_size(grid, "grid")
    if threads_per_threadgroup is None:
        group = default_threadgroup(grid3, function.preferred_threads)
    else:
        group = normalize_size(threads_per_threadgroup, "threads_per_threadgroup")
        total = group[0] * group[1] * group[2]
        if total > function.max_threads:
            raise ArgumentError(f"threads_per_threadgroup {group} is {total} threads; kernel '{function.name}' "
                                f"allows at most {function.max_threads} on this backend")
    groups = tuple(-(-g // t) for g, t in zip(grid3, group))
    plan = LaunchPlan(function.name, grid3, group, groups, [0] * MAX_BINDINGS, [0] * MAX_BINDINGS)
    bound = set()
    for binding in function.bindings:
        if binding.kind == "buffer":
            bound.add(binding.index)
            value = arguments[binding.index] if binding.index < len(arguments) else None
            held = buffer_types[binding.index] if binding.index < len(buffer_types) else None
            _bind_buffer(plan, function, binding, value, held)
        elif binding.kind == "threadgroup":
            _bind_threadgroup(plan, function, binding, threadgroup_memory or {}, max_threadgroup_memory)
    total = sum(plan.threadgroup_bytes)
    if total > max_threadgroup_memory:
        raise ArgumentError(f"kernel '{function.name}': {total} bytes of threadgroup memory asked in all "
                            f"({dict((i, n) for i, n in enumerate(plan.threadgroup_bytes) if n)}), the limit is "
                            f"{max_threadgroup_memory} per threadgroup")
    bound |= function.absent_slots  # removed by a false function constant: whatever is given there is ignored
    for index, value in enumerate(arguments):
        if value is not None and index not in bound:
            raise ArgumentError(f"buffers[{index}] is given but kernel '{function.name}' has no [[buffer({index})]] "
                                f"parameter (it binds {sorted(bound) or 'none'}); pass None to skip a slot")
    return plan


def _bind_buffer(plan: LaunchPlan, function: KernelSignature, binding, value: Any, held: BufferType | None) -> None:
    where = function.describe_param(binding)
    if value is None:
        raise ArgumentError(f"{where} has no argument: buffers[{binding.index}] is missing or None")
    if isinstance(value, Allocation):
        if held is not None:
            check_buffer_type(where, binding, held)
        size = value.nbytes
        if binding.is_reference and size < binding.elem_size:
            raise ArgumentError(f"{where} reads {binding.elem_size} bytes but the buffer holds {size}")
        if not binding.is_reference and size % binding.elem_size:
            raise ArgumentError(f"{where} has {binding.elem_size}-byte elements, which do not divide the buffer's "
                                f"{size} bytes")
        plan.buffer_addresses[binding.index] = value.address
        plan.slot_bytes[binding.index], plan.slot_params[binding.index] = size, where
        plan.allocations.append(value)
        plan.allocation_params.append(where)
        return
    if not binding.is_const:
        raise ArgumentError(f"{where} is writable device memory: pass a Buffer, not a {type(value).__name__}")
    data, plan.buffer_addresses[binding.index] = pack_constant(value, binding, where)
    plan.slot_bytes[binding.index], plan.slot_params[binding.index] = data.nbytes, where
    plan.constants[binding.index] = data


def pack_constant(value: Any, binding, where: str) -> tuple[np.ndarray, int]:
    """The bytes of a constant argument in the parameter's declared type, in 64-byte-aligned memory, and their
    address."""
    raw = _pack_scalar_quickly(value, binding)
    if raw is not None:
        pass
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, np.ndarray) and value.dtype.fields is not None or isinstance(value, np.void):
        check_buffer_type(where, binding, BufferType(metal_type_of_array(np.asarray(value))))
        raw = np.ascontiguousarray(value).tobytes()
    elif binding.scalar_kind == "other":
        raise ArgumentError(f"{where} is a structure of {binding.elem_size} bytes: pass bytes or a numpy "
                            f"structured array, not {type(value).__name__}")
    else:
        mtype = _metal_type_of(binding)
        try:
            raw = pack_values(value, mtype)
        except ArgumentError as error:
            raise ArgumentError(f"{where}: {error}") from None
    if binding.is_reference and len(raw) != binding.elem_size:
        raise ArgumentError(f"{where} takes {binding.elem_size} bytes; the value given packs to {len(raw)}")
    if not binding.is_reference and (not raw or len(raw) % binding.elem_size):
        raise ArgumentError(f"{where} has {binding.elem_size}-byte elements; the value given packs to {len(raw)} "
                            "bytes, not a whole number of them")
    # ctypes memory, whose address is cheap: numpy's (ndarray.ctypes) was most of the cost of packing a scalar
    storage = ctypes.create_string_buffer(len(raw) + 64)
    address = ctypes.addressof(storage)
    start = -address % 64
    ctypes.memmove(address + start, raw, len(raw))
    return np.frombuffer(storage, np.uint8, len(raw), start), address + start


# Python and numpy numbers for a one-value parameter of these kinds and sizes: struct's formats, which refuse what
# pack_values refuses (an integer out of range, a finite float that overflows) and round as it does. Anything else,
# or a value refused here, takes pack_values, which says what is wrong. A dispatch with a scalar argument packs it
# every time (constant_plans.py reuses the rest of its plan), so this is most dispatches' cost of a scalar.
_QUICK_FORMATS = {("float", 4): struct.Struct("<f"), ("signed", 4): struct.Struct("<i"),
                  ("unsigned", 4): struct.Struct("<I"), ("signed", 8): struct.Struct("<q"),
                  ("unsigned", 8): struct.Struct("<Q"), ("signed", 2): struct.Struct("<h"),
                  ("unsigned", 2): struct.Struct("<H")}
_QUICK_TYPES = {"float": (float, np.float32, np.float64),
                "signed": (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32),
                "unsigned": (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)}


def _pack_scalar_quickly(value: Any, binding) -> bytes | None:
    if not binding.is_reference or binding.lanes != 1:
        return None
    kind = binding.scalar_kind
    form = _QUICK_FORMATS.get((kind, binding.scalar_size))
    if form is None or type(value) not in _QUICK_TYPES[kind]:
        return None
    try:
        return form.pack(value if kind == "float" else int(value))
    except (struct.error, OverflowError):
        return None


def _metal_type_of(binding) -> MetalType:
    scalar = SCALAR_NAMES.get((binding.scalar_kind, binding.scalar_size))
    if scalar is None:
        raise ArgumentError(f"cannot convert a Python value to a {binding.scalar_size}-byte {binding.scalar_kind}")
    if binding.lanes == 1:
        return resolve_type(scalar)
    packed = binding.elem_size == binding.lanes * binding.scalar_size and binding.lanes == 3
    return resolve_type(f"{'packed_' if packed else ''}{scalar}{binding.lanes}")


def _bind_threadgroup(plan: LaunchPlan, function: KernelSignature, binding, memory: dict[int, int], limit: int) -> None:
    where = function.describe_param(binding)
    if binding.index not in memory:
        raise ArgumentError(f"{where} needs threadgroup_memory={{{binding.index}: nbytes}}")
    nbytes = memory[binding.index]
    if not isinstance(nbytes, numbers.Integral) or nbytes < 0:  # 0: as Metal, for memory the kernel never touches
        raise ArgumentError(f"{where}: threadgroup memory size must be a non-negative int, got {nbytes!r}")
    if nbytes > limit:
        raise ArgumentError(f"{where}: {nbytes} bytes of threadgroup memory asked, the limit is {limit}")
    if 0 < nbytes < binding.elem_size:  # smaller than one element of what the kernel declares: never enough
        raise ArgumentError(f"{where}: {nbytes} bytes of threadgroup memory given, less than one "
                            f"{binding.elem_size}-byte element of the parameter")
    plan.threadgroup_bytes[binding.index] = int(nbytes)


# -- element types: a Buffer's against the parameter it binds -----------------------------------------------------
# Refuse the pairs a user cannot mean (an int32 buffer for a float*, half for float, rows of three floats for a
# float3*), allow the reinterpretations production kernels rely on (bytes for anything, float for float4*, bfloat
# bit patterns in uint16). docs/buffer-types.md states the rule; check_buffer_type applies it.

_INTEGERS = ("char", "uchar", "short", "ushort", "int", "uint", "long", "ulong")
_BYTES = ("char", "uchar")
_BFLOAT_BITS = (("int", 2), ("bfloat", 2))  # what a bfloat buffer or parameter pairs with

# The Metal scalar of a binding's (scalar_kind, scalar_size).
SCALAR_NAMES = {("signed", 1): "char", ("signed", 2): "short", ("signed", 4): "int", ("signed", 8): "long",
                ("unsigned", 1): "uchar", ("unsigned", 2): "ushort", ("unsigned", 4): "uint",
                ("unsigned", 8): "ulong", ("float", 2): "half", ("float", 4): "float", ("bool", 1): "bool",
                ("bfloat", 2): "bfloat"}


@dataclass(frozen=True)
class BufferType:
    """What a bound buffer holds: its element type, and the length of its rows where its contents are shaped
    (``array_to_buffer`` of an ``(n, 4)`` array: 4), else None."""

    mtype: MetalType
    row: int | None = None


def check_buffer_type(where: str, binding, held: BufferType) -> None:
    """Raise ArgumentError, naming ``where`` (the parameter) and both types, when the buffer's elements cannot be
    what the parameter points at (the rule of docs/buffer-types.md)."""
    mtype = held.mtype
    if mtype.scalar in _BYTES or _is_untyped(binding):
        return
    if binding.scalar_kind == "other":
        if mtype.is_struct and mtype.itemsize != binding.elem_size:
            raise ArgumentError(f"{where} has {binding.elem_size}-byte elements, but the buffer's structs "
                                f"({mtype.scalar_dtype}) are {mtype.itemsize} bytes each")
        return
    wanted = _param_class(binding)
    if mtype.is_struct:
        leaves = _leaf_classes(mtype.scalar_dtype)
        if all(leaf == wanted for leaf in leaves):
            return
        raise ArgumentError(f"{where} points at {_param_type(binding)} elements, but the buffer holds structs "
                            f"({mtype.scalar_dtype}); pass a buffer of {_param_type(binding)} or view it as one "
                            f"(buffer.view('{_param_type(binding)}'))")
    held_class = _class_of(mtype.scalar)
    if held_class != wanted and {held_class, wanted} != set(_BFLOAT_BITS):
        raise ArgumentError(f"{where} points at {_param_type(binding)} ({_describe_class(wanted)}), but the buffer "
                            f"holds {mtype.name} ({_describe_class(held_class)}); convert it "
                            f"(buffer.astype('{_param_type(binding)}')) or reinterpret its bytes explicitly "
                            f"(buffer.view('{_param_type(binding)}'))")
    if binding.lanes == 3:
        _check_three_lanes(where, binding, held)


def _check_three_lanes(where: str, binding, held: BufferType) -> None:
    mtype = held.mtype
    padded_param = binding.elem_size == 4 * binding.scalar_size
    padded_buffer = mtype.is_vector and not mtype.packed and mtype.lanes in (3, 4)
    name = _param_type(binding)
    if padded_param and not padded_buffer and not (mtype.lanes == 1 and held.row == 4):
        rows = f"rows of {held.row}" if held.row else f"{mtype.name} elements"
        raise ArgumentError(f"{where}: Metal's {name} takes {binding.elem_size} bytes (4 lanes, the last one "
                            f"padding), but the buffer holds {rows}. Pass a {name} or {name[:-1]}4 buffer "
                            f"(create_buffer(n, '{name}'), buffer.view('{name}')), or declare the parameter "
                            f"packed_{name} for {mtype.scalar_dtype.itemsize * 3}-byte elements")
    if not padded_param and mtype.is_vector and mtype.lanes == 3 and not mtype.packed:
        raise ArgumentError(f"{where} points at packed {name} elements of {binding.elem_size} bytes, but the "
                            f"buffer holds {mtype.name}, {mtype.itemsize} bytes each (Metal pads them to 4 lanes); "
                            f"pass a packed_{mtype.name} buffer")


def _is_untyped(binding) -> bool:
    """A ``char*``/``uchar*`` parameter, or a ``void*`` one (described as one byte of kind other)."""
    if binding.scalar_size == 1 and binding.scalar_kind in ("signed", "unsigned"):
        return True
    return binding.scalar_kind == "other" and binding.elem_size == 1


def _param_class(binding) -> tuple[str, int]:
    kind = "int" if binding.scalar_kind in ("signed", "unsigned") else binding.scalar_kind
    return kind, binding.scalar_size


def _class_of(scalar: str) -> tuple[str, int]:
    size = resolve_type(scalar).itemsize
    if scalar in _INTEGERS:
        return "int", size
    return ("float" if scalar in ("half", "float") else scalar), size


def _leaf_classes(dtype: np.dtype) -> list[tuple[str, int] | None]:
    """The (kind, width) of every scalar in a structured dtype; None for one that is no Metal scalar (float64)."""
    base = dtype.base
    if base.names is not None:
        return [leaf for name in base.names for leaf in _leaf_classes(base.fields[name][0])]
    try:
        scalar = resolve_type(base).scalar
    except ArgumentError:
        return [None]
    return [_class_of(scalar)]


def _param_type(binding) -> str:
    """The Metal spelling of the parameter's pointee: its scalar, with its lanes."""
    kind, size = binding.scalar_kind, binding.scalar_size
    scalar = SCALAR_NAMES.get((kind, size), f"{size}-byte {kind}")
    return scalar if binding.lanes == 1 else f"{scalar}{binding.lanes}"


def _describe_class(entry: tuple[str, int]) -> str:
    kind, size = entry
    return f"{size}-byte {'integer' if kind == 'int' else kind}"


class PlanCache:
    """The plans of recent dispatches, found by the objects a dispatch was given.

    A key is ``PlanCache.key(function, grid, threads_per_threadgroup, threadgroup_memory, arguments)``: the
    function, the two sizes as given, the threadgroup memory as sorted items (or None), then the id of each
    argument. A plan is kept only while every Buffer it was made from lives (a weak reference to each drops the
    plan the moment one dies) and until clear() (called when a Buffer of the Interface is released), so an id in
    a key always names the object the plan was made from, and a plan found needs no check of its arguments.

    ``table`` (a dict from key to LaunchPlan) is the interface of compiled code: backends/cuda_repeat.cpp looks
    plans up in it by the key of a dispatch with default sizes, ``(function, grid, None, None, *ids)``, which
    tests/test_cuda_repeat.py checks against key(). It keeps the last plan found in ``memo``, valid only while the
    table is unchanged: every change to it goes through this class, which clears ``memo[0]``. Compiled code takes
    ``compiled_state``: the table and the memo's address."""

    LIMIT = 64  # plans kept; the oldest goes first
    MEMO_WORDS = 16  # cuda_repeat.cpp's Memo: valid, function, grid (count, 3 values), count, plan, 8 buffers

    def __init__(self):
        self.table: dict[tuple, LaunchPlan] = {}
        self._owners: dict[tuple, list[weakref.ref]] = {}
        self.memo = np.zeros(self.MEMO_WORDS, dtype=np.uint64)
        self.compiled_state = (self.table, self.memo.ctypes.data)

    @staticmethod
    def key(function: Any, grid: Any, threads_per_threadgroup: Any, threadgroup_memory: dict[int, int] | None,
            arguments: Sequence[Any]) -> tuple:
        memory = tuple(sorted(threadgroup_memory.items())) if threadgroup_memory else None
        return (function, grid, threads_per_threadgroup, memory, *map(id, arguments))

    def find(self, function: Any, grid: Any, threads_per_threadgroup: Any, threadgroup_memory: dict[int, int] | None,
             arguments: Any) -> tuple[tuple | None, LaunchPlan | None]:
        """(key, the plan cached under it or None); (None, None) for what cannot be a key: arguments that are not
        a list or tuple, an unhashable grid. Runs on every dispatch: kept to a few operations."""
        if type(arguments) is not list and type(arguments) is not tuple:
            return None, None
        try:
            key = self.key(function, grid, threads_per_threadgroup, threadgroup_memory, arguments)
            return key, self.table.get(key)
        # an unhashable grid (a list), threadgroup_memory that is not a dict (a numpy array has no truth value) or
        # whose keys do not sort (2**63 and a numpy bool): build_plan says what is wrong
        except (TypeError, AttributeError, ValueError, ArithmeticError):
            return None, None

    def store(self, key: tuple, plan: LaunchPlan, owners: Sequence[Any]) -> None:
        """Cache ``plan`` under ``key`` while every one of ``owners`` (the Buffers whose ids the key holds) lives."""
        table, owned, memo = self.table, self._owners, self.memo
        memo[0] = 0
        if len(table) >= self.LIMIT:
            oldest = next(iter(table))
            del table[oldest]
            owned.pop(oldest, None)

        def forget(_, key=key):
            memo[0] = 0
            table.pop(key, None)
            owned.pop(key, None)

        owned[key] = [weakref.ref(owner, forget) for owner in owners]
        table[key] = plan

    def clear(self) -> None:
        self.memo[0] = 0
        self.table.clear()
        self._owners.clear()

    def __len__(self) -> int:
        return len(self.table)

    def plans(self) -> list[LaunchPlan]:
        return list(self.table.values())


class Dispatch:
    """The handle of an asynchronous dispatch: what ``run_function(..., wait_for_completion=False)`` returns.

    Dispatches of one Interface run in the order they were made. Reading a buffer's ``contents`` waits for the
    pending dispatches that use the buffer; :meth:`wait` waits for this one, ``Interface.synchronize()`` for all.

    Attributes:
        kernel_name: the name of the kernel dispatched.

    Example:
        >>> import numpy as np
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> gpu.load_shader_from_str('''
        ... kernel void fill(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = 7.0f; }''')
        >>> x = gpu.create_buffer(1000, "float")
        >>> handle = gpu.run_function(1000, [x], "fill", wait_for_completion=False)
        >>> handle.wait()
        >>> handle.done, float(x.contents[999])
        (True, 7.0)
    """

    def __init__(self, kernel_name: str, future: Future | None = None, seconds: float | None = None):
        self.kernel_name = kernel_name
        self._future = future    # None: it already ran, for `seconds`
        self._seconds = seconds

    @property
    def done(self) -> bool:
        """True once the kernel has finished (or faulted); never blocks."""
        return self._future is None or self._future.done()

    def wait(self) -> None:
        """Block until the kernel has finished.

        Raises:
            DispatchError: the kernel faulted or ran past its timeout.
            KeyboardInterrupt: Ctrl-C while waiting (the kernel goes on).
        """
        if self._future is not None:
            self._future.result()

    @property
    def gpu_time(self) -> float | None:
        """The seconds the kernel ran, once it is done, or None while it runs or if it faulted.

        Measured by the backend (CUDA events on cuda, the launch's wall time on the cpu)."""
        if self._future is None:
            return self._seconds
        if not self._future.done() or self._future.exception() is not None:
            return None
        return self._future.result()

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return f"<Dispatch {self.kernel_name!r} {state}>"


# -- batches: dispatches recorded to run as one submission (batch.py records them, Backend.submit_batch runs them) ---

@dataclass(slots=True)
class BatchEntry:
    """One dispatch of a batch, checked and packed."""

    index: int            # its place in the batch
    module: Any           # the compiled module and the kernel's index in it, as Backend.launch takes them
    kernel: int
    plan: LaunchPlan
    timeout: float | None = None


@dataclass
class RecordedBatch:
    """The dispatches of a batch in order. ``packed`` is the backend's own form of the whole batch (a CUDA graph's
    launches, the cpu queue's entries), built on its first submission and kept for its replays."""

    entries: list[BatchEntry] = field(default_factory=list)
    packed: Any = None


def name_batch_dispatch(error: BaseException, index: int, kernel_name: str) -> BaseException:
    """``error``, its message led by the dispatch of a batch it comes from, with ``batch_index`` and ``kernel_name``
    set (they pickle with it); an error that already names one is left as it is."""
    if getattr(error, "batch_index", None) is None:
        message = error.args[0] if error.args else ""
        error.args = (f"batch dispatch {index} (kernel '{kernel_name}'): {message}", *error.args[1:])
        error.batch_index, error.kernel_name = index, kernel_name
    return error


class DispatchSequence(Dispatch):
    """A batch submitted as one dispatch after another (Backend.submit_batch's default): waits for each in turn,
    and names the one that failed."""

    def __init__(self, entries: Sequence[BatchEntry], handles: Sequence[Dispatch | None]):
        super().__init__(f"batch of {len(entries)} dispatches")
        self._members = list(zip(entries, handles))

    @property
    def done(self) -> bool:
        return all(handle is None or handle.done for _, handle in self._members)

    def wait(self) -> None:
        failure = None
        for entry, handle in self._members:  # all of them: a batch that failed has ended when that is raised
            if handle is None:
                continue
            try:
                handle.wait()
            except Exception as error:
                if failure is None:
                    failure = name_batch_dispatch(error, entry.index, entry.plan.kernel_name)
        if failure is not None:
            raise failure

    @property
    def gpu_time(self) -> float | None:
        times = [handle.gpu_time if handle is not None else 0.0 for _, handle in self._members]
        return None if None in times else sum(times)


def check_timeout(timeout: Any) -> float | None:
    """A dispatch's ``timeout`` argument: None, or a positive number of seconds (ArgumentError otherwise)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ArgumentError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    return None if timeout == float("inf") else float(timeout)  # infinity: never stopped, as None

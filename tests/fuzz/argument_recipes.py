"""Hypothesis strategies for set_function and run_function arguments, as recipes: plain data that the worker
(arguments_world.py) builds into values (buffers of every state, numpy arrays of every dtype and layout, odd
Python objects) and passes. Most draws are near a valid call, so the check that follows a bad value is reached."""
from __future__ import annotations

from hypothesis import strategies as st

KERNELS = ("count_threads", "scaled", "with_params", "with_scratch", "element_types", "limited", "specialised")

BUFFER_TYPES = ("float", "uint", "int", "half", "bfloat", "char", "uchar", "ulong", "float4", "float3",
                "packed_float3", "int2", "bool", "short")
BUFFER_STATES = ("live", "live", "live", "released", "foreign", "busy", "view:float", "view:uchar", "view:int2")
DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32",
          "float64", "longdouble", "complex64", "complex128", "U3", "S3", "O", "datetime64[s]", "timedelta64[ms]",
          "struct", ">f4", "<i8")
SHAPES = ((), (0,), (1,), (3,), (4,), (16,), (1, 1), (4, 3), (3, 4), (2, 3, 4), (5, 0), (1, 1, 1, 1))
LAYOUTS = ("c", "c", "strided", "reversed", "transposed", "broadcast", "readonly", "swapped", "misaligned")

ODD_NUMBERS = (0, -1, 1, 2, 3, 31, 32, 33, 63, 64, 65, 1000, 1024, 1025, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63,
               2**64, -2**63, 10**30, 0.0, 0.5, 1.0, 1.5, -0.0, float("nan"), float("inf"), float("-inf"), 1e300,
               True, False, None, "", "1", "64", b"", b"\x01\x00\x00\x00", complex(1, 1))

value = st.sampled_from(ODD_NUMBERS).map(lambda v: ("value", v))
numpy_scalar = st.tuples(st.sampled_from(DTYPES[:15]), st.sampled_from([0, 1, -1, 3, 64, 2**31, 1e10, 0.5])).map(
    lambda args: ("numpy_scalar", *args))
array = st.tuples(st.sampled_from(DTYPES), st.sampled_from(SHAPES), st.sampled_from(LAYOUTS)).map(
    lambda args: ("array", *args))
odd_object = st.sampled_from([("object",), ("decimal", "1.5"), ("fraction", 3, 2), ("interface",),
                              ("type", "float"), ("type", "int"), ("type", "np.float32"), ("type", "object"),
                              ("generator", [("value", 1), ("value", 2)])])


@st.composite
def live_buffer(draw, types=BUFFER_TYPES) -> tuple:
    return ("buffer", draw(st.sampled_from(types)), draw(st.sampled_from([1, 2, 3, 4, 16, 100])),
            draw(st.sampled_from(["shared", "shared", "private"])), draw(st.sampled_from(BUFFER_STATES)))


created = st.tuples(st.one_of(value, numpy_scalar, st.just(("value", 4))),
                    st.one_of(st.sampled_from(BUFFER_TYPES + ("double", "float5", "vec<int,2>", "struct", "void",
                                                              "atomic_uint", "")).map(lambda t: ("value", t)),
                              st.sampled_from(["int", "float", "np.float32", "np.complex64", "np.void", "object"])
                              .map(lambda t: ("type", t)), value),
                    st.one_of(st.sampled_from(["shared", "private"]).map(lambda s: ("value", s)), value)
                    ).map(lambda args: ("create", *args))


def slot_value() -> st.SearchStrategy:
    """One entry of the buffers list: mostly a buffer, sometimes anything."""
    return st.one_of(live_buffer(), live_buffer(), st.just(("value", None)), value, numpy_scalar, array,
                     odd_object, created, array.map(lambda a: ("array_to_buffer", *a[1:])),
                     st.dictionaries(st.sampled_from(["scale", "count", "offset", "x", 3]),
                                     st.one_of(value, array), max_size=4)
                     .map(lambda d: ("dict", [(("value", k), v) for k, v in d.items()])))


@st.composite
def buffers_argument(draw) -> tuple:
    kind = draw(st.sampled_from(["list"] * 8 + ["tuple", "other"]))
    if kind == "other":
        return draw(st.one_of(value, array, live_buffer(), odd_object))
    slots = draw(st.lists(slot_value(), max_size=8))
    if draw(st.booleans()) and slots:  # some far slots: [[buffer(30)]], or past Metal's 31
        slots += [("value", None)] * draw(st.sampled_from([20, 25, 40]))
        slots.append(draw(slot_value()))
    return kind, slots


def size_argument() -> st.SearchStrategy:
    """A grid or threadgroup size: mostly valid ints and tuples, and every kind of wrong one."""
    component = st.one_of(st.sampled_from([1, 2, 3, 4, 7, 8, 31, 32, 33, 64, 100, 1000]).map(lambda v: ("value", v)),
                          value, numpy_scalar)
    return st.one_of(
        st.sampled_from([1, 2, 7, 32, 64, 65, 256, 1000, 1024, 4096]).map(lambda v: ("value", v)),
        value, numpy_scalar, array, odd_object,
        st.lists(component, max_size=4).map(lambda parts: ("tuple", parts)),
        st.lists(component, max_size=4).map(lambda parts: ("list", parts)),
        st.lists(component, min_size=1, max_size=3).map(lambda parts: ("metal_size", parts)),
    )


def threadgroup_memory_argument() -> st.SearchStrategy:
    key = st.one_of(st.sampled_from([0, 3, 1, 31, -1, 2**40]).map(lambda v: ("value", v)), value, numpy_scalar)
    size = st.one_of(st.sampled_from([0, 1, 4, 8, 64, 256, 4096, 32768, 65536]).map(lambda v: ("value", v)),
                     value, numpy_scalar)
    return st.one_of(st.lists(st.tuples(key, size), max_size=4).map(lambda items: ("dict", items)),
                     value, array, odd_object)


TIMEOUTS = (None, 0, -1, 1e-9, 0.5, 5, float("nan"), float("inf"), 1e300, "1", True)
CONSTANT_VALUES = (True, False, 0, 1, 3, -2, 2.5, float("nan"), 2**70, "1", None, b"\x01", complex(1, 2))


@st.composite
def set_function_call(draw) -> tuple:
    """(name, constants) for a fuzzed set_function: names known and unknown or not names; constants by index or
    name, of every type."""
    name = draw(st.one_of(st.sampled_from(KERNELS + ("missing", "", "count_threads ", "scaled\x00"))
                          .map(lambda n: ("value", n)), value, odd_object,
                          st.just(("list", [("value", "scaled")]))))
    keys = st.one_of(st.sampled_from([0, 1, 2, 3, -1, 2**64, "add_bias", "bias", "repeat_count", "missing", 1.0,
                                       None, True, b"bias", (0,)]).map(lambda k: ("value", k)), numpy_scalar)
    values = st.one_of(st.sampled_from(CONSTANT_VALUES).map(lambda v: ("value", v)), numpy_scalar, array)
    constants = draw(st.one_of(st.just(("value", None)),
                               st.lists(st.tuples(keys, values), max_size=3).map(lambda items: ("dict", items)),
                               value, array, st.just(("list", [("value", 1)]))))
    return name, constants


def _shared(type_name: str, count: int = 1) -> tuple:
    return ("buffer", type_name, count, "shared", "live")


# A call each kernel accepts: the start of the near-valid recipes, which then change one or two things.
VALID_CALLS = {
    "count_threads": ([_shared("uint")], None),
    "limited": ([_shared("uint")], None),
    "scaled": ([_shared("float", 4), ("value", 2.0), _shared("float", 4)], None),
    "with_params": ([("dict", [(("value", "scale"), ("value", 1.5)), (("value", "count"), ("value", 2)),
                               (("value", "offset"), ("array", "float32", (3,), "c"))]),
                     _shared("float4"), ("array", "float32", (4,), "c")], None),
    "with_scratch": ([_shared("float")], ("dict", [(("value", 0), ("value", 256)), (("value", 3), ("value", 64))])),
    "element_types": ([_shared("half"), _shared("packed_float3"), _shared("int2"), ("value", b"\x05"),
                       _shared("bfloat"), _shared("float3")] + [("value", None)] * 24 + [("value", 7)], None),
    "specialised": ([_shared("float"), _shared("float")], None),
}


@st.composite
def near_valid_recipes(draw) -> dict:
    """A call the kernel accepts, with one or two of its parts replaced by a fuzzed one."""
    kernel = draw(st.sampled_from(KERNELS))
    slots, memory = VALID_CALLS[kernel]
    slots = list(slots)
    recipe = {"kernel": kernel, "grid": ("value", draw(st.sampled_from([1, 3, 32, 64, 100, (4, 4), (3, 5, 7)]))),
              "buffers": ("list", slots), "wait": draw(st.booleans())}
    if memory is not None:
        recipe["threadgroup_memory"] = memory
    for _ in range(draw(st.integers(1, 2))):
        change = draw(st.sampled_from(["slot", "slot", "slot", "drop", "append", "grid", "grid", "threads",
                                       "memory", "timeout", "set", "function_name", "container"]))
        if change == "slot" and slots:
            slots[draw(st.integers(0, len(slots) - 1))] = draw(slot_value())
        elif change == "drop" and slots:
            del slots[draw(st.integers(0, len(slots) - 1))]
        elif change == "append":
            slots.append(draw(slot_value()))
        elif change == "grid":
            recipe["grid"] = draw(size_argument())
        elif change == "threads":
            recipe["threads_per_threadgroup"] = draw(size_argument())
        elif change == "memory":
            recipe["threadgroup_memory"] = draw(threadgroup_memory_argument())
        elif change == "timeout":
            recipe["timeout"] = ("value", draw(st.sampled_from(TIMEOUTS)))
        elif change == "set" and kernel != "specialised":
            recipe["set"] = draw(set_function_call())
        elif change == "function_name":
            recipe["function_name"] = draw(st.one_of(st.sampled_from(KERNELS + ("missing",))
                                                     .map(lambda n: ("value", n)), value, odd_object))
        elif change == "container":
            recipe["buffers"] = draw(st.sampled_from(["tuple", "list"])), slots
    return recipe



@st.composite
def wild_recipes(draw) -> dict:
    """Every argument drawn on its own: mostly far from a valid call."""
    recipe = {"kernel": draw(st.sampled_from(KERNELS)), "grid": draw(size_argument()),
              "buffers": draw(buffers_argument()), "wait": draw(st.booleans())}
    if recipe["kernel"] != "specialised" and draw(st.integers(0, 3)) == 0:
        recipe["set"] = draw(set_function_call())
    for key, strategy in (("threads_per_threadgroup", size_argument()),
                          ("threadgroup_memory", threadgroup_memory_argument()),
                          ("timeout", st.sampled_from(TIMEOUTS).map(lambda v: ("value", v))),
                          ("function_name", st.one_of(st.sampled_from(KERNELS + ("missing",))
                                                      .map(lambda n: ("value", n)), value, odd_object))):
        if draw(st.integers(0, 3)) == 0:
            recipe[key] = draw(strategy)
    return recipe


def run_recipes() -> st.SearchStrategy:
    """One set_function (and maybe a fuzzed one) and one run_function, as a recipe for the worker."""
    return st.one_of(near_valid_recipes(), near_valid_recipes(), wild_recipes())


@st.composite
def specialisation_recipes(draw) -> dict:
    """set_function of the function-constant kernel with fuzzed constants, then a plain run of it."""
    return {"kernel": "specialised", "set": (("value", "specialised"), draw(set_function_call())[1]),
            "grid": ("value", 1), "buffers": ("list", [("buffer", "float", 1, "shared", "live"),
                                                      ("buffer", "float", 1, "shared", "live")]),
            "wait": True}

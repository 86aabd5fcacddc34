"""What the fuzzers found, each as a plain test: arguments that raised a Python error from inside the library
instead of ArgumentError, and sources whose front end took time quadratic (or worse) in their size."""
from __future__ import annotations

import time

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel
from metalgpu.errors import ShaderCompileError
from metalgpu.msl.parser import parse
from metalgpu.msl.policy import MAX_DIAGNOSTICS
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

from .seeds import TESTS


@pytest.fixture
def gpu(iface):
    return load_kernel(iface, "scratch_fill.metal", "fill")


def _runs_right(gpu) -> None:
    out = gpu.create_buffer(4, "float")
    gpu.run_function(4, [out], threadgroup_memory={0: 4})
    assert out.contents.tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("name", [["fill"], ("fill",), 3, None, b"fill"])
def test_kernel_name_that_is_not_a_str(gpu, name):
    with pytest.raises(metalgpu.ArgumentError, match="kernel name must be a str"):
        gpu.set_function(name)
    if name is not None:  # function_name=None: the current kernel
        with pytest.raises(metalgpu.ArgumentError, match="kernel name must be a str"):
            gpu.run_function(4, [gpu.create_buffer(4, "float")], function_name=name, threadgroup_memory={0: 4})
    _runs_right(gpu)


@pytest.mark.parametrize("memory", [np.empty((5, 0), dtype=object), np.array([4]), np.zeros(0)])
def test_threadgroup_memory_given_as_a_numpy_array(gpu, memory):
    out = gpu.create_buffer(4, "float")
    with pytest.raises(metalgpu.ArgumentError, match="threadgroup_memory must be a dict"):
        gpu.run_function(4, [out], threadgroup_memory=memory)
    _runs_right(gpu)


def test_threadgroup_memory_keys_that_do_not_sort(gpu):
    # 2**63 and a numpy bool: sorting them for the plan cache's key raised OverflowError
    out = gpu.create_buffer(4, "float")
    gpu.run_function(4, [out], threadgroup_memory={2**63: 4, np.False_: 4})
    assert out.contents.tolist() == [2, 3, 4, 5]


def test_infinite_timeout_is_no_timeout(iface):
    load_kernel(iface, "scratch_fill.metal")
    out = iface.create_buffer(4, "float")
    iface.run_function(4, [out], function_name="fill", threadgroup_memory={0: 4}, timeout=float("inf"))
    assert out.contents.tolist() == [2, 3, 4, 5]
    with metalgpu.Interface(iface.backend, timeout=float("inf")) as patient:
        assert patient.timeout is None


@pytest.fixture
def times_k(iface):
    iface.load_shader(TESTS / "kernels" / "function_constants.metal")
    return iface


def _times_k(gpu, constants) -> list[int]:
    gpu.set_function("times_k", constants)
    out = gpu.create_buffer(4, "int")
    gpu.run_function(4, [out])
    return out.contents.tolist()


@pytest.mark.parametrize("key", [None, 1.5, (0,), b"multiplier", True])
def test_function_constant_named_by_what_is_not_an_index_or_a_name(times_k, key):
    with pytest.raises(metalgpu.ArgumentError, match="named by its index"):
        times_k.set_function("times_k", {key: 3})


@pytest.mark.parametrize("value", [np.arange(3), np.array(3), "3", None, b"\x03", complex(3, 0)])
def test_function_constant_value_that_is_not_a_number(times_k, value):
    with pytest.raises(metalgpu.ArgumentError, match="is not a bool, int or float"):
        times_k.set_function("times_k", {0: value})


def test_function_constant_value_as_a_numpy_scalar(times_k):
    assert _times_k(times_k, {0: np.int32(3)}) == _times_k(times_k, {"multiplier": 3}) == [0, 3, 6, 9]


# -- the front end in linear time ----------------------------------------------------------------------------------
# Each source below is a few tens of thousands of tokens: read in well under a second. The bound is generous for a
# busy machine; the quadratic readings these replace took minutes on them.
LINEAR_BOUND = 10.0


def _front_end(source: str) -> None:
    pre = preprocess(source, "<fuzz>", ())
    program = parse(pre.tokens, pre.sources)
    translate(pre, program, "cpu")
    translate(pre, program, "cuda")


def _kernel(body: str) -> str:
    return ("kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
            f"    float x = out[i];\n    {body}\n}}\n")


@pytest.mark.parametrize("brackets", ["[[" * 20_000, "[[" * 10_000 + "]]" * 10_000, "[[" * 10_000 + "]"])
def test_deeply_nested_attribute_brackets(brackets):
    started = time.perf_counter()
    try:  # refused by the front end or else by the C++ compiler: which one does not matter here
        _front_end(_kernel(f"out[i] = x {brackets};"))
    except ShaderCompileError:
        pass
    assert time.perf_counter() - started < LINEAR_BOUND


def test_a_long_run_of_extern():
    started = time.perf_counter()
    with pytest.raises(ShaderCompileError) as info:
        _front_end("extern " * 30_000 + "int x;\n" + _kernel("out[i] = x;"))
    assert time.perf_counter() - started < LINEAR_BOUND
    assert len(info.value.diagnostics) == MAX_DIAGNOSTICS
    assert info.value.diagnostics[0].pos.column == 1 and "'extern' declarations are refused" in str(info.value)


def test_extern_of_a_definition_is_still_told_from_a_declaration():
    _front_end('extern "C" float twice(float v) { return 2.0f * v; }\n' + _kernel("out[i] = twice(x);"))
    with pytest.raises(ShaderCompileError, match="'extern' declarations are refused"):
        _front_end('extern "C" extern float twice(float v);\n' + _kernel("out[i] = twice(x);"))


@pytest.mark.parametrize("suffix", ["h", "", "f", ".5h"])
def test_a_number_of_a_hundred_thousand_digits(suffix):
    started = time.perf_counter()
    _front_end(_kernel(f"out[i] = x + {'1' * 100_000}{suffix};"))
    assert time.perf_counter() - started < LINEAR_BOUND


@pytest.mark.parametrize("chain", [
    "x > 1 ? " * 20_000 + "x;",                                   # no `:` for any of them
    "(x > 1 ? " * 250 + "x" + ")" * 250 + ";",                    # each closed by its bracket first
    "f<" + "x > 1 ? " * 5_000 + "1 : 2" + ">" + ";",              # in template arguments, after comparisons
])
def test_long_runs_of_question_marks(chain):
    started = time.perf_counter()
    _front_end(_kernel(f"out[i] = {chain}"))
    assert time.perf_counter() - started < LINEAR_BOUND


def test_function_constant_attribute_after_a_braced_declaration():
    # the attribute begins a declaration of its own, with nothing but attributes: an IndexError in the parser
    source = "constant bool use_bias {{}} [[function_constant(0)]];\n" + _kernel("out[i] = x;")
    with pytest.raises(ShaderCompileError, match="a function constant is declared as") as info:
        _front_end(source)
    assert (info.value.pos.line, info.value.pos.column) == (1, 29)


@pytest.mark.parametrize("declaration", ["int operator", "int operator ;", "operator()", "struct S { int operator; };"])
def test_operator_without_a_parameter_list(declaration):
    # the declaration outline took the end of the file for the operator's '(' and indexed past it (IndexError)
    try:
        _front_end(_kernel("out[i] = x;") + declaration)
    except ShaderCompileError:
        pass


# -- nesting and integers: refused with a located error, never a RecursionError or a huge Python integer ---------
DEEP = 3000


@pytest.mark.parametrize("source, message", [
    ("namespace a { " * DEEP + "int y;" + " }" * DEEP, "brackets are nested more than 256 deep"),
    ("struct A { " * DEEP + "int y;" + " };" * DEEP, "brackets are nested more than 256 deep"),
    ('extern "C" { ' * DEEP + " }" * DEEP, "brackets are nested more than 256 deep"),
    ("void f() { auto g = " + "[](){ return " * DEEP + "1;" + " }();" * DEEP + " }", "nested more than 256 deep"),
    ("constant int c [[function_constant(" + "(" * DEEP + "0" + ")" * DEEP + ")]];", "nested more than 256 deep"),
    ("#if " + "(" * DEEP + "1" + ")" * DEEP + "\n#endif", "#if expression is nested too deeply"),
    ("#if " + "1 ? " * DEEP + "1" + " : 0" * DEEP + "\n#endif", "#if expression is nested too deeply"),
    ("#if " + "- " * DEEP + "1\n#endif", "#if expression is nested too deeply"),
    ("#define F(x) x\nint y = " + "F(" * DEEP + "1" + ")" * DEEP + ";", "macro calls are nested more than 100 deep"),
])
def test_deep_nesting_is_a_located_error(source, message):
    # each raised RecursionError from the recursive reading of the preprocessor, the parser or the outline
    with pytest.raises(ShaderCompileError, match=message) as info:
        _front_end(source + "\n" + _kernel("out[i] = x;"))
    assert info.value.pos is not None and info.value.pos.line <= 2


def test_nesting_up_to_the_limits_is_read():
    levels = 250
    source = ("namespace a { " * levels + "constant int y = 1;" + " }" * levels + "\n"
              + "#if " + "(" * 60 + "1" + ")" * 60 + "\n#define ONE 1\n#endif\n"
              + "#define F(x) x\nconstant int z = " + "F(" * 90 + "1" + ")" * 90 + ";\n"
              + _kernel("out[i] = x * ONE;"))
    _front_end(source)


def test_deep_casts_in_a_struct_bound(iface):
    # C-style casts chained in an array bound: the struct layout's evaluator recursed once per cast
    iface.load_shader_from_str("struct Deep { int a[" + "(int)" * DEEP + "1]; };\n"
                               "struct Fine { int a[" + "(int)" * 20 + "3]; };\n" + _kernel("out[i] = x;"))
    with pytest.raises(metalgpu.ArgumentError, match="nested too deeply"):  # struct_dtype's error for a bound
        iface.struct_dtype("Deep")
    assert iface.struct_dtype("Fine").itemsize == 12


@pytest.mark.parametrize("initialized", [True, False])
def test_a_long_chain_of_enumerators(initialized):
    # each enumerator's value was found by recursing through the one before it: a RecursionError from about 110
    count = 3000
    enumerators = [f"e{k} = e{k - 1} + 1" if k and initialized else f"e{k}" for k in range(count)]
    source = ("enum Slots { " + ", ".join(enumerators) + " };\n"
              + _kernel("out[i] = x;").replace("buffer(0)", f"buffer(e{count - 1} - {count - 2})"))
    pre = preprocess(source, "<fuzz>", ())
    assert parse(pre.tokens, pre.sources).kernels[0].params[0].index == 1


@pytest.mark.parametrize("condition, message", [
    ("1 << 99999999999", "'<<' overflows 64 bits in #if expression"),
    ("0x" + "f" * 17, "is too large for any integer type"),
    ("0" + "1" * 70_000, "is too large for any integer type"),  # octal: Python converts it however long
    ("1" * 70_000, "is not an integer constant"),
    ("0xffffffffffffffff * 2", "'[*]' overflows 64 bits"),
])
def test_integers_past_64_bits(condition, message):
    # Python's integers grew without bound: `1 << 99999999999` took seconds and gigabytes, and a 70,000-digit
    # index failed in the error message (ValueError: integer string conversion)
    started = time.perf_counter()
    with pytest.raises(ShaderCompileError, match=message):
        _front_end(f"#if {condition}\n#endif\n" + _kernel("out[i] = x;"))
    with pytest.raises(ShaderCompileError, match=message.replace("#if expression", "the index")):
        _front_end(_kernel("out[i] = x;").replace("buffer(0)", f"buffer({condition})"))
    assert time.perf_counter() - started < LINEAR_BOUND


def test_integers_within_64_bits_and_unevaluated_overflow():
    _front_end("#if 0xffffffffffffffff && -0xffffffffffffffff && !(0 && (1 << 99999999999))\n#define OK 1\n#endif\n"
               + _kernel("out[i] = x * OK;"))

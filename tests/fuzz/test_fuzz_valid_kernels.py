"""Random valid kernels whose results are checkable: an expression over 32-bit unsigned integers (wrapping
arithmetic, bit operations, shifts, guarded division, comparisons, min/max), written in MSL and evaluated with
numpy. The kernel runs in the fuzz worker; its output must equal numpy's exactly."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from .modes import fuzz_settings

COUNT = 64
TIMEOUT = 300.0

# (MSL template, numpy function) of each operation on uint32 values
BINARY = {
    "add": ("({a} + {b})", lambda a, b: a + b),
    "sub": ("({a} - {b})", lambda a, b: a - b),
    "mul": ("({a} * {b})", lambda a, b: a * b),
    "xor": ("({a} ^ {b})", lambda a, b: a ^ b),
    "and": ("({a} & {b})", lambda a, b: a & b),
    "or": ("({a} | {b})", lambda a, b: a | b),
    "shl": ("({a} << ({b} & 31u))", lambda a, b: a << (b & np.uint32(31))),
    "shr": ("({a} >> ({b} & 31u))", lambda a, b: a >> (b & np.uint32(31))),
    "div": ("({a} / ({b} | 1u))", lambda a, b: a // (b | np.uint32(1))),
    "mod": ("({a} % ({b} | 1u))", lambda a, b: a % (b | np.uint32(1))),
    "min": ("min({a}, {b})", np.minimum),
    "max": ("max({a}, {b})", np.maximum),
    "less": ("({a} < {b} ? {a} : {b} + 7u)", lambda a, b: np.where(a < b, a, b + np.uint32(7))),
}
UNARY = {
    "not": ("(~{a})", lambda a: ~a),
    "popcount": ("popcount({a})", lambda a: np.array([bin(int(v)).count("1") for v in a], np.uint32)),
    "reverse": ("reverse_bits({a})", lambda a: np.array([int(f"{int(v):032b}"[::-1], 2) for v in a], np.uint32)),
}


def _leaf() -> st.SearchStrategy:
    constants = st.integers(0, 2**32 - 1).map(lambda v: (f"{v}u", lambda env, v=v: np.full(COUNT, v, np.uint32)))
    inputs = st.sampled_from(["a[i]", "b[i]", "i"]).map(lambda name: (name, lambda env, name=name: env[name]))
    return st.one_of(inputs, constants)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    def binary(args):
        op, (left, left_eval), (right, right_eval) = args
        template, function = BINARY[op]
        return template.format(a=left, b=right), lambda env: function(left_eval(env), right_eval(env))

    def unary(args):
        op, (inner, inner_eval) = args
        template, function = UNARY[op]
        return template.format(a=inner), lambda env: function(inner_eval(env))

    return st.one_of(st.tuples(st.sampled_from(sorted(BINARY)), children, children).map(binary),
                     st.tuples(st.sampled_from(sorted(UNARY)), children).map(unary))


expressions = st.recursive(_leaf(), _extend, max_leaves=12)


def kernel_source(expression: str) -> str:
    return f"""#include <metal_stdlib>
using namespace metal;
kernel void computed(device const uint* a [[buffer(0)]], device const uint* b [[buffer(1)]],
                     device uint* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {{
    out[i] = {expression};
}}
"""


@fuzz_settings("valid_kernels")
@given(expression=expressions, seed=st.integers(0, 2**32 - 1))
def test_random_integer_kernels_match_numpy(fuzz_runner, expression, seed):
    text, evaluate = expression
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**32, COUNT, dtype=np.uint32)
    b = rng.integers(0, 2**32, COUNT, dtype=np.uint32)
    env = {"a[i]": a, "b[i]": b, "i": np.arange(COUNT, dtype=np.uint32)}
    with np.errstate(over="ignore"):
        expected = np.asarray(evaluate(env), dtype=np.uint32)
    outcome, result = fuzz_runner.check("run_kernel", (kernel_source(text), "computed", [a, b], COUNT),
                                        TIMEOUT, label="valid kernels")
    assert outcome == "ok", f"{text}: {result}"
    np.testing.assert_array_equal(result, expected, err_msg=text)

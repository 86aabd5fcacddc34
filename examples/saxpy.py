"""y = a * x + y on the device, with a scalar passed straight to a `constant float&` parameter.

Run from anywhere:  python examples/saxpy.py [--backend cpu|cuda|metal] [--n 1000000]
"""
from __future__ import annotations

import argparse

import numpy as np

import metalgpu

SAXPY_SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void saxpy(constant float& a [[buffer(0)]],
                  device const float* x [[buffer(1)]],
                  device float* y [[buffer(2)]],
                  uint id [[thread_position_in_grid]])
{
    y[id] = a * x[id] + y[id];
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--n", type=int, default=1_000_000, help="number of elements")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.n, dtype=np.float32)
    y = rng.standard_normal(args.n, dtype=np.float32)
    a = 2.0

    with metalgpu.Interface(backend=args.backend) as gpu:
        gpu.load_shader_from_string(SAXPY_SOURCE)
        gpu.set_function("saxpy")
        x_buf = gpu.array_to_buffer(x)  # copies x once; the kernel reads it in place
        y_buf = gpu.array_to_buffer(y)
        gpu.run_function(args.n, [a, x_buf, y_buf])  # `a` is converted to the kernel's float

        expected = np.float32(a) * x + y
        # An fma contraction may round once instead of twice: compare with a tolerance of a few ulp.
        np.testing.assert_allclose(y_buf.contents, expected, rtol=1e-5, atol=1e-5)
        print(f"saxpy on {args.n} elements: ok; y[:4] = {y_buf.contents[:4]}")


if __name__ == "__main__":
    main()

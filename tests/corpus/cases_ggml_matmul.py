"""Runtime cases of ggml's matrix kernels: mat-vec products (float and quantised), mat-mat products on
SIMD-group matrices, and flash attention for one query at a time."""
from __future__ import annotations

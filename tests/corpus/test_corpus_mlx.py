"""MLX-specific corpus checks beyond running kernels: one instantiation of a library over Metal's threadgroup
memory limit fails alone, as its pipeline does on Metal, while the rest of the file loads and compiles.

Skipped, with the reason, when $METALGPU_CORPUS_DIR is unset or lacks MLX."""
from __future__ import annotations

import pytest

from .harness import libraries, load, missing_reason

ATTENTION = "mlx/backend/metal/kernels/steel/attn/kernels/steel_attention.metal"


def _source(path: str):
    return next(f for library in libraries() if library.name == "mlx" for f in library.files if f.path == path)


def test_attention_over_the_threadgroup_limit_fails_alone(backend):
    """steel_attention instantiates float32 with a head size of 256: 32 queries x 260 floats of Q (33 KiB) plus
    the K/V tile, more than the 32 KiB of a threadgroup. That kernel fails to compile with the limit named; the
    float16 kernel of the same head size and the float32 kernel of head size 64 compile."""
    import metalgpu

    source = _source(ATTENTION)
    reason = missing_reason(source)
    if reason:
        pytest.skip(reason)
    with metalgpu.Interface(backend=backend) as gpu:
        load(gpu, source)
        with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB"):
            gpu.set_function("steel_attention_float32_bq32_bk16_bd256_wm4_wn1_maskfloat32")
        for name in ("steel_attention_float16_bq32_bk16_bd256_wm4_wn1_maskfloat16",
                     "steel_attention_float32_bq32_bk32_bd64_wm4_wn1_maskfloat32"):
            gpu.set_function(name)
            assert gpu.maxThreadsPerGroup() == 128  # [[max_total_threads_per_threadgroup(WM * WN * 32)]]

"""The command line: python -m metalgpu info | check | translate (demo runs in CI through the README)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).parent / "kernels"
SRC = Path(__file__).resolve().parent.parent / "src"
BROKEN = "#include <metal_stdlib>\nusing namespace metal;\n" \
         "kernel void k(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n    o[i] = nope;\n}\n"


def metalgpu(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "metalgpu", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_info_lists_the_cpu_backend():
    result = metalgpu("info")
    assert result.returncode == 0 and "cpu" in result.stdout


def test_translate_prints_the_cpp_with_line_directives():
    result = metalgpu("translate", str(KERNELS / "saxpy.metal"))
    assert result.returncode == 0
    assert '#line' in result.stdout and "saxpy.metal" in result.stdout and "mg_run_0" in result.stdout


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_check_compiles_without_running_and_reports_errors_on_the_users_line(target, tmp_path):
    if target == "cuda":
        pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    good = metalgpu("check", str(KERNELS / "matmul.metal"), "--target", target)
    assert good.returncode == 0 and "kernels: matmul" in good.stdout, good.stderr
    broken = tmp_path / "broken.metal"
    broken.write_text(BROKEN)
    bad = metalgpu("check", str(broken), "--target", target)
    assert bad.returncode == 1
    assert f"{broken}:4:12" in bad.stderr and "nope" in bad.stderr

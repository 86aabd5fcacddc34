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


def test_check_for_metal_says_why_it_cannot():
    result = metalgpu("check", str(KERNELS / "matmul.metal"), "--target", "metal")
    assert result.returncode == 1 and "BackendUnavailableError" in result.stderr
    assert "Apple's Metal compiler" in result.stderr and "--target cpu or cuda" in result.stderr


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_check_compiles_every_kernel_of_a_big_library_and_names_each_failure(target, tmp_path):
    if target == "cuda":
        pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from test_library_loading import BIG, HUGE_LINE, NAMES

    shader = tmp_path / "src" / "big.metal"
    shader.parent.mkdir()
    shader.write_text(BIG)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "factor.h").write_text("#define FACTOR 1\n")
    missing = metalgpu("check", str(shader), "--target", target)
    assert missing.returncode == 1 and "factor.h" in missing.stderr  # the header is in no folder it searches
    result = metalgpu("check", str(shader), "--target", target, "-I", str(tmp_path / "include"))
    assert result.returncode == 1
    assert f"kernels: {', '.join(NAMES)}" in result.stdout
    assert "1 kernel fail (staged_huge)" in result.stderr and f"{shader}:{HUGE_LINE}:" in result.stderr
    assert f"{len(NAMES) - 1} of {len(NAMES)} kernels compile for {target}" in result.stderr


def test_translate_takes_include_folders_and_kernels(tmp_path):
    from test_library_loading import BIG, NAMES

    shader = tmp_path / "big.metal"
    shader.write_text(BIG)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "factor.h").write_text("#define FACTOR 1\n")
    (tmp_path / "elsewhere").mkdir()
    shader = shader.rename(tmp_path / "elsewhere" / "big.metal")
    result = metalgpu("translate", str(shader), "-I", str(tmp_path / "include"), "--kernel", "plain_add")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("MG_EXPORT int mg_run_") == 1 and f"mg_run_{NAMES.index('plain_add')}(" in result.stdout

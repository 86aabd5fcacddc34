"""The original README example, run unchanged through every way of loading a shader."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

ORIGINAL_EXAMPLE = REPO_ROOT / "examples" / "original"
ORIGINAL_SHADER = (ORIGINAL_EXAMPLE / "shader.metal").read_text()


def run_original_example(instance, buffer_size):
    """The body of the original README's main.py, after load_shader."""
    instance.set_function("adder")  # Name of the function that will be ran (Can be changed at any time)

    buffer_type = ctypes.c_int  # Types of the items inside the buffer

    buffer1 = instance.create_buffer(buffer_size, buffer_type)  # Create a shared gpu-cpu buffer.
    buffer2 = instance.create_buffer(buffer_size, buffer_type)
    buffer3 = instance.create_buffer(buffer_size, buffer_type)

    for i in range(buffer_size):
        buffer1.contents[i] = i
        buffer2.contents[i] = int(np.sqrt(i))

    instance.run_function(buffer_size, [buffer1, buffer2, buffer3])  # Computes i + int(sqrt(i))

    for i in range(buffer_size):
        assert buffer3.contents[i] == i + int(np.sqrt(i))

    buffer1.release()
    buffer2.release()
    buffer3.release()


def test_original_example_load_shader_file(iface, tmp_path):
    shader = tmp_path / "shader.metal"
    shader.write_text(ORIGINAL_SHADER)
    iface.load_shader(str(shader))
    run_original_example(iface, buffer_size=100000)  # the README's own size


def test_original_example_load_shader_relative_path(iface, tmp_path, monkeypatch):
    (tmp_path / "shader.metal").write_text(ORIGINAL_SHADER)
    monkeypatch.chdir(tmp_path)  # the README loads "./shader.metal" from the working directory
    iface.load_shader("./shader.metal")
    run_original_example(iface, buffer_size=1000)


@pytest.mark.parametrize("method", ["load_shader_from_str", "load_shader_from_string"])
def test_original_example_from_source_text(iface, method):
    getattr(iface, method)(ORIGINAL_SHADER)
    run_original_example(iface, buffer_size=1000)


def _subprocess_env(backend: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["METALGPU_BACKEND"] = backend
    return env


def test_examples_original_main_runs(backend):
    result = subprocess.run([sys.executable, "main.py"], cwd=ORIGINAL_EXAMPLE, env=_subprocess_env(backend),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_examples_saxpy_runs(backend):
    script = REPO_ROOT / "examples" / "saxpy.py"
    result = subprocess.run([sys.executable, str(script), "--backend", backend, "--n", "100000"],
                            env=_subprocess_env(backend), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout

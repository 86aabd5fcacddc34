"""Wrong arguments to the Interface and Buffer raise API.md's exceptions (ArgumentError here), never an
AttributeError, TypeError or ValueError from inside the library, and leave the Interface and the buffer as they
were."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu
from conftest import KERNELS_DIR, load_kernel


@pytest.fixture
def gpu(iface):
    return load_kernel(iface, "scratch_fill.metal", "fill")


@pytest.mark.parametrize("memory", [[4], (4,), "4", 4])
def test_threadgroup_memory_that_is_not_a_dict(gpu, memory):
    out = gpu.create_buffer(4, "float")
    with pytest.raises(metalgpu.ArgumentError, match="threadgroup_memory must be a dict"):
        gpu.run_function(4, [out], threadgroup_memory=memory)
    gpu.run_function(4, [out], threadgroup_memory={0: 4})
    assert out.contents.tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("constants", [[1], "x", 3])
def test_function_constants_that_are_not_a_dict(gpu, constants):
    with pytest.raises(metalgpu.ArgumentError, match="constants must be a dict"):
        gpu.set_function("fill", constants)


@pytest.mark.parametrize("name", [3, None, b"Pair"])
def test_struct_dtype_of_a_name_that_is_not_a_str(gpu, name):
    with pytest.raises(metalgpu.ArgumentError, match="takes the struct's name as a str"):
        gpu.struct_dtype(name)
    assert gpu.struct_dtype("Pair").itemsize == 8


@pytest.mark.parametrize("path", [None, 3, ["a.metal"]])
def test_load_shader_of_a_path_that_is_not_one(iface, path):
    with pytest.raises(metalgpu.ArgumentError, match="shader path must be a str or a path"):
        iface.load_shader(path)


def test_array_to_buffer_of_ragged_lists(iface):
    with pytest.raises(metalgpu.ArgumentError, match="array_to_buffer: cannot make an array"):
        iface.array_to_buffer([[1.0], [1.0, 2.0]])


@pytest.mark.parametrize("values, match", [
    ([[1.0], [1.0, 2.0], [3.0], [4.0]], "cannot make an array"),
    ([object()] * 4, "cannot store the values given as float"),
    (["1", "2", "3", "4"], "takes numbers"),
    (np.ones(4, np.complex64), "takes numbers"),
])
def test_write_of_values_that_are_not_numbers_leaves_the_buffer_as_it_was(iface, values, match):
    buffer = iface.array_to_buffer(np.arange(4, dtype=np.float32))
    with pytest.raises(metalgpu.ArgumentError, match=match):
        buffer.write(values)
    assert buffer.contents.tolist() == [0, 1, 2, 3]


def test_write_of_python_ints_beyond_64_bits_still_converts(iface):
    buffer = iface.create_buffer(2, "float")
    buffer.write([10**40, 1])
    assert buffer.contents.tolist() == [float("inf"), 1]


def test_include_dirs_that_are_not_paths(iface, tmp_path):
    shader = tmp_path / "k.metal"
    shader.write_text((KERNELS_DIR / "scratch_fill.metal").read_text())
    with pytest.raises(metalgpu.ArgumentError, match="include_dirs must hold folder paths"):
        iface.load_shader(shader, include_dirs=[3])
    iface.load_shader(shader, include_dirs=[tmp_path])
    assert iface.function_names == ["fill"]


@pytest.mark.parametrize("name", [3, ["cpu"]])
def test_backend_that_is_not_a_name(name):
    with pytest.raises(metalgpu.ArgumentError, match="backend must be a name"):
        metalgpu.Interface(backend=name)

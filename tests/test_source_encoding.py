"""A shader file that is not UTF-8 is a ShaderCompileError at its first bad byte (file, line, column and byte
offset), from load_shader and from the command line alike, never a UnicodeDecodeError."""
from __future__ import annotations

import pickle

import pytest

import metalgpu
from metalgpu.__main__ import main

KERNEL = b"kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 1; }\n"
LATIN1 = b"#include <metal_stdlib>\n// r\xe9sum\xe9 of the kernel\n" + KERNEL  # 0xe9 at line 2, column 5


@pytest.fixture
def latin1_shader(tmp_path):
    path = tmp_path / "latin1.metal"
    path.write_bytes(LATIN1)
    return path


def test_load_shader_reports_the_first_byte_that_is_not_utf8(iface, latin1_shader):
    with pytest.raises(metalgpu.ShaderCompileError) as caught:
        iface.load_shader(latin1_shader)
    error = caught.value
    offset = LATIN1.index(b"\xe9")
    assert (error.pos.file, error.pos.line, error.pos.column) == (str(latin1_shader), 2, 5)
    assert f"byte 0xe9 at offset {offset}" in str(error) and "UTF-8" in str(error)
    assert pickle.loads(pickle.dumps(error)).pos == error.pos
    iface.load_shader_from_str(LATIN1.decode("latin-1").replace("\xe9", "e"))  # the Interface stays usable
    assert iface.function_names == ["k"]


def test_utf8_text_outside_ascii_still_loads(iface, tmp_path):
    path = tmp_path / "utf8.metal"
    path.write_bytes(LATIN1.decode("latin-1").encode("utf-8"))
    iface.load_shader(path)
    assert iface.function_names == ["k"]


@pytest.mark.parametrize("command", ["check", "translate"])
def test_command_line_reports_it_in_one_line(latin1_shader, capsys, command):
    assert main([command, str(latin1_shader)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith(f"metalgpu: ShaderCompileError: {latin1_shader}:2:5: error: the file is not UTF-8 text")


def test_unreadable_file_is_still_an_argument_error(iface, tmp_path):
    with pytest.raises(metalgpu.ArgumentError, match="cannot read shader .*missing.metal"):
        iface.load_shader(tmp_path / "missing.metal")

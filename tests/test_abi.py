"""msl/abi.py against the C++ it describes: every offset, size and enum value of the records that C++ and Python
share, as the host compiler (g++) and NVRTC lay them out. The compiled repeat path's fields are checked in
tests/test_cuda_repeat.py, which builds it."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from metalgpu.backends.base import CompileOptions, CompilerFailed
from metalgpu.msl import abi
from metalgpu.msl.abi import CudaLaunchLayout

LAYOUTS = [CudaLaunchLayout(1, 0), CudaLaunchLayout(3, 0), CudaLaunchLayout(4, 2, inline_slots=0b1000),
           CudaLaunchLayout(31, 31, inline_slots=1 << 30), CudaLaunchLayout(2, 1)]
ENUMS = {**{f"mg::bind_{kind}": value for value, kind in enumerate(abi.BINDING_KINDS)},
         **{f"mg::kind_{kind}": value for value, kind in enumerate(abi.SCALAR_KINDS)}}
CPU_ENUMS = {**ENUMS, "mg::coop::status_deadlock": abi.STATUS_DEADLOCK,
             "mg::coop::status_no_stack": abi.STATUS_NO_STACK}


def _cpu_dispatch_offsets() -> dict[str, int]:
    offsets, offset = {}, 0
    for name, count in abi.CPU_DISPATCH_FIELDS:
        offsets[name], offset = offset, offset + 4 * count
    return offsets


def _run_with_gxx(tmp_path: Path, body: list[str], prelude: str) -> list[list[int]]:
    """Compile a program that prints one row of numbers per line of ``body`` (printf calls) and run it."""
    program = tmp_path / "abi.cpp"
    program.write_text(prelude + "\n#include <cstddef>\n#include <cstdio>\nint main() {\n" + "\n".join(body) + "\n}\n")
    subprocess.run(["g++", "-std=c++17", "-w", "-DMG_TARGET_CPU=1", "-I", str(abi.INCLUDE_DIR), "-o",
                    str(tmp_path / "abi"), str(program)], check=True)
    printed = subprocess.run([str(tmp_path / "abi")], check=True, capture_output=True, text=True).stdout
    return [[int(n) for n in line.split()] for line in printed.splitlines()]


def test_cpu_records_and_enums_match_the_headers(tmp_path):
    """mg::binding_info, mg::dispatch_t, the binding and scalar kinds and the cooperative runner's statuses, as g++
    compiles the CPU headers."""
    binding = [f'std::printf("%zu ", offsetof(mg::binding_info, {name}));' for name in abi.BINDING_FIELDS]
    binding.append('std::printf("%zu\\n", sizeof(mg::binding_info));')
    dispatch = [f'std::printf("%zu ", offsetof(mg::dispatch_t, {name}));' for name, _ in abi.CPU_DISPATCH_FIELDS]
    dispatch.append('std::printf("%zu\\n", sizeof(mg::dispatch_t));')
    enums = [f'std::printf("%d ", int({name}));' for name in CPU_ENUMS] + ['std::printf("\\n");']
    rows = _run_with_gxx(tmp_path, ["".join(binding), "".join(dispatch), "".join(enums)],
                         "#include <metal_stdlib>\n#include <metal/_launch_cpu.h>")
    assert rows[0] == [abi.BINDING_DTYPE.fields[name][1] for name in abi.BINDING_FIELDS] + [abi.BINDING_DTYPE.itemsize]
    offsets = _cpu_dispatch_offsets()
    assert rows[1] == [offsets[name] for name, _ in abi.CPU_DISPATCH_FIELDS] + [4 * sum(n for _, n in
                                                                                          abi.CPU_DISPATCH_FIELDS)]
    assert rows[2] == list(CPU_ENUMS.values())
    record = abi.cpu_dispatch_record((1, 2, 3), (4, 5, 6), (7, 8, 9), range(100, 131))
    assert record.nbytes == rows[1][-1] and record[offsets["threadgroup_bytes"] // 4] == 100


def test_cuda_launch_record_matches_the_header(tmp_path):
    """The host compiler's own offsets of mg::launch_t<...> (the struct taken from the header: the same field sizes
    and alignments as on the GPU, which NVRTC confirms below) against the layout the backend packs records by."""
    header = (abi.INCLUDE_DIR / "metal" / "_launch_cuda.h").read_text()
    struct = header[header.index("template <int Slots, int Threadgroups, int ConstantBytes>"):]
    struct = struct[:struct.index("};") + 2]
    fields = [field[0] for field in abi.LAUNCH_FIELDS]
    aliases, body = [], []
    for k, layout in enumerate(LAYOUTS):  # aliases: offsetof is a macro, and would split the template's commas
        aliases.append(f"using L{k} = launch_t<{layout.slots}, {layout.threadgroups}, {layout.constant_bytes}>;")
        body.append("".join(f'std::printf("%zu ", offsetof(L{k}, {name}));' for name in fields) +
                    f'std::printf("%zu %zu\\n", sizeof(L{k}), alignof(L{k}));')
    rows = _run_with_gxx(tmp_path, body, "#include <cstdint>\n" + struct + "\n" + "\n".join(aliases))
    for layout, row in zip(LAYOUTS, rows, strict=True):
        dtype = layout.dtype
        assert row[:-2] == [layout.offsets[name] for name in fields] == [dtype.fields[n][1] for n in fields], layout
        assert row[-2:] == [layout.size, abi.LAUNCH_ALIGNMENT] and dtype.itemsize == layout.size, layout


def test_launch_record_fields_take_the_sizes_of_the_template_arguments():
    dtype = CudaLaunchLayout(4, 2, inline_slots=0b1000).dtype
    assert dtype["slots"].shape == (4,) and dtype["threadgroup_offset"].shape == (2,)
    assert dtype["constants"].shape == (abi.INLINE_CONSTANT_BYTES,)
    assert CudaLaunchLayout(1, 0).dtype["constants"].shape == (1,)  # one byte where no constant goes inline
    assert CudaLaunchLayout(1, 0).dtype["threadgroup_offset"].shape == (1,)
    assert dtype["inline_mask"].shape == dtype["groups_per_block"].shape == ()


def _nvrtc_assertions(wrong: str | None = None) -> str:
    """A CUDA translation unit that static_asserts every value of msl/abi.py; ``wrong`` names one to get wrong."""
    checks = {f"offsetof(mg::binding_info, {name})": abi.BINDING_DTYPE.fields[name][1]
              for name in abi.BINDING_FIELDS}
    checks["sizeof(mg::binding_info)"] = abi.BINDING_DTYPE.itemsize
    checks.update({f"int({name})": value for name, value in ENUMS.items()})
    aliases = []
    for k, layout in enumerate(LAYOUTS):
        aliases.append(f"using L{k} = mg::launch_t<{layout.slots}, {layout.threadgroups}, {layout.constant_bytes}>;")
        checks.update({f"offsetof(L{k}, {name})": offset for name, offset in layout.offsets.items()})
        checks[f"sizeof(L{k})"], checks[f"alignof(L{k})"] = layout.size, abi.LAUNCH_ALIGNMENT
    checks["sizeof(mg_debug_bytes) / sizeof(mg_debug_bytes[0])"] = abi.DEBUG_BYTES_COUNT
    checks["sizeof(mg_debug_fault) / sizeof(mg_debug_fault[0])"] = len(abi.DEBUG_FAULT_FIELDS)
    checks["sizeof(mg_debug_fault[0])"] = 8
    lines = ["#define MG_TARGET_CUDA 1", "#define MG_DEBUG_BOUNDS 1", "#include <metal_stdlib>",
             "#include <metal/_launch_cuda.h>", "#define offsetof(type, member) __builtin_offsetof(type, member)",
             *aliases]
    for expression, value in checks.items():
        value = value + 1 if expression == wrong else value
        lines.append(f'static_assert({expression} == {value}, "{expression} is not {value}");')
    return "\n".join(lines) + "\n"


def test_nvrtc_lays_the_records_out_as_abi_says():
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from cuda.bindings import nvrtc

    from metalgpu.backends.nvrtc import nvrtc_compile

    if nvrtc.nvrtcVersion()[1:] < (13, 5):  # the records are still exercised by every CUDA dispatch test
        pytest.skip("this NVRTC has no __builtin_offsetof (13.5 and later have)")
    nvrtc_compile(_nvrtc_assertions(), CompileOptions(), "sm_90")
    with pytest.raises(CompilerFailed, match="offsetof\\(L3, constants\\) is not"):  # the checks can fail
        nvrtc_compile(_nvrtc_assertions(wrong="offsetof(L3, constants)"), CompileOptions(), "sm_90")


def test_bindings_are_read_from_their_bytes():
    records = np.array([(0, 0, 2, 4, 1, 0, 3, 4, 1), (3, 1, 0, 16, 0, 0, 5, 2, 8), (4, 2, -1, 4, 1, 1, 2, 4, 3)],
                       dtype=np.int32)
    first, second, third = abi.read_bindings(records.tobytes(), 3)
    assert first == abi.BindingInfo(0, "buffer", 2, 4, True, False, "float", 4, 1)
    assert (second.kind, second.scalar_kind, second.lanes) == ("threadgroup", "bfloat", 8)
    assert (third.kind, third.index, third.is_reference, third.scalar_kind) == ("builtin", -1, True, "unsigned")
    assert abi.read_bindings(records.tobytes(), 1) == [first]


def test_the_include_folder_and_its_checksum():
    assert (abi.INCLUDE_DIR / "metal_stdlib").is_file() and (abi.INCLUDE_DIR / "metal" / "_launch_cpu.h").is_file()
    assert len(abi.headers_checksum()) == 64

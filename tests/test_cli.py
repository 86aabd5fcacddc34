"""The command line through subprocess: python -m metalgpu --version | info | demo | bench | check | translate |
cache, good input and bad."""
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


# -- the command line's own behaviour: version, errors in one line, pipes, the cache, the demo's phases ----------

def metalgpu_in(cache: Path, *args: str) -> subprocess.CompletedProcess:
    """The command line with its own compile cache folder."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               METALGPU_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "metalgpu", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_version():
    import metalgpu

    result = metalgpu_in(Path("unused"), "--version")
    assert result.returncode == 0 and result.stdout == f"metalgpu {metalgpu.__version__}\n"
    assert metalgpu.__version__.startswith("2.")  # the successor of the original 1.x


def test_info_says_why_each_other_backend_does_not_work():
    import metalgpu

    cache = Path(os.environ["METALGPU_CACHE_DIR"])  # the session's: the cpu backend's runner is built there
    result = metalgpu_in(cache, "info")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"metalgpu {metalgpu.__version__} (Python ")
    working = metalgpu.backends()
    for name in ("metal", "cuda", "cpu"):
        line = next(line for line in lines if line.strip().startswith(f"{name} "))
        verdict, reason = line.split(maxsplit=2)[1:]
        if name in working:
            assert verdict == "yes:" and reason.startswith(f"{name} (")
        else:
            assert verdict == "no:" and len(reason) > 10  # a reason, not just "no"
    if sys.platform != "darwin":
        assert "needs macOS" in result.stdout
    from metalgpu.cli.commands import nvrtc_version

    version = nvrtc_version()
    if version is not None:  # the NVRTC that compiles for cuda is named, with or without a GPU
        assert f"NVRTC {version[0]}.{version[1]}" in result.stdout
    assert f"Interface() uses: {os.environ.get('METALGPU_BACKEND') or working[0]}" in result.stdout
    assert f"compile cache: {cache} (" in result.stdout


BAD_INPUT = [
    (["translate", "nope.metal"], 1, "metalgpu: ArgumentError: cannot read shader 'nope.metal'"),
    (["check", "nope.metal"], 1, "metalgpu: ArgumentError: cannot read shader 'nope.metal'"),
    (["translate", str(KERNELS / "saxpy.metal"), "--kernel", "nope"], 1, "no kernel named nope; kernels: saxpy"),
    (["check", str(KERNELS / "saxpy.metal"), "-I", "no/such/folder"], 1, "include folder 'no/such/folder'"),
    (["check", str(KERNELS / "saxpy.metal"), "--jobs", "-1"], 1, "--jobs must be at least 1"),
    (["check", str(KERNELS / "saxpy.metal"), "--target", "vulkan"], 2, "metalgpu check: error: argument --target"),
    (["frobnicate"], 2, "metalgpu: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["demo", "--size", "ten"], 2, "metalgpu demo: error: argument --size: invalid int value"),
    (["demo", "--size", "0"], 1, "--size must be at least 1"),
    (["demo", "--backend", "metal"], 1, "metalgpu: BackendUnavailableError: the metal backend is not in this"),
    (["demo", "--backend", "vulkan"], 1, "unknown backend 'vulkan'"),
    (["bench", "--matrix", "100"], 1, "--matrix a positive multiple of 16"),
    ([], 2, "metalgpu: error: the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("args, code, first_line", BAD_INPUT, ids=[" ".join(a[0:1] + a[-1:]) for a, _, _ in BAD_INPUT])
def test_bad_input_fails_in_one_line_without_a_traceback(tmp_path, args, code, first_line):
    result = metalgpu_in(tmp_path, *args)
    assert result.returncode == code
    assert result.stderr.count("\n") == 1 and first_line in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_traceback_flag_shows_the_traceback(tmp_path):
    result = metalgpu_in(tmp_path, "--traceback", "translate", "nope.metal")
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback") and "ArgumentError: cannot read shader" in result.stderr


def test_a_compile_error_names_the_users_line_after_its_first_line(tmp_path):
    broken = tmp_path / "broken.metal"
    broken.write_text(BROKEN)
    result = metalgpu_in(tmp_path, "translate", str(broken))  # translate parses; this error is the compiler's
    assert result.returncode == 0
    result = metalgpu_in(tmp_path, "check", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr and f"{broken}:4:12" in result.stderr


def test_output_piped_into_head_ends_quietly(tmp_path):
    """The reader stops after one line (`| head -1`): no BrokenPipeError, no message, SIGPIPE's exit code."""
    shader = tmp_path / "many.metal"
    kernel = "kernel void k{0}(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {{ o[i] = {0}; }}\n"
    kernels = "".join(kernel.format(i) for i in range(400))
    shader.write_text("#include <metal_stdlib>\nusing namespace metal;\n" + kernels)
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               METALGPU_CACHE_DIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-m", "metalgpu", "translate", str(shader)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    first = process.stdout.readline()
    process.stdout.close()  # as head does once it has its line
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=300) == 141
    assert first and stderr == b""


def test_cache_counts_every_file_it_owns(tmp_path):
    cache = tmp_path / "cache"
    artifacts = cache / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "prelude.h.gch").write_bytes(b"\0" * 3_000_000)  # what a precompiled-header build leaves
    result = metalgpu_in(cache, "cache")
    assert result.returncode == 0
    assert result.stdout == (f"{cache}: 0 entries (0.0 MB), 1 build artifact such as precompiled headers (3.0 MB); "
                             "3.0 MB in all\n")
    result = metalgpu_in(cache, "cache", "--clear")
    assert result.stdout == f"removed 0 entries and 1 build artifact (3.0 MB in all) from {cache}\n"
    assert result.returncode == 0 and not artifacts.exists()


def test_demo_explains_its_phases(tmp_path):
    """A first run builds the native runner and the precompiled headers and compiles the kernel; a second finds
    everything in the cache. -v logs each long step."""
    first = metalgpu_in(tmp_path, "-v", "demo", "--backend", "cpu", "--size", "1000")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("metalgpu ") and "demo: saxpy" in lines[0]
    assert "first run: built the cpu backend's native runner (one time" in first.stdout
    assert "cache miss: translated and compiled the kernel" in first.stdout
    assert "first run: built the precompiled headers (one time" in first.stdout
    assert "result    correct" in first.stdout
    assert "metalgpu: compiling 1 kernel of <string> for cpu: done in" in first.stderr
    second = metalgpu_in(tmp_path, "demo", "--backend", "cpu", "--size", "1000")
    assert second.returncode == 0 and "cache hit: loaded the compiled kernel from the cache" in second.stdout
    assert "first run" not in second.stdout and second.stderr == ""  # not a terminal: no progress lines


def test_bench_prints_ratios_against_numpy():
    result = metalgpu_in(Path(os.environ["METALGPU_CACHE_DIR"]), "bench", "--backend", "cpu", "--size", "10000",
                         "--matrix", "32", "--repeat", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("metalgpu ") and "bench on cpu" in lines[0]
    assert "vs numpy" in lines[1]
    rows = [line for line in lines[2:] if line.rstrip().endswith("x")]
    assert len(rows) == 4 and all(float(row.split()[-1].rstrip("x")) > 0 for row in rows)


def test_long_steps_log_at_info_and_show_on_a_terminal(iface, caplog):
    import io
    import logging
    import time

    from metalgpu.cli.progress import TerminalProgress
    from metalgpu.progress import long_step

    with caplog.at_level(logging.INFO, logger="metalgpu"):
        iface.load_shader_from_str(f"kernel void fresh_{time.time_ns()}(device float* o [[buffer(0)]]) {{ o[0] = 1; }}")
    assert any(m.startswith("compiling 1 kernel of <string> for ") and ": done in " in m for m in caplog.messages)
    terminal = io.StringIO()
    handler = TerminalProgress(terminal, show_after=0.0, tick=0.01)
    logger = logging.getLogger("metalgpu")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with long_step("building something"):
            time.sleep(0.2)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
    drawn = terminal.getvalue()
    assert "\r\033[Kmetalgpu: building something ... 0." in drawn and drawn.endswith("\r\033[K")

"""NVRTC runs in a worker process held to the compile limits: a compile past METALGPU_COMPILE_TIMEOUT or
METALGPU_COMPILE_MEMORY is a ShaderCompileError naming the limit and its variable, the worker is replaced after it
is ended by a limit, by Ctrl-C or from outside, a child made by fork compiles with workers of its own, and workers
end with their process. Needs NVRTC, not a GPU."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import REPO_ROOT
from metalgpu.backends.base import CompileOptions, CompilerFailed
from metalgpu.cache import CompileCache
from metalgpu.errors import ShaderCompileError

pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the compile worker uses POSIX process groups")

from metalgpu.backends.nvrtc import NvrtcCompiler, nvrtc_compile  # noqa: E402
from metalgpu.backends.nvrtc_limited import WORKERS, WorkerPool  # noqa: E402

# 64,000 distinct instantiations, each step of the recursion well within NVRTC's depth limit: NVRTC takes tens of
# seconds and over a GiB, while the source is a few lines
SLOW_MSL = """
template <int I, int J, int K> struct Grid {
    static constexpr uint value = Grid<I - 1, J, K>::value * 3u + Grid<I, J - 1, K>::value + Grid<I, J, K - 1>::value;
};
template <int J, int K> struct Grid<0, J, K> { static constexpr uint value = J; };
template <int I, int K> struct Grid<I, 0, K> { static constexpr uint value = I; };
template <int I, int J> struct Grid<I, J, 0> { static constexpr uint value = I + J; };
kernel void slow(device uint* out [[buffer(0)]]) { out[0] = Grid<40, 40, 40>::value; }
"""
SLOW_CUDA = SLOW_MSL.replace("uint", "unsigned").replace("kernel void slow(device unsigned*",
                                                          'extern "C" __global__ void slow(unsigned*')
SMALL_MSL = """
#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) { a[i] *= SCALE; }
"""


def library(tmp_path, source: str):
    from metalgpu.backends import open_compiler
    from metalgpu.library import Library

    cache = CompileCache(tmp_path / "cache")
    return Library(None, cache, CompileOptions(), source, str(tmp_path / "shader.metal"), (),
                   compiler=open_compiler("cuda", cache))


def small_compiles(tmp_path, scale: str = "2.0f") -> None:
    entry = library(tmp_path / scale, SMALL_MSL.replace("SCALE", scale)).binary("scale")
    assert entry.path.read_bytes()[:4] == b"\x7fELF"


def test_compile_past_the_time_limit_names_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("METALGPU_COMPILE_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(ShaderCompileError) as info:
        library(tmp_path, SLOW_MSL).binary("slow")
    assert time.monotonic() - started < 4.0  # the time limit, the front end and starting a worker
    assert "limit of 1 seconds" in str(info.value) and "METALGPU_COMPILE_TIMEOUT" in str(info.value)
    small_compiles(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the memory limit is set on Linux")
def test_compile_past_the_memory_limit_names_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("METALGPU_COMPILE_MEMORY", "200")  # a small kernel with the headers needs about 80 MiB
    small_compiles(tmp_path, "3.0f")
    with pytest.raises(ShaderCompileError) as info:
        library(tmp_path, SLOW_MSL).binary("slow")
    assert "limit of 200 MiB of memory" in str(info.value) and "METALGPU_COMPILE_MEMORY" in str(info.value)
    small_compiles(tmp_path)


def test_worker_cubin_is_the_in_process_cubin():
    source = (REPO_ROOT / "tests" / "kernels").glob("*.metal")
    from test_cuda_translation import cuda_source

    translation, _ = cuda_source(min(source))
    compiler = NvrtcCompiler("sm_90")
    assert compiler.compile(translation.source, CompileOptions()) == nvrtc_compile(translation.source,
                                                                                    CompileOptions(), "sm_90")


def test_compile_errors_come_back_from_the_worker():
    with pytest.raises(CompilerFailed) as info:
        NvrtcCompiler("sm_90").compile("int x = ;\n", CompileOptions())
    assert "expected an expression" in info.value.log and "--gpu-architecture=sm_90" in info.value.command


def test_a_worker_that_cannot_load_nvrtc_says_so(tmp_path, monkeypatch):
    """Compiling then fails, saying why; NVRTC is not run unbounded in this process instead."""
    (tmp_path / "cuda").mkdir()
    (tmp_path / "cuda" / "__init__.py").write_text("raise ImportError('no NVRTC on this path')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker's `cuda` is this one
    pool = WorkerPool()
    try:
        with pytest.raises(CompilerFailed, match="could not load NVRTC: ImportError: no NVRTC on this path"):
            pool.compile("", ["--gpu-architecture=sm_90"])
    finally:
        pool.close()


def kill_and_wait(pid: int) -> None:
    """Kill a worker and wait until all of it has ended: a zombie whose threads are gone too, as a parent's look
    (waitpid) sees it ended only then."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
            if state in ("Z", "X") and len(os.listdir(f"/proc/{pid}/task")) <= 1:
                return
        except OSError:
            return
        time.sleep(0.01)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks workers up in /proc")
def test_worker_killed_from_outside_is_replaced(tmp_path):
    compiler = NvrtcCompiler("sm_90")
    compiler.compile("", CompileOptions())
    idle = WORKERS.worker_pids()
    for pid in idle:
        kill_and_wait(pid)
    compiler.compile("", CompileOptions())
    assert not set(idle) & set(WORKERS.worker_pids())

    # ended in the middle of a compile: that compile fails, saying how, and the next one works
    busy = set(WORKERS.worker_pids())
    killer = threading.Timer(0.5, lambda: [os.kill(pid, signal.SIGKILL) for pid in busy])
    killer.start()
    with pytest.raises(CompilerFailed, match="was killed by signal SIGKILL while compiling"):
        compiler.compile(SLOW_CUDA, CompileOptions())
    killer.join()
    compiler.compile("", CompileOptions())


def test_concurrent_compiles_each_get_a_worker():
    compiler = NvrtcCompiler("sm_90")
    sources = [f'extern "C" __global__ void k{i}(float* a) {{ a[0] = {i}; }}' for i in range(3)]
    results: dict[int, bytes] = {}
    threads = [threading.Thread(target=lambda i=i: results.update({i: compiler.compile(sources[i], CompileOptions())}))
               for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(f"k{i}".encode() in results[i] for i in range(3))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_compiles_with_a_worker_of_its_own():
    compiler = NvrtcCompiler("sm_90")
    compiler.compile("", CompileOptions())
    parents = set(WORKERS.worker_pids())
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # never returns into pytest
        code = 1
        try:
            cubin = compiler.compile('extern "C" __global__ void in_child() {}', CompileOptions())
            mine = set(WORKERS.worker_pids())
            code = 0 if b"in_child" in cubin and mine and not mine & parents else 2
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(child, 0)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert set(WORKERS.worker_pids()) == parents  # the child neither used nor ended the parent's worker
    compiler.compile("", CompileOptions())


def run_script(body: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + str(REPO_ROOT / "tests")}
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_ctrl_c_during_a_compile_interrupts_it(tmp_path):
    result = run_script("""
        import os, signal, threading, time
        from metalgpu.backends.base import CompileOptions
        from metalgpu.backends.nvrtc import NvrtcCompiler
        from metalgpu.backends.nvrtc_limited import WORKERS
        from test_nvrtc_limits import SLOW_CUDA
        compiler = NvrtcCompiler("sm_90")
        compiler.compile("", CompileOptions())
        busy = WORKERS.worker_pids()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            compiler.compile(SLOW_CUDA, CompileOptions())
            print("NOT INTERRUPTED")
        except KeyboardInterrupt:
            print("INTERRUPTED", time.monotonic() - started)
        print("ENDED" if not os.path.exists(f"/proc/{busy[0]}") else "LEFT")
        compiler.compile("", CompileOptions())
        print("USABLE")
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "INTERRUPTED" and float(lines[1]) < 1.5, result.stdout  # 0.3 s until the signal
    if sys.platform.startswith("linux"):
        assert lines[2] == "ENDED", result.stdout
    assert lines[-1] == "USABLE", result.stdout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"nvrtc_worker" in cmdline.read()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks workers up in /proc")
@pytest.mark.parametrize("how", ["exit", "killed while compiling"])
def test_workers_end_with_their_process(tmp_path, how):
    result = run_script(f"""
        import os, signal, threading, time
        from metalgpu.backends.base import CompileOptions
        from metalgpu.backends.nvrtc import NvrtcCompiler
        from metalgpu.backends.nvrtc_limited import WORKERS
        from test_nvrtc_limits import SLOW_CUDA
        compiler = NvrtcCompiler("sm_90")
        compiler.compile("", CompileOptions())
        print(*WORKERS.worker_pids(), flush=True)
        if {how!r} == "killed while compiling":
            threading.Thread(target=compiler.compile, args=(SLOW_CUDA, CompileOptions()), daemon=True).start()
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
    """, tmp_path)
    pids = [int(pid) for pid in result.stdout.split()]
    assert pids, result.stderr
    deadline = time.monotonic() + 3.0  # a worker checks on its parent five times a second
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, pids))

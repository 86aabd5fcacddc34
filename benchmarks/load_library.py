"""Loading a production library: `load_shader` + `set_function` + the first dispatch of one kernel, cold (a new
process, an empty cache folder) and warm (a new process, the cache folder the cold run filled).

    PYTHONPATH=src python benchmarks/load_library.py --mlx ~/src/mlx --ggml ~/src/ggml --repeat 3

The library sources are read from the repositories given (MLX: its root, where the kernels' includes resolve;
ggml: its root); one that is not given or not there is skipped with a message. The cpu backend runs the whole
path; NVRTC, where installed, runs the CUDA compile path: the cuda backend if a GPU works here, else the same
front end and compile with no device (no dispatch). Every sample runs in its own process; inside it only the
calls named above are timed (not the import or opening the device). Medians are reported.

Targets (DESIGN.md): cold <= 3 s with g++, <= 1.5 s with NVRTC; warm <= 20 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_SRC = Path(__file__).resolve().parent.parent / "src"
COLD_TARGET_S = {"cpu": 3.0, "cuda": 1.5}
WARM_TARGET_S = 0.020

# One kernel of each library, with the arguments its first dispatch needs (built in the child).
LIBRARIES = {
    "mlx-binary": {"repo": "mlx", "file": "mlx/backend/metal/kernels/binary.metal", "include": [""],
                   "kernel": "vv_Addfloat32"},
    "ggml-metal": {"repo": "ggml", "file": "src/ggml-metal/ggml-metal.metal", "include": ["src", "src/ggml-metal"],
                   "kernel": "kernel_repeat_f32"},
    "candle-binary": {"repo": "candle", "file": "candle-metal-kernels/src/metal_src/binary.metal", "include": [],
                      "kernel": "badd_f32"},
    "candle-indexing": {"repo": "candle", "file": "candle-metal-kernels/src/metal_src/indexing.metal", "include": [],
                        "kernel": "is_u32_f32"},
}

CHILD = r"""
import json, struct, sys, time
import numpy as np
import metalgpu

spec = json.loads(sys.argv[1])
n = 4096


def dispatch(gpu, kernel):
    if kernel == "vv_Addfloat32":  # MLX: c = a + b over `size` elements
        a = gpu.array_to_buffer(np.arange(n, dtype=np.float32))
        b = gpu.array_to_buffer(np.ones(n, dtype=np.float32))
        c = gpu.create_buffer(n, "float")
        gpu.run_function(n, [a, b, c, n])
        return np.array_equal(c.contents, a.contents + 1)
    if kernel == "kernel_repeat_f32":  # ggml: one row copied into dst (ggml_metal_kargs_repeat)
        row = 1024
        args = struct.pack("<4i4Q4i4Q", row, 1, 1, 1, 4, 4 * row, 4 * row, 4 * row,
                           row, 1, 1, 1, 4, 4 * row, 4 * row, 4 * row)
        src = gpu.array_to_buffer(np.arange(row, dtype=np.float32))
        dst = gpu.create_buffer(row, "float")
        gpu.run_function(256, [args, src, dst], threads_per_threadgroup=256)
        return np.array_equal(dst.contents, src.contents)
    if kernel == "badd_f32":  # candle: output = left + right, each thread taking every (n / 2)-th element
        a = gpu.array_to_buffer(np.arange(n, dtype=np.float32))
        b = gpu.array_to_buffer(np.full(n, 2, dtype=np.float32))
        c = gpu.create_buffer(n, "float")
        gpu.run_function(n // 2, [n, a, b, c])
        return np.array_equal(c.contents, a.contents + 2)
    if kernel == "is_u32_f32":  # candle: index_select of rows of a [4, 8] matrix
        ids = gpu.array_to_buffer(np.array([3, 0, 2], dtype=np.uint32))
        src = gpu.array_to_buffer(np.arange(32, dtype=np.float32))
        out = gpu.create_buffer(24, "float")
        dims, strides = np.array([4, 8], np.uint64), np.array([8, 1], np.uint64)
        gpu.run_function(24, [24, 1, 4, 8, 3, True, dims, strides, src, ids, out])
        expected = np.arange(32, dtype=np.float32).reshape(4, 8)[[3, 0, 2]].ravel()
        return np.array_equal(out.contents, expected)
    raise SystemExit(f"no arguments known for {kernel}")


if spec["device"]:
    gpu = metalgpu.Interface(spec["backend"])
    start = time.perf_counter()
    gpu.load_shader(spec["path"], spec["include"])
    loaded = time.perf_counter()
    gpu.set_function(spec["kernel"])
    selected = time.perf_counter()
    correct = dispatch(gpu, spec["kernel"])
    done = time.perf_counter()
else:  # the CUDA compile path with no GPU: NVRTC, through the same library code, nothing loaded
    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.cache import CompileCache
    from metalgpu.library import Library

    cache = CompileCache()
    compiler = open_compiler("cuda", cache, "sm_90")
    text = open(spec["path"]).read()
    start = time.perf_counter()
    library = Library(None, cache, CompileOptions(), text, spec["path"], tuple(spec["include"]), compiler=compiler)
    loaded = time.perf_counter()
    library.binary(spec["kernel"])
    selected = done = time.perf_counter()
    correct = None
print(json.dumps({"load": loaded - start, "set_function": selected - loaded, "dispatch": done - selected,
                  "total": done - start, "correct": correct}))
"""


def run_child(spec: dict, cache_dir: str) -> dict:
    env = dict(os.environ, METALGPU_CACHE_DIR=cache_dir)
    env["PYTHONPATH"] = str(REPO_SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, capture_output=True,
                            text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rc {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def paths() -> dict:
    from metalgpu.backends import available

    working = available()
    found = {"cpu": ("cpu", True)}
    try:
        import cuda.bindings.nvrtc  # noqa: F401
        found["cuda"] = ("cuda", "cuda" in working)
    except ImportError:
        print("NVRTC is not installed: the CUDA compile path is skipped")
    return found


def median(samples: list[dict], field: str) -> float:
    return statistics.median(s[field] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description="cold and warm load of a production library")
    for repo in ("mlx", "ggml", "candle"):
        parser.add_argument(f"--{repo}", type=Path, help=f"the {repo} repository (skipped when not given)")
    parser.add_argument("--repeat", type=int, default=3, help="processes per phase")
    parser.add_argument("--target", choices=("cpu", "cuda"), action="append", help="default: every one there is")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_SRC))

    rows = []
    for name, library in LIBRARIES.items():
        root = getattr(args, library["repo"])
        path = root / library["file"] if root else None
        if path is None or not path.exists():
            print(f"{name}: skipped ({library['repo']} sources not given or {library['file']} not there)")
            continue
        include = [str(root / folder) for folder in library["include"]]
        for target, (backend, device) in paths().items():
            if args.target and target not in args.target:
                continue
            spec = {"path": str(path), "include": include, "kernel": library["kernel"], "backend": backend,
                    "device": device}
            with tempfile.TemporaryDirectory(prefix="metalgpu-load-") as root_dir:
                cold, warm = [], []
                try:
                    for i in range(args.repeat):
                        cold.append(run_child(spec, os.path.join(root_dir, f"cold{i}")))
                    for _ in range(args.repeat):
                        warm.append(run_child(spec, os.path.join(root_dir, "cold0")))
                except RuntimeError as error:
                    print(f"{name} on {target}: failed: {error}")
                    continue
            path_name = target if device else f"{target} (compile only, no device)"
            correct = {s["correct"] for s in cold + warm}
            rows.append((name, path_name, library["kernel"], cold, warm, COLD_TARGET_S[target], correct))

    print(f"\nload_shader + set_function + first dispatch, {args.repeat} processes per phase, medians")
    print(f"{'library':<17}{'path':<32}{'phase':<6}{'load s':>8}{'set_fn s':>9}{'disp s':>8}{'total s':>9}"
          f"{'target s':>9}  result")
    for name, path_name, _kernel, cold, warm, cold_target, correct in rows:
        for phase, samples, target in (("cold", cold, cold_target), ("warm", warm, WARM_TARGET_S)):
            total = median(samples, "total")
            verdict = ("ok" if total <= target else "MISSED") + ("" if correct != {False} else ", WRONG RESULT")
            print(f"{name:<17}{path_name:<32}{phase:<6}{median(samples, 'load'):>8.3f}"
                  f"{median(samples, 'set_function'):>9.3f}{median(samples, 'dispatch'):>8.3f}{total:>9.3f}"
                  f"{target:>9.3f}  {verdict}")


if __name__ == "__main__":
    main()

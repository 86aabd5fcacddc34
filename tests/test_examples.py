"""Every example of examples/ runs on each backend here, from another working directory, and what it writes (PNG
pixels, the energy series, the counts) or returns matches a numpy reference of the same computation written here.

The pictures need the `examples` extra (Pillow, matplotlib); the tests that read or draw them skip without it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
F32_EPS = float(np.finfo(np.float32).eps)


def load_example(name: str):
    """examples/<name>.py as a module (the examples folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pictures():
    """Skip unless the examples' picture libraries are installed."""
    pytest.importorskip("PIL", reason="the examples' pictures need Pillow: pip install 'metalgpu[examples]'")
    pytest.importorskip("matplotlib", reason="the examples' plots need matplotlib: pip install 'metalgpu[examples]'")


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from a working directory that is neither the repository nor examples/: the examples find their
    shaders next to themselves."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return tmp_path


def read_png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _subprocess_env(backend: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    return env


# -- the original README's example ----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_original_example_runs_and_prints_its_check(backend, tmp_path, where):
    cwd = REPO_ROOT if where == "repository root" else tmp_path
    result = subprocess.run([sys.executable, str(EXAMPLES / "original" / "main.py"), "--backend", backend],
                            cwd=cwd, env=_subprocess_env(backend), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # i + int(sqrt(i)) for i = 0..5
    assert "arr3[:6] = [0, 2, 3, 4, 6, 7]; equal to numpy's i + int(sqrt(i)): True" in result.stdout


# -- every script runs as a program, from another folder ------------------------------------------------------

SCRIPT_RUNS = {
    "mandelbrot": ["--width", "64", "--height", "48", "--iterations", "32"],
    "blur": ["--sigma", "1"],
    "nbody": ["--bodies", "64", "--steps", "3"],
    "reduction": ["--count", "10000"],
    "matmul": ["--m", "20", "--k", "17", "--n", "9"],
    "histogram": ["--count", "10000"],
}
OUTPUTS = {
    "mandelbrot": ["mandelbrot.png"],
    "blur": ["blur.png", "blur_input.png"],
    "nbody": ["nbody.png", "nbody_energy.csv"],
    "histogram": ["histogram.png", "histogram_counts.csv"],
}


@pytest.mark.parametrize("name", sorted(SCRIPT_RUNS))
def test_example_runs_as_a_script(backend, tmp_path, name):
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), "--backend", backend, *SCRIPT_RUNS[name]]
    out = tmp_path / "out"
    if name in OUTPUTS:
        pytest.importorskip("PIL", reason="the examples' pictures need Pillow: pip install 'metalgpu[examples]'")
        pytest.importorskip("matplotlib", reason="the examples' plots need matplotlib")
        command += ["--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, env=_subprocess_env(backend), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(name) and f"({backend})" in lines[0], result.stdout
    if name in OUTPUTS:
        assert sorted(path.name for path in out.iterdir()) == OUTPUTS[name]


# -- Mandelbrot -----------------------------------------------------------------------------------------------

def reference_mandelbrot(view: dict, width: int, height: int) -> np.ndarray:
    """Escape counts, in float32 as the kernel computes, with numpy's complex64."""
    x = np.float32(view["origin"][0]) + np.arange(width, dtype=np.float32) * np.float32(view["step"])
    y = np.float32(view["origin"][1]) - np.arange(height, dtype=np.float32) * np.float32(view["step"])
    c = (x[None, :] + 1j * y[:, None]).astype(np.complex64)
    z = np.zeros_like(c)
    counts = np.zeros(c.shape, dtype=np.int64)
    for _ in range(view["max_iterations"]):
        running = np.abs(z) <= 2
        z[running] = z[running] ** 2 + c[running]
        counts += running
    return counts


def test_mandelbrot_png_matches_numpy(backend, pictures, elsewhere):
    mandelbrot = load_example("mandelbrot")
    width, height, iterations = 240, 180, 100
    path = mandelbrot.main(["--backend", backend, "--out", str(elsewhere / "out"), "--width", str(width),
                            "--height", str(height), "--iterations", str(iterations)])
    pixels = read_png(path)
    assert pixels.shape == (height, width, 3)
    counts = reference_mandelbrot(mandelbrot.view_of(width, height, iterations), width, height)
    expected = mandelbrot.colorize(counts, iterations)
    inside = counts == iterations
    assert 0.1 < inside.mean() < 0.5 and len(np.unique(expected.reshape(-1, 3), axis=0)) > 20  # a real picture
    # Fast math and numpy's complex arithmetic round differently, and a point on the set's edge may then escape an
    # iteration sooner or later: at most 1% of the pixels may differ (0.06% do on the cpu backend).
    differing = np.any(pixels != expected, axis=2)
    assert differing.mean() < 0.01, f"{differing.mean():.2%} of the pixels differ"


# -- Gaussian blur --------------------------------------------------------------------------------------------

def reference_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur over 3 sigma, edges repeated, in float64, rounded to uint8."""
    radius = int(np.ceil(3 * sigma))
    weights = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    weights /= weights.sum()
    result = image.astype(np.float64)
    for axis in (1, 0):
        padding = [(0, 0)] * 3
        padding[axis] = (radius, radius)
        padded = np.pad(result, padding, mode="edge")
        size = result.shape[axis]
        result = sum(w * np.take(padded, range(k, k + size), axis=axis) for k, w in enumerate(weights))
    return np.round(result).astype(np.uint8)


@pytest.mark.parametrize("sigma", [3.0, 1.5])
def test_blur_png_matches_numpy(backend, pictures, elsewhere, sigma):
    blur = load_example("blur")
    path = blur.main(["--backend", backend, "--out", str(elsewhere / "out"), "--sigma", str(sigma)])
    original, blurred = read_png(path.parent / "blur_input.png"), read_png(path)
    assert original.shape == blurred.shape == (blur.HEIGHT, blur.WIDTH, 3)
    expected = reference_blur(original, sigma)
    assert np.abs(expected.astype(int) - original).mean() > 2  # the blur changes the picture
    # The kernels add in float32 and Metal's round() takes halves away from zero where numpy's goes to even: a
    # channel may be one step off where the exact value is within float32's error of a half (a few channels in
    # a million on the cpu backend).
    difference = np.abs(blurred.astype(int) - expected)
    assert difference.max() <= 1
    assert np.count_nonzero(difference) / difference.size < 0.001


# -- N-body ---------------------------------------------------------------------------------------------------

def reference_nbody_energies(bodies: np.ndarray, velocities: np.ndarray, softening: float, dt: float,
                             steps: int) -> np.ndarray:
    """Kinetic and potential energy at every step of a kick-drift-kick leapfrog, in float64: shape (steps+1, 2)."""
    position, velocity = bodies[:, :3].astype(np.float64), velocities[:, :3].astype(np.float64)
    mass = bodies[:, 3].astype(np.float64)

    def forces(position):
        d = position[None, :, :] - position[:, None, :]  # d[i, j] = x_j - x_i
        r2 = np.einsum("ijk,ijk->ij", d, d) + softening**2
        inverse_r = r2**-0.5
        np.fill_diagonal(inverse_r, 0)
        acceleration = np.einsum("ijk,ij->ik", d, mass[None, :] * inverse_r**3)
        potential_energy = -0.5 * mass @ inverse_r @ mass
        return acceleration, potential_energy

    acceleration, potential = forces(position)
    series = [(0.5 * mass @ np.sum(velocity**2, axis=1), potential)]
    for _ in range(steps):
        velocity += 0.5 * dt * acceleration
        position += dt * velocity
        acceleration, potential = forces(position)
        velocity += 0.5 * dt * acceleration
        series.append((0.5 * mass @ np.sum(velocity**2, axis=1), potential))
    return np.array(series)


def test_nbody_energy_series_matches_numpy(backend, pictures, elsewhere):
    nbody = load_example("nbody")
    bodies, steps = 128, 150
    path = nbody.main(["--backend", backend, "--out", str(elsewhere / "out"), "--bodies", str(bodies),
                       "--steps", str(steps)])
    assert read_png(path).shape[0] > 200  # the plot was drawn
    time, kinetic, potential, total = np.loadtxt(path.parent / "nbody_energy.csv", delimiter=",", unpack=True)
    assert np.allclose(time, np.arange(steps + 1) * nbody.DT) and np.allclose(total, kinetic + potential)
    start, start_velocities = nbody.initial_conditions(bodies)
    expected = reference_nbody_energies(start, start_velocities, nbody.SOFTENING, nbody.DT, steps)
    scale = abs(expected[0].sum())
    # The clusters fall together: kinetic energy grows by a few tenths of the total, far beyond the tolerance.
    assert np.ptp(expected[:, 0]) > 0.05 * scale
    # float32 positions and sums against float64: after 150 steps the cpu backend's energies are within 4e-7 of
    # the total energy of numpy's; 1e-5 leaves room for GPUs' approximate reciprocal square roots.
    np.testing.assert_allclose(kinetic, expected[:, 0], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(potential, expected[:, 1], rtol=0, atol=1e-5 * scale)


def test_nbody_refuses_bodies_that_do_not_fill_tiles():
    nbody = load_example("nbody")
    with pytest.raises(SystemExit):
        nbody.main(["--bodies", "100"])


# -- reduction ------------------------------------------------------------------------------------------------

def test_reduction_sums_exactly_where_float32_is_exact(backend):
    import metalgpu

    reduction = load_example("reduction")
    # Integers whose sum stays under 2**24: every partial sum is exact in float32, in any order.
    values = np.random.default_rng(5).integers(0, 8, 1_000_003).astype(np.float32)
    with metalgpu.Interface(backend=backend) as gpu:
        assert reduction.device_sum(gpu, values) == int(values.astype(np.int64).sum())
        assert reduction.device_sum(gpu, np.ones(17, dtype=np.float32)) == 17  # fewer values than threads


def test_reduction_main_agrees_with_numpy(backend, elsewhere):
    reduction = load_example("reduction")
    values, total = reduction.main(["--backend", backend, "--count", str(1 << 20)])
    # 64 additions in each thread, then at most 4 x 31 in SIMD-group sums and one more: the float32 bound.
    bound = (64 + 4 * 31 + 1) * F32_EPS * np.abs(values).sum(dtype=np.float64)
    assert abs(total - values.sum(dtype=np.float64)) <= bound


# -- tiled matrix product -------------------------------------------------------------------------------------

@pytest.mark.parametrize("m, k, n", [(16, 16, 16), (70, 45, 33), (1, 100, 3)])
def test_matmul_is_exact_on_small_integers(backend, m, k, n):
    import metalgpu

    matmul = load_example("matmul")
    rng = np.random.default_rng(m + k + n)
    a = rng.integers(-4, 5, (m, k)).astype(np.float32)
    b = rng.integers(-4, 5, (k, n)).astype(np.float32)
    with metalgpu.Interface(backend=backend) as gpu:
        c = matmul.device_matmul(gpu, a, b)
    # every product and partial sum is an integer under 2**24: exact in float32, tile edges included
    assert np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_matmul_main_agrees_with_numpy(backend, elsewhere):
    matmul = load_example("matmul")
    a, b, c = matmul.main(["--backend", backend, "--m", "50", "--k", "70", "--n", "40"])
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    # a chain of k float32 additions of products: k epsilons of the sum of the products' magnitudes
    assert np.all(np.abs(c - a64 @ b64) <= 70 * F32_EPS * (np.abs(a64) @ np.abs(b64)))


# -- histogram ------------------------------------------------------------------------------------------------

def test_histogram_counts_equal_numpy(backend, pictures, elsewhere):
    histogram = load_example("histogram")
    count = 300_007
    path = histogram.main(["--backend", backend, "--out", str(elsewhere / "out"), "--count", str(count)])
    assert read_png(path).shape[0] > 100  # the plot was drawn
    counts = np.loadtxt(path.parent / "histogram_counts.csv", dtype=np.int64)
    samples = histogram.make_samples(count)
    assert np.array_equal(counts, np.bincount(samples // 16, minlength=256))


def test_histogram_counts_one_crowded_bin(backend):
    import metalgpu

    histogram = load_example("histogram")
    samples = np.full(100_001, 4095, dtype=np.uint16)  # every thread adds to the same bin at once
    samples[::7] = 0
    with metalgpu.Interface(backend=backend) as gpu:
        counts = histogram.device_histogram(gpu, samples)
    expected = np.zeros(256, dtype=np.int64)
    expected[0], expected[255] = len(samples[::7]), len(samples) - len(samples[::7])
    assert np.array_equal(counts, expected)


# -- the kernels compile for CUDA (no GPU needed) -------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.metal")), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_kernels_compile_for_cuda(path):
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from test_cuda_translation import assert_compiles, cuda_source

    translation, _ = cuda_source(path)
    assert_compiles(translation)

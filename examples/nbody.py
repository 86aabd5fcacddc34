"""Two star clusters falling into each other: a gravitational N-body simulation, with a plot of its energy.

Shows: `float4` bodies (position and mass) and velocities, a kernel that walks the bodies in tiles held in
threadgroup memory (`threadgroup float4* [[threadgroup(0)]]`, sized by `threadgroup_memory=`) with
`threadgroup_barrier`, an explicit `threads_per_threadgroup`, and three kernels making one leapfrog step. The
kernel also gives the potential at each body, so the host sums the energy every step from the buffers' contents
(no copies); matplotlib plots it.

    python examples/nbody.py [--backend cpu|cuda|metal] [--out DIR] [--bodies 1024] [--steps 500]

Writes DIR/nbody.png (the clusters and the energy over time) and DIR/nbody_energy.csv (time, kinetic, potential,
total); DIR defaults to examples/output/ next to this file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
TILE = 64  # bodies per tile, and threads per threadgroup
SOFTENING = 0.05
DT = 0.01


def plummer_sphere(count: int, mass: float, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Positions and velocities of a star cluster in equilibrium (Plummer's model, sampled as Aarseth, Henon and
    Wielen did in 1974), centred at the origin, G = 1."""
    radius = scale / np.sqrt(rng.uniform(0, 0.95, count) ** (-2 / 3) - 1)  # the outermost 5% of the mass left out
    direction = rng.standard_normal((count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    # Speed as a fraction q of the escape speed: q drawn from q^2 (1 - q^2)^3.5 by rejection.
    q = np.empty(0)
    while q.size < count:
        x, y = rng.uniform(0, 1, 4 * count), rng.uniform(0, 0.1, 4 * count)
        q = np.concatenate([q, x[y < x**2 * (1 - x**2) ** 3.5]])
    escape = np.sqrt(2 * mass / scale) * (1 + (radius / scale) ** 2) ** -0.25
    velocity = rng.standard_normal((count, 3))
    velocity *= (q[:count] * escape / np.linalg.norm(velocity, axis=1))[:, None]
    return radius[:, None] * direction, velocity


def initial_conditions(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Bodies (x, y, z, mass) and velocities (vx, vy, vz, 0), float32 of shape (count, 4): two clusters of half
    the bodies each, total mass 1, 3 apart and closing at 0.6, a little off centre."""
    rng = np.random.default_rng(seed)
    bodies = np.zeros((count, 4), dtype=np.float32)
    velocities = np.zeros((count, 4), dtype=np.float32)
    half = count // 2
    for part, offset, drift in [(slice(0, half), (-1.5, -0.4, 0), (0.3, 0, 0)),
                                (slice(half, count), (1.5, 0.4, 0), (-0.3, 0, 0))]:
        n = part.stop - part.start
        position, velocity = plummer_sphere(n, mass=n / count, scale=0.4, rng=rng)
        bodies[part, :3] = position + offset
        velocities[part, :3] = velocity + drift
    bodies[:, 3] = 1 / count
    return bodies, velocities


def energies(bodies: np.ndarray, velocities: np.ndarray, accelerations: np.ndarray) -> tuple[float, float]:
    """Kinetic and potential energy, from the potential at each body (accelerations[:, 3]): each pair is counted
    twice, hence the half."""
    mass = bodies[:, 3].astype(np.float64)
    kinetic = 0.5 * np.sum(mass * np.sum(velocities[:, :3].astype(np.float64) ** 2, axis=1))
    potential = 0.5 * np.sum(mass * accelerations[:, 3])
    return float(kinetic), float(potential)


def numpy_accelerations(bodies: np.ndarray, softening: float) -> np.ndarray:
    """The accelerations kernel in numpy (float64): acceleration in xyz, potential in w."""
    position, mass = bodies[:, :3].astype(np.float64), bodies[:, 3].astype(np.float64)
    d = position[None, :, :] - position[:, None, :]
    inverse_r = 1 / np.sqrt(np.sum(d**2, axis=2) + softening**2)
    np.fill_diagonal(inverse_r, 0)
    acceleration = np.sum(d * (mass[None, :] * inverse_r**3)[:, :, None], axis=1)
    potential = -(inverse_r @ mass)
    return np.concatenate([acceleration, potential[:, None]], axis=1)


def plot(path: Path, start: np.ndarray, end: np.ndarray, series: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, (sky, energy) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80, width_ratios=(1, 1.3))
    half = len(start) // 2
    for bodies, alpha, label in [(start, 0.15, "start"), (end, 0.6, f"t = {series[-1, 0]:.1f}")]:
        sky.scatter(bodies[:half, 0], bodies[:half, 1], s=1, alpha=alpha, color="tab:blue")
        sky.scatter(bodies[half:, 0], bodies[half:, 1], s=1, alpha=alpha, color="tab:orange")
        sky.plot([], [], ".", alpha=alpha, color="gray", label=label)
    sky.set(xlim=(-3, 3), ylim=(-2, 2), aspect="equal", title="bodies (x, y)")
    sky.legend(loc="upper right", fontsize=8, markerscale=3)
    time, kinetic, potential, total = series.T
    energy.plot(time, kinetic, label="kinetic")
    energy.plot(time, potential, label="potential")
    energy.plot(time, total, label="total", color="black")
    energy.set(xlabel="time", title=f"energy (total drifts {abs(total[-1] / total[0] - 1):.1e})")
    energy.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--out", type=Path, default=HERE / "output", help="folder for nbody.png and nbody_energy.csv")
    parser.add_argument("--bodies", type=int, default=1024, help=f"a multiple of {TILE}")
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args(argv)
    if args.bodies <= 0 or args.bodies % TILE:
        parser.error(f"--bodies must be a positive multiple of {TILE}: every thread loads one body of each tile")

    start, start_velocities = initial_conditions(args.bodies)
    with metalgpu.Interface(backend=args.backend) as gpu:
        gpu.load_shader(HERE / "nbody.metal")
        bodies = gpu.array_to_buffer(start)
        velocities = gpu.array_to_buffer(start_velocities)
        accelerations = gpu.create_buffer(args.bodies, "float4")

        def accelerate() -> None:
            gpu.run_function(args.bodies, [bodies, accelerations, SOFTENING], "accelerations",
                             threads_per_threadgroup=TILE, threadgroup_memory={0: TILE * 16})  # 16 B a float4

        accelerate()
        first = accelerations.contents.copy()
        series = [(0.0, *energies(bodies.contents, velocities.contents, accelerations.contents))]
        for step in range(1, args.steps + 1):
            gpu.run_function(args.bodies, [bodies, velocities, accelerations, DT], "kick_drift")
            accelerate()
            gpu.run_function(args.bodies, [velocities, accelerations, DT], "kick")
            series.append((step * DT, *energies(bodies.contents, velocities.contents, accelerations.contents)))
        end = bodies.contents.copy()

    series = np.array([(t, k, p, k + p) for t, k, p in series])
    args.out.mkdir(parents=True, exist_ok=True)
    np.savetxt(args.out / "nbody_energy.csv", series, delimiter=",", header="time,kinetic,potential,total")
    path = args.out / "nbody.png"
    plot(path, start, end, series)

    expected = numpy_accelerations(start, SOFTENING)
    error = np.abs(first - expected).max() / np.abs(expected).max()
    drift = abs(series[-1, 3] / series[0, 3] - 1)
    print(f"nbody {args.bodies} bodies, {args.steps} steps ({gpu.backend}): first accelerations and potentials "
          f"within {error:.1e} of numpy's (relative to the largest); energy drift {drift:.1e}; wrote {path}")
    return path


if __name__ == "__main__":
    main()

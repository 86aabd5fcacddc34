"""Regenerate the pictures of the docs' gallery (docs/gallery.md) by running the examples that draw them.

    python examples/make_gallery.py [--backend cpu|cuda|metal]

Writes the PNGs to docs/_static/gallery/ (the examples' other outputs, such as CSV files, are left out).
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
GALLERY = HERE.parent / "docs" / "_static" / "gallery"
EXAMPLES_WITH_PICTURES = ["mandelbrot", "blur", "nbody", "histogram"]


def load_example(name: str):
    """The example examples/<name>.py as a module (the examples folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    args = parser.parse_args(argv)
    backend = ["--backend", args.backend] if args.backend else []
    GALLERY.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in EXAMPLES_WITH_PICTURES:
            load_example(name).main([*backend, "--out", scratch])
        for picture in sorted(Path(scratch).glob("*.png")):
            shutil.copyfile(picture, GALLERY / picture.name)
            print(f"{GALLERY / picture.name}: {picture.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()

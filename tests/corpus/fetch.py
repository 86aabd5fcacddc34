"""Fill a corpus folder with the manifest's sources by git: ``python -m tests.corpus.fetch DIR`` (needs network).

Each library lands in ``DIR/<folder>``. A library whose files all come from its one commit is cloned without
blobs and checked out at that commit; one whose files carry their own commits (PyTorch's MPS kernels) has each
file written from its commit with ``git show``. Folders already there are left alone. Then point the tests at it:
``export METALGPU_CORPUS_DIR=DIR``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .harness import libraries


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch(library, root: Path) -> str:
    target = root / library.folder
    if target.exists():
        return f"{library.name}: {target} is there, left alone"
    url = f"https://github.com/{library.repository}.git"
    commits = {f.commit for f in library.files} | {library.commit}
    if len(commits) == 1:
        _git("clone", "--filter=blob:none", "--no-checkout", url, str(target))
        _git("checkout", "--quiet", library.commit, cwd=target)
        return f"{library.name}: {library.repository} at {library.commit[:12]}"
    store = root / f".{library.folder}.git"
    if not store.exists():
        _git("clone", "--filter=blob:none", "--bare", url, str(store))
    for source in library.files:
        text = _git("--git-dir", str(store), "show", f"{source.commit}:{source.path}")
        (target / source.path).parent.mkdir(parents=True, exist_ok=True)
        (target / source.path).write_text(text)
        for header, commit in source.headers:  # the file's own header versions, into its first own folder
            text = _git("--git-dir", str(store), "show", f"{commit}:{header}")
            (target / source.own_include_dirs[0] / header).parent.mkdir(parents=True, exist_ok=True)
            (target / source.own_include_dirs[0] / header).write_text(text)
    return f"{library.name}: {len(library.files)} files from {len(commits)} commits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.fetch", description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--library", action="append", help="only these libraries (repeatable)")
    args = parser.parse_args(argv)
    root = Path(args.folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for library in libraries():
        if not args.library or library.name in args.library:
            print(fetch(library, root), flush=True)
    print(f"export METALGPU_CORPUS_DIR={root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

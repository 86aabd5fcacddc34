"""The documentation's code runs: every ```python block of docs/*.md, and every example (>>>) in the docstrings the
API reference is built from, on each backend that works here (the cpu backend in CI).

A page's blocks run in order in one namespace, in a fresh working folder, as a reader pasting them into one
Python session would. A ```{code-block} with a ``:caption:`` is a file of that name the page's code uses
(tutorial.md's shader.metal): it is written into the working folder first. A block that must not run (it needs a
GPU or another library) is marked by the line ``<!-- not run: why -->`` just before it; shell commands and MSL
take other fence languages (bash, metal) and never run.
"""
from __future__ import annotations

import doctest
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<ticks>`{3,})(?P<info>.*)$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<why>\S.*?)\s*-->$")
# The modules whose docstrings make the API reference (docs/reference.md).
DOCUMENTED_MODULES = ("metalgpu", "metalgpu.backends", "metalgpu.interface", "metalgpu.buffer", "metalgpu.library",
                      "metalgpu.dispatch", "metalgpu.errors", "metalgpu.types", "metalgpu.ops", "metalgpu.dask",
                      "metalgpu.dask.blocks", "metalgpu.dask.reduce", "metalgpu.dask.kernel")


@dataclass
class Block:
    language: str        # "python", "metal", "bash", ... (of a {code-block} directive: its argument)
    text: str
    line: int            # of the block's first line of code in its page, 1-based
    caption: str | None  # a {code-block}'s :caption:, the name of the file it stands for
    not_run: str | None  # why it is marked not to run


def read_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, number = [], 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        ticks, info = opening["ticks"], opening["info"].strip()
        before = next((lines[k].strip() for k in range(number - 1, -1, -1) if lines[k].strip()), "")
        marker = NOT_RUN.match(before)
        body_start = number + 1
        end = body_start
        while end < len(lines) and not re.fullmatch(re.escape(ticks) + r"`*\s*", lines[end]):
            end += 1
        body = lines[body_start:end]
        language, caption = info, None
        if info.startswith("{code-block}"):
            language = info.removeprefix("{code-block}").strip()
            while body and body[0].startswith(":"):
                name, _, value = body[0][1:].partition(":")
                if name == "caption":
                    caption = value.strip()
                body, body_start = body[1:], body_start + 1
        blocks.append(Block(language, "\n".join(body), body_start + 1, caption, marker["why"] if marker else None))
        number = end + 1
    return blocks


PAGES = sorted(path.name for path in DOCS.glob("*.md"))
RUNNABLE_PAGES = [name for name in PAGES if any(b.language == "python" for b in read_blocks(DOCS / name))]


def _use_backend(monkeypatch, backend: str) -> None:
    """Interface() with no argument, in the docs' code, opens the backend under test."""
    monkeypatch.setenv("METALGPU_BACKEND", backend)


def _close_interfaces(namespace: dict) -> None:
    import metalgpu

    for value in namespace.values():
        if isinstance(value, metalgpu.Interface):
            value.close()


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_page_code_runs(page, backend, tmp_path, monkeypatch):
    blocks = read_blocks(DOCS / page)
    if any(re.search(r"^\s*import dask|^\s*import metalgpu\.dask", b.text, re.M) for b in blocks):
        pytest.importorskip("dask.array", reason=f"{page} uses Dask (the dask extra)")
    _use_backend(monkeypatch, backend)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        if block.caption:
            (tmp_path / block.caption).write_text(block.text.lstrip("\n") + "\n", encoding="utf-8")
    namespace: dict = {"__name__": "__main__"}
    try:
        for block in blocks:
            if block.language != "python" or block.not_run:
                continue
            # blank lines first, so that a traceback gives the line in the page
            code = compile("\n" * (block.line - 1) + block.text, f"docs/{page}", "exec")
            exec(code, namespace)
    finally:
        _close_interfaces(namespace)


def test_blocks_not_run_are_few_and_say_why():
    """Every exception to "the docs' code runs" gives its reason, and they stay few."""
    skipped = [(page, block) for page in PAGES for block in read_blocks(DOCS / page)
               if block.language == "python" and block.not_run]
    for page, block in skipped:
        assert len(block.not_run) > 10, f"docs/{page}:{block.line}: say why the block does not run"
    assert len(skipped) <= 8, [f"{page}:{block.line}" for page, block in skipped]


def test_read_blocks_of_a_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n<!-- not run: needs an NVIDIA GPU -->\n```python\ny = 2\n```\n\n"
                    "````{code-block} metal\n:caption: k.metal\n\nkernel void k() {}\n````\n\n```bash\nls\n```\n")
    blocks = read_blocks(page)
    assert [(b.language, b.text, b.line, b.caption, b.not_run) for b in blocks] == [
        ("python", "x = 1", 4, None, None),
        ("python", "y = 2", 9, None, "needs an NVIDIA GPU"),
        ("metal", "\nkernel void k() {}", 14, "k.metal", None),
        ("bash", "ls", 19, None, None),
    ]


def _doctests(module_name: str) -> list[doctest.DocTest]:
    """The docstring examples of what ``module_name`` itself defines (the finder leaves out what it imports)."""
    module = importlib.import_module(module_name)
    return [test for test in doctest.DocTestFinder(exclude_empty=True).find(module, module_name) if test.examples]


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_docstring_examples_run(module_name, backend, tmp_path, monkeypatch):
    if module_name.startswith("metalgpu.dask"):
        pytest.importorskip("dask.array", reason="metalgpu.dask needs the dask extra")
    _use_backend(monkeypatch, backend)
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in _doctests(module_name):
        report: list[str] = []
        result = runner.run(test, out=report.append)
        if result.failed:
            failures.append("".join(report))
        _close_interfaces(test.globs)
    assert not failures, "\n".join(failures)

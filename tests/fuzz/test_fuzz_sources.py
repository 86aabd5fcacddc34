"""Mutated shader sources never crash, hang or raise anything but API.md's exceptions: through the front end
(preprocess, parse, translate for cpu and cuda, struct layouts), and for a bounded sample through the whole cpu
compile, load and a run of every kernel. Everything runs in the fuzz worker process (runner.py)."""
from __future__ import annotations

from hypothesis import example, given

from .modes import fuzz_settings
from .mutations import (
    SEEDS,
    apply_byte_mutations,
    apply_token_mutations,
    byte_mutated_sources,
    token_mutated_sources,
)

FRONT_TIMEOUT = 30.0     # seconds: the front end takes well under one on any of these sources
COMPILE_TIMEOUT = 300.0  # a compile, a load and a run of each kernel (each run stopped after 2 s)


def token_case(seed: str, mutations: list[tuple]) -> tuple[str, list[tuple], str]:
    return seed, mutations, apply_token_mutations(SEEDS[seed], mutations)


def byte_case(seed: str, mutations: list[tuple]) -> tuple[str, list[tuple], bytes]:
    return seed, mutations, apply_byte_mutations(SEEDS[seed].encode(), mutations)


@fuzz_settings("front_tokens")
@given(case=token_mutated_sources())
# Thousands of '[[' (closed or not): the shader policy read each attribute to its end, quadratic in their number.
@example(case=token_case("kernels/conditional.metal", [("insert", 36, "[[" * 5000)]))
@example(case=token_case("kernels/conditional.metal", [("insert", 36, "[[" * 3000 + "]]" * 3000)]))
# A run of 'extern': each read the declaration to its end.
@example(case=token_case("elementwise", [("insert", 10, "extern " * 5000)]))
# Braces between a function constant's name and its attribute: the parser indexed an empty declaration.
@example(case=token_case("function_constants", [("insert", 19, "{{}}")]))
# 'operator' and no parameter list before the file's end: the declaration outline indexed past the tokens.
@example(case=token_case("kernels/conditional_threadgroup.metal", [("insert", 274, "operator")]))
def test_front_end_on_token_mutations(fuzz_runner, case):
    fuzz_runner.check("front", case[2], FRONT_TIMEOUT, label="front tokens")


@fuzz_settings("front_bytes")
@given(case=byte_mutated_sources())
# A number of 70,000 digits: the half-literal pattern split its digits every way before it failed.
@example(case=byte_case("vectors_types", [("long_line", 153, b"1", 70_000), ("overwrite", 409, 59),
                                          ("delete", 361, 26)]))
@example(case=byte_case("elementwise", [("odd", 40, b"\xed\xa0\x80"), ("odd", 0, b"\x00")]))
def test_front_end_on_byte_mutations(fuzz_runner, case):
    fuzz_runner.check("front", case[2], FRONT_TIMEOUT, label="front bytes")


@fuzz_settings("compile")
@given(case=token_mutated_sources(max_mutations=1) | byte_mutated_sources(max_mutations=1))
def test_compile_load_and_run_of_mutated_sources(fuzz_runner, case):
    fuzz_runner.check("compile", (case[2], True), COMPILE_TIMEOUT, label="compile+run")

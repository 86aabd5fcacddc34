"""Random argument lists to set_function and run_function (wrong counts and types, None, numpy arrays of every
dtype and layout, released buffers, buffers of another Interface or still in use, odd grid and threadgroup sizes,
threadgroup memory, timeouts, function constants) raise only API.md's exceptions, never crash or hang the process,
and leave the Interface working; a counting kernel that runs counts exactly the grid's threads."""
from __future__ import annotations

from hypothesis import example, given

from .argument_recipes import VALID_CALLS, run_recipes, specialisation_recipes
from .modes import fuzz_settings

RUN_TIMEOUT = 60.0  # seconds for one recipe: every dispatch in it is stopped after 2 s (or its own timeout)
SANE_EVERY = 25     # recipes between two checks that the Interfaces still run a kernel right


def _near(kernel: str, **changes) -> dict:
    """The valid call of ``kernel`` with ``changes``."""
    slots, memory = VALID_CALLS[kernel]
    recipe = {"kernel": kernel, "grid": ("value", 64), "buffers": ("list", list(slots)), "wait": True}
    if memory is not None:
        recipe["threadgroup_memory"] = memory
    recipe.update(changes)
    return recipe


def _check_with_sanity(runner, recipe: dict, label: str) -> None:
    runner.check("arguments", recipe, RUN_TIMEOUT, label=label)
    runner.recipes_sent = getattr(runner, "recipes_sent", 0) + 1
    if runner.recipes_sent % SANE_EVERY == 0:
        runner.check("sane", None, RUN_TIMEOUT)


@fuzz_settings("arguments")
@given(recipe=run_recipes())
# set_function(["scaled"]): an unhashable name reached the cache of functions (TypeError)
@example(recipe=_near("scaled", set=(("list", [("value", "scaled")]), ("value", None))))
# threadgroup_memory=<empty numpy array>: the plan cache asked for its truth value (ValueError)
@example(recipe=_near("with_scratch", threadgroup_memory=("array", "O", (5, 0), "broadcast")))
# threadgroup_memory keys 2**63 and a numpy bool: sorted for the plan cache's key (OverflowError)
@example(recipe=_near("count_threads", threadgroup_memory=("dict", [(("value", 2**63), ("value", 0)),
                                                                     (("numpy_scalar", "bool", 0), ("value", 0))])))
# timeout=float("inf"): converted to milliseconds (OverflowError)
@example(recipe=_near("element_types", timeout=("value", float("inf"))))
# the grid's threads counted exactly, through every kind of size
@example(recipe=_near("count_threads", grid=("metal_size", [("value", 3), ("numpy_scalar", "uint16", 5),
                                                            ("value", 7)])))
@example(recipe=_near("limited", grid=("value", 1000), threads_per_threadgroup=("value", 64)))
def test_run_function_arguments(fuzz_runner, recipe):
    _check_with_sanity(fuzz_runner, recipe, "arguments")


@fuzz_settings("constants")
@given(recipe=specialisation_recipes())
# constants={"add_bias": <numpy array>}: the unhashable value reached the cache of modules (TypeError)
@example(recipe={**_near("specialised"), "set": (("value", "specialised"), (
    "dict", [(("value", "add_bias"), ("array", "int8", (16,), "c"))]))})
# constants keyed by None, a float or a tuple: int(key) raised TypeError
@example(recipe={**_near("specialised"), "set": (("value", "specialised"), (
    "dict", [(("value", None), ("value", True)), (("value", (0,)), ("value", 1))]))})
def test_set_function_constants(fuzz_runner, recipe):
    _check_with_sanity(fuzz_runner, recipe, "constants")

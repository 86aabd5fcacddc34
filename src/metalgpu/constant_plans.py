"""The plans of dispatches that pass constant values, found by the kinds of their arguments.

A loop such as ``for t in steps: gpu.run_function(n, [x, t])`` passes a new object for ``t`` every time, so
dispatch.PlanCache, which finds a plan by the id of each argument, never finds one, and every dispatch would check
its whole signature again. DispatchPlans keeps such a plan as a template instead (in a TemplateCache), under a key
in which each constant value stands by its kind (its type; a numpy array's dtype and shape too) while Buffers and
None stand by their id, as in PlanCache. What build_plan checks of the buffers, the sizes and which slots are bound
depends only on what that key names, so a dispatch that finds a template packs only its constant values, through the
same dispatch.pack_constant as build_plan: a value that build_plan refuses (out of range for an int parameter, a
struct's bytes of the wrong size) is refused with the same ArgumentError.

Every dispatch gets a plan of its own, sharing what did not change with the template: a plan still in flight (an
asynchronous dispatch, a batch that holds it for its replays) keeps its constants, and its backend record is built
for its own values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .dispatch import KernelSignature, LaunchPlan, PlanCache, pack_constant


@dataclass(frozen=True)
class ConstantPlan:
    """A checked plan and where its constant values go: ``slots`` holds (index, binding, parameter description) of
    each constant argument, in the order build_plan checks them."""

    plan: LaunchPlan
    slots: tuple[tuple[int, Any, str], ...]

    @classmethod
    def of(cls, function: KernelSignature, plan: LaunchPlan) -> "ConstantPlan":
        slots = tuple((binding.index, binding, plan.slot_params[binding.index]) for binding in function.bindings
                      if binding.kind == "buffer" and binding.index in plan.constants)
        return cls(_copy_plan(plan, plan.buffer_addresses.copy(), plan.slot_bytes.copy(), plan.constants.copy(), None),
                   slots)

    def with_values(self, arguments: Sequence[Any]) -> LaunchPlan:
        """A new plan for ``arguments`` (as build_plan takes them: structs already packed), whose Buffers and sizes
        are the template's: its constant values packed and checked as build_plan packs them."""
        template = self.plan
        addresses, sizes, constants = template.buffer_addresses.copy(), template.slot_bytes.copy(), {}
        for index, binding, where in self.slots:
            data, addresses[index] = pack_constant(arguments[index], binding, where)
            sizes[index], constants[index] = data.nbytes, data
        return _copy_plan(template, addresses, sizes, constants, template)


def _copy_plan(plan: LaunchPlan, addresses: list[int], sizes: list[int], constants: dict,
               template: LaunchPlan | None) -> LaunchPlan:
    """``plan`` with other constants; what backends only read is shared, and the backend's record is left to be built
    for the new values (from the record of another plan of the same ``template``, where the backend can)."""
    return LaunchPlan(plan.kernel_name, plan.grid, plan.group, plan.groups, addresses, plan.threadgroup_bytes,
                      plan.allocations, plan.allocation_params, constants, sizes, plan.slot_params, None, template)


class TemplateCache(PlanCache):
    """Recent ConstantPlans under PlanCache's rules (its limit, weak references to the Buffers a key names,
    clear()), found by ``key()``: the function, the sizes as given, then each argument's id where it is None or one
    of ``bound_types`` (the Buffer class), and its kind otherwise."""

    def __init__(self, bound_types: type | tuple[type, ...]):
        super().__init__()
        self._bound_types = bound_types

    def key(self, function: Any, grid: Any, threads_per_threadgroup: Any, threadgroup_memory: dict[int, int] | None,
            arguments: Sequence[Any]) -> tuple:
        bound = self._bound_types
        kinds = [id(value) if value is None or isinstance(value, bound) else kind_of(value) for value in arguments]
        return (*PlanCache.key(function, grid, threads_per_threadgroup, threadgroup_memory, ()), *kinds)


class DispatchPlans(PlanCache):
    """The plans of an Interface's recent dispatches: PlanCache's, by the ids of the arguments (its ``table`` stays
    what compiled code reads), and the templates of those that pack constant values, by the kinds of the
    arguments (``templates``). clear() forgets both."""

    def __init__(self, bound_types: type | tuple[type, ...]):
        super().__init__()
        self.templates = TemplateCache(bound_types)

    def find_like(self, function: Any, grid: Any, threads_per_threadgroup: Any,
                  threadgroup_memory: dict[int, int] | None, arguments: Any) -> tuple[tuple | None, Any]:
        """The template of a recent dispatch like this one: (the key by kinds, the ConstantPlan found under it or
        None); (None, None) where PlanCache.find gives no key."""
        return self.templates.find(function, grid, threads_per_threadgroup, threadgroup_memory, arguments)

    def remember(self, key: tuple, kinds: tuple | None, function: KernelSignature, plan: LaunchPlan,
                 owners: Sequence[Any]) -> None:
        """Cache a plan just built for a dispatch found under neither ``key`` nor ``kinds``: a plan without
        constants under ``key``, one with constants as the template of dispatches like it."""
        if not plan.constants:
            self.store(key, plan, owners)
        elif kinds is not None:
            self.templates.store(kinds, ConstantPlan.of(function, plan), owners)

    def clear(self) -> None:
        super().clear()
        self.templates.clear()


def kind_of(value: Any) -> Any:
    """What a constant value stands by in a key: its type, with a numpy array's dtype and shape (a numpy struct's
    dtype) that decide how many bytes it packs to. The values themselves are checked when they are packed."""
    kind = type(value)
    if kind is np.ndarray:
        return kind, value.dtype, value.shape
    if kind is np.void:
        return kind, value.dtype
    return kind

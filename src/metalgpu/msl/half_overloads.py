"""Calls of a kernel's own C-named math functions with a half, on CUDA.

Libraries define functions under names of the C math library that Metal lacks (MLX's ``log1p(float)``,
``log1p(bfloat16_t)`` and ``log1p(complex64_t)``; metal/_c_names.h respells them ``mg_kernel_log1p``) and call
them with a ``half``. On Apple's GPUs and on the cpu, ``half`` is a built-in type whose conversion to ``float`` is
standard and wins. On CUDA ``half`` is a class: its conversion to ``float`` and a constructor template that takes
any number (MLX's ``complex64_t``) are both user-defined conversions, and C++ refuses the call as ambiguous.

For each such function the kernel declares at namespace scope, the CUDA translation gets, after the kernel's code,
a template in ``half``'s own namespace (found by argument-dependent lookup where a kernel's template is
instantiated) that takes the ``half`` exactly and calls the kernel's functions with a ``float``, which is the
overload Apple's compiler picks. A kernel's own overload for ``half`` still wins: it is no template.
"""
from __future__ import annotations

import re
from functools import lru_cache

from .abi import INCLUDE_DIR
from .lexer import Token
from .outline import Declaration


@lru_cache(maxsize=1)
def c_names() -> frozenset[str]:
    """The names metal/_c_names.h respells."""
    text = (INCLUDE_DIR / "metal" / "_c_names.h").read_text()
    return frozenset(re.findall(r"^#define (\w+) mg_kernel_\1$", text, re.MULTILINE))


def half_overloads(tokens: list[Token], declarations: list[Declaration]) -> str:
    """The C++ to put after the kernel's code on CUDA (empty when the kernel declares none of the names)."""
    plain, templates = set(), set()
    for d in declarations:
        if d.kind == "function" and not d.in_class and not d.scope and d.name is not None \
                and d.name[1] - d.name[0] == 1 and tokens[d.name[0]].text in c_names():
            (templates if d.templates else plain).add(tokens[d.name[0]].text)
    # a function template of the name (candle's `template <typename T> T erf(T)`) takes a half exactly already,
    # and would tie with the helper
    names = sorted(plain - templates)
    if not names:
        return ""
    # the float type spelled through H, so that a call with no float overload is a substitution failure
    float_of_h = "::metal::conditional_t<true, float, H>"
    helpers = "".join(
        f"template <class H, ::metal::enable_if_t<::metal::is_same<H, ::mg::detail::half_t>::value, int> = 0>\n"
        f"MG_FUNC auto {name}(H x) -> decltype(::{name}(static_cast<{float_of_h}>(x))) "
        f"{{ return ::{name}(static_cast<{float_of_h}>(x)); }}\n" for name in names)
    return f"namespace mg {{ namespace detail {{\n{helpers}}}  // namespace detail\n}}  // namespace mg\n"

"""MSL tokens -> one C++ translation unit for a target.

The user's code is re-emitted token by token at its original lines and columns (with ``#line`` directives), with
only MSL-only syntax rewritten:

- address spaces: ``device`` and ``thread`` vanish, ``constant`` becomes ``const`` (a distinct qualifier, so
  overloads on it keep working; at namespace scope it also gets the target's ``MG_CONSTANT_DATA``) and
  ``threadgroup`` vanishes, here token by token; msl/address_spaces.py finishes the job on declarations
  (duplicate ``const``, variants that differ only by address space), msl/threadgroup.py turns threadgroup
  variables into per-threadgroup storage;
- ``kernel`` and ``[[kernel]]`` become ``MG_KERNEL``; other Metal attributes are dropped, standard C++ ones kept;
  plain kernels become templates and explicit instantiations of kernels go, so that only the kernels a
  translation wraps are compiled;
- ``1.5h`` literals become ``half(1.5f)``; function constants become compile-time constants;
- C++ that only clang accepts (msl/compat.py), conditional operators with 16-bit floats (msl/conditionals.py);
- swizzles (``v.zyx``, ``v.xy = w``) become calls of helpers emitted before the user's code (msl/swizzles.py);
- reads through a cast to a wider pointer, which may be misaligned, go through a helper (msl/unaligned.py);
- on CUDA, a kernel's own C-named math functions get an exact overload for ``half`` (msl/half_overloads.py);
- two ``simdgroup_multiply_accumulate`` statements in a row become one call, which CUDA's tensor cores may run as
  one instruction (msl/product_pairs.py); loads of matrices that products read only as their B operand are named
  so, for the target to read them in that operand's layout, and loads in a row that fill one tensor-core operand
  become one call, which the target may run as one instruction (msl/operand_loads.py).

After the user's code come the wrappers, one per kernel, that the backend calls (see docs/architecture.md).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError
from .address_spaces import rewrite as rewrite_address_spaces
from .analysis import cooperative_kernels, streamed_inputs
from .compat import rewrite as rewrite_compat
from .conditionals import rewrite as rewrite_conditionals
from .half_overloads import half_overloads
from .kernel_templates import (
    drop_kernel_instantiations,
    template_plain_kernels,
)
from .lexer import IDENT, NUMBER, PUNCT, Token
from .literals import string_literal
from .operand_loads import rewrite as name_operand_loads
from .outline import bracket_partners
from .outline import scan as scan_declarations
from .parser import KernelDecl, Program
from .pipeline import absent_params, drop_unselected, max_threads_constant
from .pragmas import place_unroll_hints
from .preprocess import PreprocessResult
from .product_pairs import rewrite as join_product_pairs
from .swizzles import rewrite as rewrite_swizzles
from .threadgroup import rewrite as rewrite_threadgroup
from .unaligned import rewrite as rewrite_unaligned_loads
from .wrappers import ABSENT_HELPER, KERNEL_PREFIX, cpu_wrapper, cuda_wrapper

STANDARD_ATTRIBUTES = {"likely", "unlikely", "maybe_unused", "fallthrough", "nodiscard", "noreturn", "deprecated",
                       "carries_dependency"}
# One way to split the digits (\d+\.?\d* had n for a number of n digits): a long number fails in linear time.
_HALF_LITERAL = re.compile(r"^((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)[hH]$")


@dataclass(frozen=True)
class Translation:
    source: str
    kernels: tuple[KernelDecl, ...]  # every kernel of the program: kernel i is reached through mg_run_i / mg_info_i
    # (file, line) -> sorted (column in the translation, column in the user's source) of each token, for the
    # lines where they differ (rewritten keywords, macro expansions): compiler columns are mapped back with it.
    columns: dict[tuple[str, int], list[tuple[int, int]]]
    selected: tuple[int, ...] = ()  # the indices of the kernels this translation holds, in increasing order


class Translator:
    """The rewriting of one program for one target, done once, and translations of any of its kernels, with any
    function-constant values, from it: a library that compiles kernel after kernel rewrites its tokens once."""

    def __init__(self, pre: PreprocessResult, program: Program, target: str, check_bounds: bool = False):
        self.pre, self.program, self.target, self.check_bounds = pre, program, target, check_bounds
        texts = _rewrite(pre.tokens, program)
        place_unroll_hints(pre.tokens, texts, target)
        match = bracket_partners(pre.tokens)
        product_pairs = join_product_pairs(pre.tokens, texts, match)
        name_operand_loads(pre.tokens, texts, match, product_pairs)
        declarations = scan_declarations(pre.tokens, match)
        rewrite_address_spaces(pre.tokens, texts, declarations, match)
        rewrite_compat(pre.tokens, texts, declarations, match)
        plain_kernels = template_plain_kernels(pre.tokens, texts, declarations)
        for kernel in program.kernels:
            if kernel.name_token is not None:  # see kernel_callee
                texts[kernel.name_token] = KERNEL_PREFIX + texts[kernel.name_token]
        drop_kernel_instantiations(pre.tokens, texts, declarations, program)
        rewrite_threadgroup(pre.tokens, texts, declarations, match, plain_kernels)
        self._swizzle_helpers = rewrite_swizzles(pre.tokens, texts)
        rewrite_unaligned_loads(pre.tokens, texts, match)
        if check_bounds:
            _check_bounds(pre.tokens, texts, program)
        rewrite_conditionals(pre.tokens, texts, match)  # last: its copies of operands hold every other rewrite
        self._texts = texts
        self._after_user_code = half_overloads(pre.tokens, declarations) if target == "cuda" else ""

    def translate(self, constants: dict[int, Any] | None = None, kernels: Iterable[int] | None = None) -> Translation:
        """The C++ source holding ``kernels`` (indices into the program's kernels; None: all). Each keeps its index
        in the whole program (``mg_run_<i>``), whichever others are left out."""
        pre, program, target = self.pre, self.program, self.target
        selected = tuple(range(len(program.kernels))) if kernels is None else tuple(sorted(set(kernels)))
        if any(not 0 <= i < len(program.kernels) for i in selected):
            raise ValueError(f"kernel indices {selected} are outside the program's {len(program.kernels)} kernels")
        constants = constants or {}
        lines = [f"#define MG_TARGET_{target.upper()} 1"]
        if self.check_bounds:
            lines.append("#define MG_DEBUG_BOUNDS 1")
        texts = list(self._texts)
        drop_unselected(texts, program, selected)
        lines += ["#include <metal_stdlib>", f"#include <metal/_launch_{target}.h>", "#include <metal/_translator.h>"]
        lines += _function_constant_defines(program, constants)
        lines.append(self._swizzle_helpers)
        body, columns = _emit(pre.tokens, texts)
        chosen = [program.kernels[i] for i in selected]
        # Kernels whose threads wait for or talk to each other: fibers on the CPU, one threadgroup per block on CUDA.
        cooperative = cooperative_kernels(pre.tokens, Program(tuple(chosen), program.function_constants))
        wrappers = []
        for i, kernel, shared in zip(selected, chosen, cooperative):
            absent = absent_params(kernel, program.function_constants, constants)
            if absent and ABSENT_HELPER not in wrappers:
                wrappers.insert(0, ABSENT_HELPER)
            limit = max_threads_constant(i, kernel)
            if limit is not None:
                wrappers.append(limit[0])
            limit_expression = limit[1] if limit is not None else None
            wrappers.append(cpu_wrapper(i, kernel, shared, absent, limit_expression) if target == "cpu" else
                            cuda_wrapper(i, kernel, shared, [] if shared else streamed_inputs(pre.tokens, kernel),
                                         absent, limit_expression))
        return Translation("\n".join(lines) + "\n" + body + "\n" + self._after_user_code + "\n".join(wrappers),
                           program.kernels, columns, selected)


def translate(pre: PreprocessResult, program: Program, target: str,
              constants: dict[int, Any] | None = None, check_bounds: bool = False,
              kernels: Iterable[int] | None = None) -> Translation:
    """The C++ source for ``target`` ("cpu" or "cuda"); ``constants`` maps function-constant indices to values;
    ``check_bounds`` (cuda, Interface(debug=True)) tests every access through a kernel's buffer pointers;
    ``kernels`` (indices into ``program.kernels``; None: all) are the kernels the translation holds."""
    return Translator(pre, program, target, check_bounds).translate(constants, kernels)


# -- rewriting ----------------------------------------------------------------------------------------------------

def _rewrite(tokens: list[Token], program: Program) -> list[str]:
    """The text to emit for each token ('' drops it)."""
    texts = [t.text for t in tokens]
    constant_index = {fc.name: fc.index for fc in program.function_constants}
    for fc in program.function_constants:
        start, end = fc.span
        texts[start] = f"static constexpr {fc.type_text} {fc.name} = MG_FC_VALUE_{fc.index};"
        for i in range(start + 1, end):
            texts[i] = ""
    scopes: list[str] = []  # "namespace", "class", "function" (any brace inside a function), "init"
    parens = 0
    statement_start = 0     # index of the first token of the current declaration or statement
    previous_significant = ""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        text = tok.text
        if texts[i] != text:  # already rewritten (function constant)
            i += 1
            continue
        in_function = "function" in scopes
        if tok.kind == PUNCT:
            if text == "[" and i + 1 < len(tokens) and tokens[i + 1].text == "[":
                i = _rewrite_attribute(tokens, texts, i, previous_significant)
                continue
            if text in "([":
                parens += 1
            elif text in ")]":
                parens -= 1
            elif text == "{":
                scopes.append(_classify_brace(tokens, statement_start, i, in_function))
                statement_start = i + 1
            elif text == "}":
                if scopes:
                    scopes.pop()
                statement_start = i + 1
            elif text == ";" and parens == 0:
                statement_start = i + 1
        elif tok.kind == IDENT:
            if text in ("device", "thread") and previous_significant == "::":
                pass  # thread_scope::device, thread_scope::thread: names, not address spaces
            elif text in ("device", "thread") or (text == "kernel" and previous_significant == "template"):
                texts[i] = ""
            elif text == "kernel":
                texts[i] = "MG_KERNEL"
            elif text == "constant":
                texts[i] = "const"
                if not in_function and parens == 0 and (not scopes or scopes[-1] == "namespace") \
                        and not _declares_function(tokens, i):
                    texts[i] = "MG_CONSTANT_DATA const"
            elif text == "threadgroup":
                texts[i] = ""  # or threadgroup storage: msl/threadgroup.py
            elif text == "is_function_constant_defined" and i + 3 < len(tokens) \
                    and tokens[i + 2].text in constant_index and tokens[i + 3].text == ")":
                texts[i] = f"MG_FC_DEFINED_{constant_index[tokens[i + 2].text]}"
                texts[i + 1] = texts[i + 2] = texts[i + 3] = ""
                i += 4
                continue
        elif tok.kind == NUMBER:
            match = _HALF_LITERAL.match(text)
            if match:
                number = match.group(1)
                if not any(c in number for c in ".eE"):
                    number += ".0"
                texts[i] = f"half({number}f)"
        if texts[i]:
            previous_significant = text
        i += 1
    return texts


def _check_bounds(tokens: list[Token], texts: list[str], program: Program) -> None:
    """Shadow every pointer [[buffer(i)]] parameter of each kernel body by a bounds-checked one
    (metal/_debug_cuda.h): the parameter is renamed, and the body starts by declaring the checked name."""
    seen: set[tuple[int, int]] = set()
    for kernel in program.kernels:
        if kernel.body is None or kernel.body in seen:
            continue
        seen.add(kernel.body)
        names = _parameter_name_tokens(tokens, kernel.body[0])
        declarations = []
        for param in kernel.params:
            if param.binding != "buffer" or not param.is_pointer or param.name not in names:
                continue
            texts[names[param.name]] = f"mg_unchecked_{param.name}"
            declarations.append(f"auto {param.name} = mg::check_bounds(mg_unchecked_{param.name}, {param.index});")
        if declarations:
            texts[kernel.body[0]] += " " + " ".join(declarations)


def _parameter_name_tokens(tokens: list[Token], body: int) -> dict[str, int]:
    """The token of each parameter's name in the parameter list just before the function body at ``body``:
    the last identifier of each top-level, comma-separated parameter, outside its attributes."""
    close = body - 1
    if close < 0 or tokens[close].text != ")":
        return {}
    depth, start = 0, None
    for j in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(tokens[j].text, 0)
        if depth == 0:
            start = j
            break
    if start is None:
        return {}
    names, depth, last = {}, 0, None
    for j in range(start + 1, close + 1):
        text = tokens[j].text
        if depth == 0 and text in (",", ")"):
            if last is not None:
                names[tokens[last].text] = last
            last = None
        if text in ("(", "[", "<"):
            depth += 1
        elif text in (")", "]", ">", ">>"):
            depth -= len(text)
        elif depth == 0 and tokens[j].kind == IDENT:
            last = j
    return names


def _rewrite_attribute(tokens: list[Token], texts: list[str], start: int, previous: str) -> int:
    """Handle the attribute ``[[ ... ]]`` at ``start``; returns the index after it."""
    depth, end = 0, start
    while end < len(tokens):
        if tokens[end].text == "[":
            depth += 1
        elif tokens[end].text == "]":
            depth -= 1
            if depth == 0:
                break
        end += 1
    names = {t.text for t in tokens[start + 2:end - 1] if t.kind == IDENT}
    if names and names <= STANDARD_ATTRIBUTES:
        return end + 1
    for k in range(start, end + 1):
        texts[k] = ""
    if "kernel" in names and previous != "template":
        texts[start] = "MG_KERNEL"
    return end + 1


def _classify_brace(tokens: list[Token], statement_start: int, brace: int, in_function: bool) -> str:
    if in_function:
        return "function"
    head = [t.text for t in tokens[statement_start:brace]]
    if "namespace" in head or (head[:1] == ["extern"] and len(head) == 2):
        return "namespace"
    if "(" not in head and any(word in head for word in ("struct", "class", "union", "enum")):
        return "class"
    if "(" in head and (not head or head[-1] != "="):
        return "function"
    return "init"


def _declares_function(tokens: list[Token], start: int) -> bool:
    """Is the namespace-scope declaration starting at ``start`` a function (a '(' before '=', ';' or '{')?"""
    for tok in tokens[start:]:
        if tok.text in ("=", ";", "{", "["):
            return False
        if tok.text == "(":
            return True
    return False


def _function_constant_defines(program: Program, constants: dict[int, Any]) -> list[str]:
    known = {fc.index: fc for fc in program.function_constants}
    for index in constants:
        if index not in known:
            raise ArgumentError(f"the shader declares no [[function_constant({index})]]")
    lines = []
    for index, fc in sorted(known.items()):
        if index in constants:
            lines += [f"#define MG_FC_DEFINED_{index} true",
                      f"#define MG_FC_VALUE_{index} ({_literal(constants[index], fc.name)})"]
        else:
            lines += [f"#define MG_FC_DEFINED_{index} false", f"#define MG_FC_VALUE_{index} {{}}"]
    return lines


def _literal(value: Any, name: str) -> str:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}ll" if value < 0 else f"{value}ull"
    if isinstance(value, float):
        if value != value:  # written by their bits: both g++ and NVRTC accept these as constant expressions
            return "__builtin_bit_cast(float, 0x7fc00000u)"
        if abs(value) == float("inf"):
            return ("" if value > 0 else "-") + "__builtin_bit_cast(float, 0x7f800000u)"
        return repr(value)
    raise ArgumentError(f"function constant '{name}': value {value!r} is not a bool, int or float")


# -- emitting -----------------------------------------------------------------------------------------------------

def _emit(tokens: list[Token], texts: list[str]) -> tuple[str, dict]:
    """Tokens at their original lines and columns where possible, so compiler diagnostics land where the user
    wrote them; where a column had to move, the returned map says where it came from."""
    out: list[str] = []
    columns: dict[tuple[str, int], list[tuple[int, int]]] = {}
    shifted: set[tuple[str, int]] = set()
    file, line, column = None, 0, 1
    for tok, text in zip(tokens, texts):
        if not text:
            continue
        if tok.file != file or tok.line != line:
            if tok.file == file and 0 < tok.line - line <= 8:
                out.append("\n" * (tok.line - line))
            else:
                out.append(f'\n#line {tok.line} {string_literal(tok.file)}\n')
            file, line, column = tok.file, tok.line, 1
        if tok.column > column:
            out.append(" " * (tok.column - column))
            column = tok.column
        elif tok.column < column and out and not out[-1].endswith(("\n", " ")):
            out.append(" ")
            column += 1
        columns.setdefault((file, line), []).append((column, tok.column))
        if column != tok.column:
            shifted.add((file, line))
        out.append(text)
        column += len(text)
    return "".join(out), {key: columns[key] for key in shifted}

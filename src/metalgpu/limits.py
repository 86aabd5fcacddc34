"""Limits on what compiling one shader may cost, so that a hostile or broken source fails fast instead of
exhausting the machine: each one's default is well above what production libraries need, and an environment
variable raises it.

- METALGPU_MAX_TOKENS: tokens the preprocessor may produce, the source's own and every macro expansion's, each
  file read counting as at least 1,000 (MLX, candle, ggml and PyTorch files need at most 300,000).
- METALGPU_MAX_EXPANSION: tokens one macro name in the source may expand to, through every macro it uses (at most
  230,000 in those libraries): a macro bomb, which grows exponentially, stops here in about a second.
- METALGPU_MAX_INCLUDE_DEPTH: how deeply ``#include`` may nest.
- METALGPU_COMPILE_TIMEOUT: seconds the compiler may run for one module: the C++ compiler (cpu backend; MLX's
  binary.metal compiled whole, the slowest file of those libraries, took ten minutes on one core) or NVRTC (cuda
  backend, in its worker process: backends/nvrtc_limited.py). Past it the compiler's process group is killed.
- METALGPU_COMPILE_MEMORY: MiB of memory the compiler may use, on Linux. The cpu backend limits the C++
  compiler's address space (RLIMIT_AS; that compile peaked at 1.3 GiB). The cuda backend limits the data segment
  of NVRTC's worker process (RLIMIT_DATA: its heap and private writable mappings, the worker's own 30 MiB
  included), not its address space: libnvrtc's code alone maps 160 MiB. A small kernel with the emulation headers
  needs about 80 MiB.

Fixed limits on nesting keep the front end, which reads nested constructs recursively, well inside Python's
default recursion limit (1,000 frames) from any caller's stack; production MSL nests far less.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    variable: str
    default: int
    what: str  # how a message names it

    def value(self) -> int:
        """The limit now: the environment variable when it holds a positive integer, else the default."""
        text = os.environ.get(self.variable, "").strip()
        return int(text) if text.isdigit() and int(text) > 0 else self.default

    def exceeded(self, detail: str = "") -> str:
        """The message for a source that went past this limit."""
        return f"{detail or 'the shader'} exceeds the limit of {self.value()} {self.what}: {self.how_to_raise()}"

    def how_to_raise(self) -> str:
        return f"set the environment variable {self.variable} to a larger number to allow more"


MAX_TOKENS = Limit("METALGPU_MAX_TOKENS", 2_000_000, "preprocessing tokens")
MAX_EXPANSION = Limit("METALGPU_MAX_EXPANSION", 500_000, "tokens from one macro")
MAX_INCLUDE_DEPTH = Limit("METALGPU_MAX_INCLUDE_DEPTH", 64, "nested #include levels")
COMPILE_TIMEOUT = Limit("METALGPU_COMPILE_TIMEOUT", 1800, "seconds")
COMPILE_MEMORY = Limit("METALGPU_COMPILE_MEMORY", 8192, "MiB of memory")

# brackets ( [ { nested in the preprocessed source: clang's default (-fbracket-depth), which Metal's compiler has
MAX_BRACKET_NESTING = 256
# macro calls nested in the arguments of macro calls (each level costs the preprocessor four frames)
MAX_MACRO_NESTING = 100
# levels of parentheses (two each), conditionals, unary operators and casts nested in one constant expression
# (#if, attribute indices, array bounds): at most three frames a level
MAX_EXPRESSION_NESTING = 128

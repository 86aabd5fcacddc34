"""What a compiled cpu module may reach, checked before it is ever loaded.

The front end refuses the C++ that would call out of a shader (msl/policy.py); this check of the built shared
object catches whatever got past it. A module may only need, from outside itself, the math library (libm, its
vector variants in libmvec, libgcc's arithmetic helpers) and the few runtime functions our emulation headers call
(memory for fiber stacks, operator new, thread-local storage). And it may not run code when it is loaded: a
constructor or destructor, or a global variable initialised at run time, adds an .init_array or .fini_array entry
beyond the toolchain's own.

Only 64-bit little-endian ELF modules (Linux on x86-64 and ARM64) are read; elsewhere the check is skipped.
"""
from __future__ import annotations

import re
import struct
import subprocess
from functools import lru_cache

_SHT_DYNSYM = 11
_LOAD_AND_EXIT_ARRAYS = (14, 15, 16)  # SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_PREINIT_ARRAY
_SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYMBOL = struct.Struct("<IBBHQQ")       # Elf64_Sym
_GLOBAL, _WEAK = 1, 2

# What the emulation headers and the toolchain's start files refer to, besides the math libraries.
_RUNTIME = frozenset({
    "memset", "memcpy", "memmove", "memcmp", "mmap", "munmap", "mprotect", "sysconf", "abort",
    "mg_fiber_stacks", "mg_threadgroup_arenas",  # the host's (backends/cpu_thread_memory.cpp), weak references
    "__tls_get_addr", "__cxa_thread_atexit", "__cxa_thread_atexit_impl", "__cxa_finalize", "__gmon_start__",
    "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__stack_chk_fail", "__cxa_guard_acquire",
    "__cxa_guard_release", "__cxa_guard_abort", "__cxa_pure_virtual", "__cxa_begin_catch", "__cxa_end_catch",
    "__cxa_rethrow", "__cxa_allocate_exception", "__cxa_free_exception", "__cxa_throw", "__gxx_personality_v0",
    "_ZSt7nothrow", "_ZSt9terminatev",
})
# operator new and delete in all their forms, std::__throw_* (std::vector's checks), std exception type data
_RUNTIME_PATTERN = re.compile(r"_Zn[wa]m\w*|_Zd[la]Pv\w*|_ZSt\d+__throw_\w+|_ZTISt\w+|_ZTVN10__cxxabiv\w+")
_MATH_LIBRARIES = ("libm.so.6", "libmvec.so.1", "libgcc_s.so.1")


def _is_elf64_le(image: bytes) -> bool:
    return image[:4] == b"\x7fELF" and image[4] == 2 and image[5] == 1


def _sections(image: bytes) -> list[tuple]:
    sections_at, = struct.unpack_from("<Q", image, 0x28)
    entry_size, count = struct.unpack_from("<HH", image, 0x3A)
    return [_SECTION.unpack_from(image, sections_at + k * entry_size) for k in range(count)]


def _dynamic_symbols(image: bytes, sections: list[tuple]):
    """(name, binding, defined) of every dynamic symbol."""
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != _SHT_DYNSYM:
            continue
        names_at = sections[link][4]
        for at in range(offset + _SYMBOL.size, offset + size, _SYMBOL.size):
            name_at, info, _, section, _, _ = _SYMBOL.unpack_from(image, at)
            if name_at:
                end = image.index(b"\0", names_at + name_at)
                yield image[names_at + name_at:end].decode("ascii", "replace"), info >> 4, section != 0


def _undefined_and_initialisers(image: bytes) -> tuple[set[str], int]:
    """The module's undefined dynamic symbols (without version), and how many functions it has run when it is
    loaded or unloaded (its init, preinit and fini arrays)."""
    sections = _sections(image)
    undefined = {name.partition("@")[0] for name, _, defined in _dynamic_symbols(image, sections) if not defined}
    entries = sum(size // 8 for _, kind, _, _, _, size, *_ in sections if kind in _LOAD_AND_EXIT_ARRAYS)
    return undefined, entries


@lru_cache(maxsize=4)
def math_symbols(compiler: tuple[str, ...]) -> frozenset[str]:
    """Every function of the math libraries the compiler links against."""
    names: set[str] = set()
    for library in _MATH_LIBRARIES:
        found = subprocess.run([*compiler, f"-print-file-name={library}"], capture_output=True, text=True,
                               check=False).stdout.strip()
        try:
            with open(found, "rb") as f:
                image = f.read()
        except OSError:
            continue
        if _is_elf64_le(image):
            names |= {name for name, binding, defined in _dynamic_symbols(image, _sections(image))
                      if defined and binding in (_GLOBAL, _WEAK)}
    return frozenset(names)


def refusal(image: bytes, allowed: frozenset[str], baseline_init_entries: int) -> tuple[str, list[str]] | None:
    """Why the module ``image`` may not be loaded, with the outside functions it calls; None if it may.
    ``allowed``: math_symbols(); the baseline is how many load and unload functions the toolchain itself puts in a
    module with no code."""
    if not _is_elf64_le(image):
        return None
    undefined, entries = _undefined_and_initialisers(image)
    reasons = []
    if entries > baseline_init_entries:
        reasons.append("the shader's module would run code when it is loaded or unloaded (a global variable "
                       "initialised at run time, a constructor or a destructor): Metal has none of them; make such "
                       "globals 'constant' with a constant initialiser")
    expected = allowed | _RUNTIME | ({"__cxa_atexit"} if reasons else set())  # a global's destructor: said above
    outside = [name for name in sorted(undefined - expected) if not _RUNTIME_PATTERN.fullmatch(name)]
    if outside:
        shown = ", ".join(f"'{name}'" for name in outside[:8]) + (" ..." if len(outside) > 8 else "")
        reasons.append(f"the shader calls functions outside itself and the Metal library ({shown}): on the cpu "
                       "backend a shader may use only what Metal has")
    return ("; ".join(reasons) + ". The module was not loaded.", outside) if reasons else None


_LINE_DIRECTIVE = re.compile(r'#line (\d+) "((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\([0-7]{3}|.)")


def locate_call(translation: str, name: str) -> str | None:
    """``file:line:column`` of the first call of ``name`` in the user's code of ``translation``, read back
    through its ``#line`` directives (the compiler's own format, which diagnostics.parse_log places); None if
    the name is not called there (a C++ name, mangled, is not looked for)."""
    call = re.compile(rf"(?<![\w.>]){re.escape(name)}\s*\(")
    file, line = None, 0
    for text in translation.splitlines():
        directive = _LINE_DIRECTIVE.fullmatch(text)
        if directive:
            line = int(directive.group(1))
            file = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)) if len(m.group(1)) == 3 else m.group(1),
                               directive.group(2))
            continue
        if file is not None:
            found = call.search(text)
            if found:
                return f"{file}:{line}:{found.start() + 1}"
            line += 1
    return None


def init_entries(image: bytes) -> int:
    """How many functions the module ``image`` runs when loaded or unloaded (0 when it is not read)."""
    return _undefined_and_initialisers(image)[1] if _is_elf64_le(image) else 0

"""What a shader may not contain: the C++ that Metal does not have and that would reach the host.

On the cpu backend a shader becomes native code in the caller's process, so C++ that Metal lacks would let it act
on the host: inline assembly, declarations of functions defined elsewhere (the C library), GNU attributes that
place code or data (load-time constructors, sections, aliases), pragmas that change how it is compiled, and the C
library's headers. The front end refuses them on the user's own line; a check of the built module's symbols (see
backends/cpu_module_check.py) catches whatever else would call out of it.
"""
from __future__ import annotations

from ..errors import Diagnostic, ShaderCompileError, source_line
from ..limits import MAX_BRACKET_NESTING
from .lexer import IDENT, PUNCT, Token
from .outline import bracket_partners

_ASSEMBLY = frozenset({"asm", "__asm__", "__asm"})
MAX_DIAGNOSTICS = 100  # refused constructs reported at once
# GNU attributes with no effect outside the code they are on; production MSL uses the inlining ones (Apple's own
# METAL_FUNC is always_inline). Everything else, constructor, section, alias, visibility, cleanup ..., is refused.
ALLOWED_ATTRIBUTES = frozenset({
    "always_inline", "noinline", "flatten", "unused", "maybe_unused", "aligned", "packed", "const", "pure", "hot",
    "cold", "deprecated", "nodiscard", "warn_unused_result", "noreturn", "nonnull", "returns_nonnull", "nothrow",
    "fallthrough", "likely", "unlikely", "may_alias", "vector_size", "ext_vector_type", "overloadable",
    "artificial", "noescape",
})
# Host-acting attributes that an unscoped [[name]] spells too: compilers ignore those today, but a shader has no
# use for them.
_HOST_ATTRIBUTES = frozenset({"constructor", "destructor", "section", "alias", "weak", "weakref", "visibility",
                              "ifunc", "init_priority", "cleanup", "optimize", "target", "target_clones", "naked",
                              "used", "retain", "symver", "externally_visible", "no_instrument_function"})
_ATTRIBUTE_NAMESPACES = frozenset({"gnu", "__gnu__", "clang", "_Clang", "__clang__"})
# The C library functions our own headers call (the fibers' stacks), which the module check must therefore let
# through, and those that would reach anything at all: a shader itself may not call them.
HOST_FUNCTIONS = frozenset({"mmap", "munmap", "mprotect", "madvise", "sysconf", "syscall", "dlopen", "dlsym"})

# The C and C++ standard libraries' and POSIX headers: a Metal shader has none of them, and on the cpu backend
# they would bring the host's functions into the shader's scope.
_C_HEADERS = frozenset("""
    assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h locale.h math.h setjmp.h signal.h
    stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h tgmath.h
    threads.h time.h uchar.h wchar.h wctype.h unistd.h fcntl.h dlfcn.h pthread.h dirent.h poll.h sched.h spawn.h
    termios.h pwd.h grp.h netdb.h syslog.h malloc.h alloca.h elf.h link.h
""".split())
_CXX_HEADERS = frozenset("""
    cassert ccomplex cctype cerrno cfenv cfloat cinttypes ciso646 climits clocale cmath csetjmp csignal cstdalign
    cstdarg cstdbool cstddef cstdint cstdio cstdlib cstring ctgmath ctime cuchar cwchar cwctype algorithm any array
    atomic bitset chrono codecvt condition_variable deque exception execution filesystem forward_list fstream
    functional future initializer_list iomanip ios iosfwd iostream istream iterator limits list locale map memory
    memory_resource mutex new numeric optional ostream queue random ratio regex scoped_allocator set shared_mutex
    sstream stack stdexcept streambuf string string_view system_error thread tuple typeindex typeinfo
    type_traits unordered_map unordered_set utility valarray variant vector
""".split())
_HOST_HEADER_FOLDERS = ("sys/", "bits/", "linux/", "asm/", "netinet/", "arpa/", "ext/", "c++/")


# What an #include may read: source files only, so that no other file's text ends up in an error message.
SHADER_SUFFIXES = (".metal", ".h", ".hpp", ".hh", ".hxx", ".inc", ".inl", ".ipp", ".tcc", ".def", ".cpp", ".cc",
                   ".cxx", ".c")


def is_shader_source(path: str) -> bool:
    return path.lower().endswith(SHADER_SUFFIXES)


_APPLE_ONLY_HEADERS = (("MetalPerformancePrimitives/", "the MetalPerformancePrimitives framework"),
                       ("metal_tensor", "Metal 4's tensor library"))


def is_metal_header(name: str) -> bool:
    return name.startswith("metal_") or name == "simd/simd.h"


def apple_only_framework(header: str) -> str | None:
    """The Apple-only framework a header belongs to (None for others): those only exist in Apple's toolchain."""
    return next((what for prefix, what in _APPLE_ONLY_HEADERS if header.startswith(prefix)), None)


def host_header(name: str) -> bool:
    """Is ``<name>`` a C, C++ or POSIX library header rather than a Metal or user one?"""
    return name in _C_HEADERS or name in _CXX_HEADERS or name.startswith(_HOST_HEADER_FOLDERS)


def check_tokens(tokens: list[Token], sources: dict[str, str]) -> None:
    """Raise ShaderCompileError on every construct of the preprocessed ``tokens`` that a shader may not have."""
    problems: list[tuple[Token, str]] = []
    n = len(tokens)
    # Each construct is read by jumping over the brackets it holds, never by scanning to a closer: a scan per
    # construct made deep or unclosed nesting (thousands of '[[') quadratic. An unclosed bracket fails the parse.
    _check_nesting(tokens, sources)
    match = bracket_partners(tokens)
    externs: dict[int, bool] = {}  # what _extern_defines found for the later `extern`s of a declaration it read
    for i, tok in enumerate(tokens):
        if tok.kind != IDENT:
            if tok.text == "[" and i + 1 < n and tokens[i + 1].text == "[":
                problems += _standard_attribute(tokens, match, i + 1)
            elif tok.text in ("#", "##") or (tok.text in ("%", "<") and _joined(tok, tokens[i + 1:i + 2], ":")):
                # The translation goes through the host compiler's preprocessor again: a '#' a macro made (or the
                # digraphs %: and <:, '#' and '[') would become a directive or an attribute there.
                spelled = tok.text if tok.text in ("#", "##") else tok.text + ":"
                problems.append((tok, f"'{spelled}' outside a preprocessing directive is not MSL (a macro cannot "
                                      "make a directive, and digraphs are not accepted)"))
            continue
        text = tok.text
        if text in _ASSEMBLY:
            problems.append((tok, f"'{text}': inline assembly is not MSL, and a shader cannot contain machine code"))
        elif text == "extern" and not _extern_defines(tokens, match, i, externs):
            problems.append((tok, "'extern' declarations are refused: everything a shader calls must be defined "
                                  "in the shader or come from the Metal library"))
        elif text in ("__attribute__", "__attribute"):
            problems += _gnu_attribute(tokens, match, i + 1)
        elif text == "_Pragma":  # the preprocessor applies every one; none may reach the host compiler
            problems.append((tok, "'_Pragma' is only accepted where the preprocessor sees it"))
        elif text == "__declspec":
            problems.append((tok, "'__declspec' is not MSL"))
        elif text in HOST_FUNCTIONS and _named_as_a_function(tokens, i):
            problems.append((tok, f"'{text}' is a host C library function: a shader cannot call it"))
    if problems:
        # the first ones, each with its line: finding a line reads its whole file, once per diagnostic
        raise ShaderCompileError([Diagnostic(message, tok.pos, "error", source_line(sources, tok.pos))
                                  for tok, message in problems[:MAX_DIAGNOSTICS]])


def _check_nesting(tokens: list[Token], sources: dict[str, str]) -> None:
    """Brackets nested deeper than MAX_BRACKET_NESTING are refused, at the first one too many: the parser and the
    translator read nested declarations and expressions recursively."""
    depth = 0
    for tok in tokens:
        if tok.kind != PUNCT:
            continue
        if tok.text in ("(", "[", "{"):
            depth += 1
            if depth > MAX_BRACKET_NESTING:
                raise ShaderCompileError.at(tok.pos, f"brackets are nested more than {MAX_BRACKET_NESTING} deep "
                                                     "(the limit of clang, on which Metal's compiler is built)",
                                            source_line(sources, tok.pos))
        elif tok.text in (")", "]", "}") and depth:
            depth -= 1


def _extern_defines(tokens: list[Token], match: list[int], at: int, decided: dict[int, bool]) -> bool:
    """Does the ``extern`` at ``at`` open something defined here: an explicit instantiation declaration, a
    linkage block (``extern "C" { ... }``: what it holds is checked on its own) or a function definition? Only a
    declaration, ending at a ``;`` before any ``{``, names something outside the shader. Every later ``extern``
    of the same declaration gets the same answer, stored in ``decided``, so that a run of them is read once."""
    if at in decided:
        return decided[at]
    if at + 1 < len(tokens) and tokens[at + 1].text == "template":
        return True
    others, answer, i = [], False, at + 1
    while i < len(tokens):
        text = tokens[i].text
        if text in ("{", ";"):
            answer = text == "{"
            break
        if text in ("(", "[") and match[i] > i:
            i = match[i]
        elif text in ("(", "[", ")", "]"):  # unbalanced: the parser refuses the file
            break
        elif text == "extern" and not (i + 1 < len(tokens) and tokens[i + 1].text == "template"):
            others.append(i)
        i += 1
    decided.update(dict.fromkeys(others, answer))
    return answer


def _joined(tok: Token, following: list[Token], text: str) -> bool:
    """Is ``following`` (zero or one token) ``text`` written right after ``tok``, with no space between?"""
    return bool(following) and following[0].text == text and not following[0].space_before \
        and following[0].line == tok.line and following[0].file == tok.file


def _named_as_a_function(tokens: list[Token], i: int) -> bool:
    """Is the name at ``i`` called or its address taken, rather than a member's or a variable's own name?"""
    before = tokens[i - 1].text if i else ""
    after = tokens[i + 1].text if i + 1 < len(tokens) else ""
    return before not in (".", "->") and (after == "(" or before in ("::", "&"))


def _refused_attribute(name: Token, scoped: bool) -> tuple[Token, str] | None:
    bare = name.text.strip("_") if name.text.startswith("__") else name.text
    if (bare in ALLOWED_ATTRIBUTES) if scoped else (bare not in _HOST_ATTRIBUTES):
        return None
    return name, (f"attribute '{bare}' is refused: Metal does not have it, and it would act on the host "
                  "(only attributes such as always_inline, noinline, unused, aligned and packed are accepted)")


def _gnu_attribute(tokens: list[Token], match: list[int], i: int) -> list[tuple[Token, str]]:
    """The refused attributes of ``__attribute__((a, b(x), ...))`` whose first ``(`` is at ``i``: the names
    directly inside each inner pair of parentheses."""
    if i >= len(tokens) or tokens[i].text != "(" or match[i] < i:
        return []
    problems = []
    k = i + 1
    while k < match[i]:
        if tokens[k].text == "(" and match[k] > k:
            problems += _attribute_names(tokens, match, k + 1, match[k], scoped=True, namespaced=False)
            k = match[k]
        k += 1
    return problems


def _standard_attribute(tokens: list[Token], match: list[int], i: int) -> list[tuple[Token, str]]:
    """The refused attributes of ``[[...]]`` whose inner ``[`` is at ``i``: a GNU or clang one, namespaced or
    under ``using gnu:``, must be harmless; an unscoped one must not be one of the host's."""
    end = match[i]
    if end < i:
        return []
    start = i + 1
    using_gnu = (start + 2 < end and tokens[start].text == "using" and tokens[start + 1].text in _ATTRIBUTE_NAMESPACES
                 and tokens[start + 2].text == ":")
    return _attribute_names(tokens, match, start + 3 if using_gnu else start, end, scoped=using_gnu, namespaced=True)


def _attribute_names(tokens: list[Token], match: list[int], k: int, end: int, scoped: bool,
                     namespaced: bool) -> list[tuple[Token, str]]:
    """The refused names of the comma-separated attributes in ``tokens[k:end]``, their arguments skipped;
    ``namespaced``: a name may be ``ns::name`` (only gnu's and clang's are checked)."""
    problems = []
    expect_name = True
    while k < end:
        tok = tokens[k]
        if tok.text in ("(", "[") and match[k] > k:
            k = match[k]
            expect_name = expect_name and namespaced
        elif tok.text == ",":
            expect_name = True
        elif expect_name and tok.kind == IDENT:
            expect_name = False
            name_scoped = scoped
            if namespaced and k + 2 < end and tokens[k + 1].text == "::":
                if tok.text not in _ATTRIBUTE_NAMESPACES:
                    k += 3
                    continue
                tok, name_scoped, k = tokens[k + 2], True, k + 2
            problem = _refused_attribute(tok, name_scoped)
            if problem:
                problems.append(problem)
        elif not namespaced:
            expect_name = False
        k += 1
    return problems

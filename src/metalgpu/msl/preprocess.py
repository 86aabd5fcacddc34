"""The C preprocessor of the MSL front end: includes, macros and conditionals over lexer tokens.

Macro expansion follows Prosser's algorithm: every token carries a *hide set*, the names of the
macros whose expansion produced it, and a name in its own hide set is never expanded again.
Tokens made by an expansion take the position of the outermost macro name in the user's source.
Metal's own headers (``<metal_*>``, ``<simd/simd.h>``) are not read; their names are recorded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

from ..errors import Diagnostic, ShaderCompileError, source_line
from ..limits import MAX_EXPANSION, MAX_INCLUDE_DEPTH, MAX_MACRO_NESTING, MAX_TOKENS
from . import policy, pragmas
from .constexpr import evaluate
from .lexer import CHAR, IDENT, NUMBER, PUNCT, STRING, Token, tokenize
from .literals import concatenate, string_literal

# What Apple's compiler predefines for Metal 3.1 on macOS, less the feature tests of what we do not emulate
# (__HAVE_RAYTRACING__, __HAVE_MESH__ ...): a library then takes its portable path. 3.2 would switch MLX onto
# os_log (<metal_logging>).
PREDEFINED = {"__METAL__": "1", "__METAL_VERSION__": "310", "__METAL_MACOS__": "1", "__HAVE_BFLOAT__": "1",
              "__cplusplus": "201703L"}
# Apple-only, not emulated: Metal 4's tensors and the MetalPerformancePrimitives framework (MLX's *_nax kernels)
FILE_COST = 1000
_DYNAMIC = {"__LINE__", "__FILE__", "__COUNTER__"}
_SPECIAL = _DYNAMIC | {"_Pragma"}
_EMPTY: frozenset[str] = frozenset()
_PLACEMARKER = "placemarker"  # an empty macro argument next to ##, gone once the body is substituted


@dataclass
class PreprocessResult:
    tokens: list[Token]
    system_headers: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)  # what Apple's compiler also only warns about


@dataclass(frozen=True)
class _Macro:
    name: str
    body: tuple[Token, ...]
    params: tuple[str, ...] | None = None  # None: object-like
    variadic: bool = False


def preprocess(text: str, filename: str, include_dirs=(), defines: dict[str, str] | None = None) -> PreprocessResult:
    """Run the preprocessor over ``text``, the contents of ``filename``."""
    pp = _Preprocessor(tuple(include_dirs))
    # Includes resolve inside these folders only: the include folders and the file's own (the working folder for
    # a source given as a string), never through an absolute path or `..` out of them.
    home = os.getcwd() if filename.startswith("<") else os.path.dirname(filename) or "."
    pp.roots = tuple(os.path.realpath(folder) for folder in (*include_dirs, home))
    for name, value in PREDEFINED.items():
        pp.define_line(f"{name} {value}", "<built-in>")
    for name, value in (defines or {}).items():
        pp.define_line(f"{name} {'1' if value is None else str(value)}", "<command line>")
    pp.sources[filename] = text
    pp.run_file(tokenize(text, filename), filename, depth=0)
    tokens = pp.finish()
    policy.check_tokens(tokens, pp.sources)
    return PreprocessResult(tokens, pp.system_headers, pp.sources, pp.warnings)


def _diagnostic(pp: _Preprocessor, tok: Token, message: str, severity: str = "error") -> Diagnostic:
    return Diagnostic(message, tok.pos, severity, source_line(pp.sources, tok.pos))


def _error(pp: _Preprocessor, tok: Token, message: str) -> ShaderCompileError:
    return ShaderCompileError([_diagnostic(pp, tok, message)])


class _Stream:
    """Tokens with hide sets: a stack pushed back by expansions, over a list read in order."""

    def __init__(self, tokens: list[Token], pairs: list | None = None):
        self.tokens, self.index, self.pushed = tokens, 0, []
        if pairs:
            self.push(pairs)

    def next(self):
        if self.pushed:
            return self.pushed.pop()
        if self.index < len(self.tokens):
            self.index += 1
            return self.tokens[self.index - 1], _EMPTY
        return None

    def peek(self):
        if self.pushed:
            return self.pushed[-1]
        if self.index < len(self.tokens):
            return self.tokens[self.index], _EMPTY
        return None

    def push(self, items: list) -> None:
        self.pushed.extend(reversed(items))


class _Preprocessor:
    def __init__(self, include_dirs: tuple[str, ...]):
        self.include_dirs = include_dirs
        self.roots: tuple[str, ...] = ()  # absolute folders an include may resolve in (set by preprocess())
        self.macros: dict[str, _Macro] = {}
        self.out: list[Token] = []
        self.system_headers: list[str] = []
        self.sources: dict[str, str] = {}
        self.pragma_once: set[str] = set()
        self.counter = 0
        self.warnings: list[Diagnostic] = []
        self.tokens_left = MAX_TOKENS.value()  # what the source and its expansions may still produce
        self.max_expansion = MAX_EXPANSION.value()
        self.max_depth = MAX_INCLUDE_DEPTH.value()
        self.expanding = 0  # nested calls of expand()
        self.expansion_base = self.tokens_left  # tokens_left before the current macro of the source expanded

    def spend(self, count: int, where: Token, expanded: bool = True) -> None:
        """Count ``count`` more tokens made at ``where`` against the token budgets: one for the whole source and,
        when ``expanded``, one for each macro of the source with what it expands to (a macro bomb is found before
        it has grown)."""
        self.tokens_left -= count
        if self.tokens_left < 0:
            raise _error(self, where, MAX_TOKENS.exceeded("the shader with its includes and macro expansions"))
        if expanded and self.expansion_base - self.tokens_left > self.max_expansion:
            raise _error(self, where, MAX_EXPANSION.exceeded("this macro's expansion"))

    def warn(self, tok: Token, message: str) -> None:
        self.warnings.append(_diagnostic(self, tok, message, "warning"))

    def finish(self) -> list[Token]:
        """The output tokens after translation phase 6 (adjacent string literals concatenated), less GNU's
        ``__extension__``, which only silences pedantic warnings (NVRTC does not know it)."""
        out = self.out
        special = [i for i, tok in enumerate(out) if tok.kind == STRING or tok.text == "__extension__"]
        tokens: list[Token] = []
        copied = 0  # out[:copied] is done
        for i in special:
            if i < copied:
                continue
            tokens.extend(out[copied:i])
            copied = i + 1
            if out[i].kind != STRING:
                continue  # __extension__
            while copied < len(out) and out[copied].kind == STRING:
                copied += 1
            tokens.append(out[i] if copied == i + 1 else concatenate(out[i:copied], partial(_error, self)))
        tokens.extend(out[copied:])
        return tokens

    # ----- files and directives -------------------------------------------------------------

    def run_file(self, tokens: list[Token], filename: str, depth: int) -> None:
        if tokens:  # a file read counts as at least FILE_COST tokens: a header read a million times is a bomb too
            self.spend(max(len(tokens), FILE_COST), tokens[0], expanded=False)  # a file's text is no macro's
            self.expansion_base = self.tokens_left
        conditions: list[list] = []  # [active, some_branch_taken, seen_else, opening token]
        i, n = 0, len(tokens)
        while i < n:
            tok = tokens[i]
            if tok.at_line_start and tok.text == "#" and tok.kind == PUNCT:
                j = i + 1
                while j < n and not tokens[j].at_line_start:
                    j += 1
                self._directive(tok, tokens[i + 1:j], conditions, filename, depth)
                i = j
                continue
            j = i + 1
            while j < n and not (tokens[j].at_line_start and tokens[j].text == "#" and tokens[j].kind == PUNCT):
                j += 1
            if not conditions or conditions[-1][0]:
                self.out.extend([t for t, _ in self.expand(tokens[i:j])])
            i = j
        if conditions:
            raise _error(self, conditions[-1][3], f"unterminated #{conditions[-1][3].text}")

    def _directive(self, hash_tok, line, conditions, filename, depth) -> None:
        if not line:
            return
        name, args = line[0].text, line[1:]
        active = not conditions or conditions[-1][0]
        if name in ("if", "ifdef", "ifndef"):
            taken = active and self._condition(name, line[0], args)
            conditions.append([taken, taken or not active, False, line[0]])
        elif name in ("elif", "else", "endif"):
            if not conditions:
                raise _error(self, line[0], f"#{name} without #if")
            state = conditions[-1]
            if name != "elif" and args and (len(conditions) == 1 or conditions[-2][0]):
                self.warn(args[0], f"extra tokens at end of #{name} directive")
            if name == "endif":
                conditions.pop()
                return
            if state[2]:
                raise _error(self, line[0], f"#{name} after #else")
            state[2] = name == "else"
            if state[1]:  # a branch was taken, or the whole #if is inside a skipped region
                state[0] = False
            else:
                state[0] = name == "else" or self._condition("if", line[0], args)
                state[1] = state[0]
        elif not active:
            return
        elif name == "define":
            self._define(line[0], args)
        elif name == "undef":
            if not args or args[0].kind != IDENT:
                raise _error(self, line[0], "#undef needs a macro name")
            self.macros.pop(args[0].text, None)
        elif name == "include":
            self._include(line[0], args, filename, depth)
        elif name == "pragma":
            if args and args[0].text == "once":
                self.pragma_once.add(os.path.realpath(filename))
            elif refusal := pragmas.refused_pragma(args):
                raise _error(self, args[0], refusal)
            elif (hint := pragmas.unroll_hint(args)) is not None:
                self.out.append(pragmas.unroll_marker(hash_tok, hint))
        elif name == "error":
            raise _error(self, hash_tok, "#error " + _spell(args))
        elif name == "warning":
            self.warn(hash_tok, "#warning " + _spell(args))
        elif name not in ("line", "ident"):
            raise _error(self, line[0], f"unknown preprocessing directive '#{name}'")

    def _condition(self, name: str, where: Token, args: list[Token]) -> bool:
        if name != "if":
            if not args or args[0].kind != IDENT:
                raise _error(self, where, f"#{name} needs a macro name")
            if len(args) > 1:
                self.warn(args[1], f"extra tokens at end of #{name} directive")
            return (args[0].text in self.macros) == (name == "ifdef")
        if not args:
            raise _error(self, where, "#if with no expression")
        tokens = [t for t, _ in self.expand(self._replace_defined(where, args))]

        def error(tok: Token | None, message: str) -> ShaderCompileError:
            return _error(self, tok or where, message)

        # names left after expansion count as 0 (`true` is 1: this is C++)
        return evaluate(tokens, error, lambda name, tok: 0, "#if expression") != 0

    def _replace_defined(self, where: Token, args: list[Token]) -> list[Token]:
        """Resolve ``defined X`` and ``__has_include(...)`` before macros are expanded."""
        result, i = [], 0
        while i < len(args):
            tok = args[i]
            if tok.text in ("defined", "__has_include") and tok.kind == IDENT:
                end, inner = _operand(args, i + 1)
                if inner is None:
                    raise _error(self, tok, f"malformed '{tok.text}' in #if")
                if tok.text == "defined":
                    value = len(inner) == 1 and (inner[0].text in self.macros or inner[0].text in _DYNAMIC)
                else:
                    value = self._has_include(inner, where.file)
                result.append(Token(NUMBER, "1" if value else "0", tok.file, tok.line, tok.column, True))
                i = end
            else:
                result.append(tok)
                i += 1
        return result

    def _has_include(self, inner: list[Token], current: str) -> bool:
        if inner and inner[0].kind == STRING:
            return self._resolve(inner[0].text[1:-1], current) is not None
        header = _spell(inner, spaces=False)[1:-1]
        if policy.apple_only_framework(header) or policy.host_header(header):
            return False
        return policy.is_metal_header(header) or self._resolve(header, current, angled=True) is not None

    def _include(self, where: Token, args: list[Token], filename: str, depth: int) -> None:
        if args and args[0].kind != STRING and args[0].text != "<":
            args = [t for t, _ in self.expand(args)]
        close = next((k for k, tok in enumerate(args) if tok.text == ">"), -1)
        if args and args[0].kind == STRING and args[0].text.startswith('"'):
            name, extra = args[0].text[1:-1], args[1:]
            if os.path.isabs(name):
                raise _error(self, where, f"#include of an absolute path ('{name}'): name it relative to the "
                                          "shader's folder or to an include folder")
            path = self._resolve(name, filename)
            if path is None:
                raise _error(self, where, f"file not found: '{name}' (searched next to the file and in the "
                                          "include folders, none of which it may leave)")
        elif args and args[0].text == "<" and close > 0:
            name, extra = _spell(args[1:close], spaces=False), args[close + 1:]
            framework = policy.apple_only_framework(name)
            if framework:
                raise _error(self, where, f"<{name}> belongs to {framework}, which is Apple-only: metalgpu does "
                                          "not emulate it")
            if policy.host_header(name):
                raise _error(self, where, f"unknown system header <{name}>: it belongs to the C, C++ or system "
                                          "libraries, and a shader has only Metal's own headers and the user's")
            path = None if policy.is_metal_header(name) else self._resolve(name, filename, angled=True)
            if path is None and not policy.is_metal_header(name):
                raise _error(self, where, f"unknown system header <{name}>: it is not one of Metal's headers, "
                                          "and no include folder has it")
        else:
            raise _error(self, where, '#include expects "file" or <file>')
        if extra:  # `#include <metal_stdlib>;`: Apple's compiler warns and goes on
            self.warn(extra[0], "extra tokens at end of #include directive")
        if path is None:  # one of Metal's own headers: translate.py includes our emulation
            if name not in self.system_headers:
                self.system_headers.append(name)
            return
        if os.path.realpath(path) in self.pragma_once:
            return
        if depth + 1 > self.max_depth:
            raise _error(self, where, f"#include nested more than {self.max_depth} levels deep: "
                                      + MAX_INCLUDE_DEPTH.how_to_raise())
        if not policy.is_shader_source(path):
            suffixes = ", ".join(policy.SHADER_SUFFIXES)
            raise _error(self, where, f"#include of '{name}': only shader sources ({suffixes}) can be included")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as problem:  # its text is never shown
            what = "is not UTF-8 text" if isinstance(problem, UnicodeDecodeError) else "cannot be read"
            raise _error(self, where, f"#include of '{name}': the file {what}") from None
        self.sources[path] = text
        self.run_file(tokenize(text, path), path, depth + 1)

    def _resolve(self, name: str, current: str, angled: bool = False) -> str | None:
        """The file ``#include "name"`` (or ``<name>``, ``angled``: the include folders only) reads."""
        if os.path.isabs(name):
            return None
        if angled:
            folders = list(self.include_dirs)
        elif current.startswith("<"):  # a source given as a string
            folders = [*self.include_dirs, os.getcwd()]
        else:
            folders = [os.path.dirname(current) or ".", *self.include_dirs]
        for folder in folders:
            candidate = os.path.normpath(os.path.join(folder, name))
            if os.path.isfile(candidate) and self._inside_roots(candidate):
                return candidate
        return None

    def _inside_roots(self, path: str) -> bool:
        path = os.path.realpath(path)  # nor through a symbolic link
        return any(os.path.commonpath((root, path)) == root for root in self.roots)

    def define_line(self, text: str, origin: str) -> None:
        tokens = tokenize(text, origin)
        self._define(tokens[0], tokens)

    def _define(self, where: Token, args: list[Token]) -> None:
        if not args or args[0].kind != IDENT:
            raise _error(self, where, "#define needs a macro name")
        name = args[0].text
        if name == "defined" or name in _DYNAMIC:
            raise _error(self, args[0], f"'{name}' cannot be defined")
        if len(args) < 2 or args[1].text != "(" or args[1].space_before:
            body = tuple(args[1:])
            if body and "##" in (body[0].text, body[-1].text):
                raise _error(self, args[0], "'##' cannot be at either end of a macro body")
            self.macros[name] = _Macro(name, body)
            return
        params, variadic, i = [], False, 2
        while i < len(args) and args[i].text != ")":
            tok = args[i]
            if tok.text == "...":
                variadic = True
                params.append("__VA_ARGS__")
            elif tok.kind != IDENT or tok.text in params or variadic:
                raise _error(self, tok, f"invalid parameter list in the definition of macro '{name}'")
            else:
                params.append(tok.text)
            i += 1
            if i < len(args) and args[i].text == ",":
                i += 1
        if i >= len(args):
            raise _error(self, args[1], f"missing ')' in the definition of macro '{name}'")
        body = tuple(args[i + 1:])
        for k, tok in enumerate(body):
            if tok.text == "#" and (k + 1 == len(body) or body[k + 1].text not in params):
                raise _error(self, tok, "'#' is not followed by a macro parameter")
        if body and "##" in (body[0].text, body[-1].text):
            raise _error(self, args[0], "'##' cannot be at either end of a macro body")
        self.macros[name] = _Macro(name, body, tuple(params), variadic)

    # ----- macro expansion ----------------------------------------------------------------

    def expand(self, tokens: list[Token], pairs: list | None = None) -> list:
        """Fully expand plain ``tokens`` or (token, hide set) ``pairs``; return pairs."""
        if self.expanding >= MAX_MACRO_NESTING and (tokens or pairs):  # an argument's macros, each four frames
            raise _error(self, tokens[0] if tokens else pairs[0][0],
                         f"macro calls are nested more than {MAX_MACRO_NESTING} deep in each other's arguments")
        self.expanding += 1
        try:
            return self._expand(tokens, pairs)
        finally:
            self.expanding -= 1

    def _expand(self, tokens: list[Token], pairs: list | None) -> list:
        stream = _Stream(tokens, pairs)
        out: list = []
        macros = self.macros
        pushed = stream.pushed
        while True:
            if not pushed:  # fast path: copy the plain tokens up to the next name to expand
                if self.expanding == 1:  # between two macros of the source
                    self.expansion_base = self.tokens_left
                start = i = stream.index
                while i < len(tokens) and not (tokens[i].kind == IDENT and (
                        tokens[i].text in macros or tokens[i].text in _SPECIAL)):
                    i += 1
                out.extend([(tok, _EMPTY) for tok in tokens[start:i]])
                stream.index = i
            else:  # the same over what an expansion pushed back (a stack: its next token is last)
                k = len(pushed)
                while k and not (pushed[k - 1][0].kind == IDENT and (
                        pushed[k - 1][0].text in macros or pushed[k - 1][0].text in _SPECIAL)):
                    k -= 1
                if k < len(pushed):
                    out.extend(reversed(pushed[k:]))
                    del pushed[k:]
            item = stream.next()
            if item is None:
                break
            tok, hide = item
            if tok.kind != IDENT:
                out.append(item)
            elif tok.text in macros and tok.text not in hide:
                if not self._expand_macro(macros[tok.text], tok, hide, stream):
                    out.append(item)
            elif tok.text in _DYNAMIC:
                out.append((self._dynamic(tok), hide))
            elif tok.text == "_Pragma":
                hint = self._pragma_operator(tok, stream)
                if hint is not None:
                    out.append((pragmas.unroll_marker(tok, hint), _EMPTY))
            else:
                out.append(item)
        return out

    def _expand_macro(self, macro: _Macro, name: Token, hide, stream: _Stream) -> bool:
        if macro.params is None:
            stream.push(self._subst(macro, [], hide | {macro.name}, name))
            return True
        following = stream.peek()
        if following is None or following[0].text != "(":
            return False
        stream.next()
        args, rparen_hide = self._collect_args(macro, name, stream)
        stream.push(self._subst(macro, args, (hide & rparen_hide) | {macro.name}, name))
        return True

    def _collect_args(self, macro: _Macro, name: Token, stream: _Stream):
        args: list[list] = [[]]
        depth = 0
        while True:
            item = stream.next()
            if item is None:
                raise _error(self, name, f"unterminated argument list invoking macro '{macro.name}'")
            text = item[0].text
            if text == ")" and depth == 0:
                break
            if text == "," and depth == 0 and not (macro.variadic and len(args) == len(macro.params)):
                args.append([])
                continue
            depth += (text == "(") - (text == ")")
            args[-1].append(item)
        wanted = len(macro.params)
        if wanted == 0 and args == [[]]:
            args = []
        if macro.variadic and len(args) == wanted - 1:
            args.append([])
        if len(args) != wanted:
            raise _error(self, name, f"macro '{macro.name}' takes {wanted} arguments, {len(args)} given")
        return args, item[1]

    def _subst(self, macro: _Macro, args: list[list], hide, name: Token) -> list:
        """Replace the parameters in the macro's body; mark every result as made at ``name``."""
        params = macro.params or ()
        arg_of = dict(zip(params, args))
        body = macro.body
        result: list = []
        expanded: dict[str, list] = {}
        i = 0
        while i < len(body):
            tok = body[i]
            following = body[i + 1] if i + 1 < len(body) else None
            if tok.text == "#" and params and following is not None and following.text in arg_of:
                result.append((_stringize(arg_of[following.text], name), _EMPTY))
                i += 2
            elif tok.text == "##":
                operand = arg_of[following.text] if following.text in arg_of else [(following, _EMPTY)]
                left = result[-1][0]
                if following.text == "__VA_ARGS__" and left.text == ",":  # GNU `, ## __VA_ARGS__`
                    if operand:
                        result.extend(operand)
                    else:
                        result.pop()
                elif operand and left.kind == _PLACEMARKER:
                    result[-1:] = operand
                elif operand:
                    result[-1] = (self._paste(left, operand[0][0], name), result[-1][1])
                    result.extend(operand[1:])
                i += 2
            elif tok.text == "__VA_OPT__" and macro.variadic and following is not None and following.text == "(":
                end = _matching_paren(body, i + 1)
                if arg_of.get("__VA_ARGS__"):
                    inner = _Macro(macro.name, body[i + 2:end], macro.params, True)
                    result.extend(self._subst(inner, args, _EMPTY, name))
                i = end + 1
            elif tok.text in arg_of:
                if following is not None and following.text == "##":
                    result.extend(arg_of[tok.text] or [(Token(_PLACEMARKER, "", "", 0, 0), _EMPTY)])
                else:
                    if tok.text not in expanded:
                        expanded[tok.text] = self.expand([], arg_of[tok.text])
                    result.extend(expanded[tok.text])
                i += 1
            else:
                result.append((tok, _EMPTY))
                i += 1
        file, line, column = name.file, name.line, name.column
        # a token already at that position (from an argument, moved by an enclosing expansion) is kept
        moved = [(tok if tok.column == column and tok.line == line and tok.file == file and tok.space_before
                  and not tok.at_line_start else Token(tok.kind, tok.text, file, line, column, True, False),
                  own_hide | hide if own_hide else hide)
                 for tok, own_hide in result if tok.kind != _PLACEMARKER]
        self.spend(len(moved), name)
        if moved and name.at_line_start:
            first = moved[0][0]
            moved[0] = (Token(first.kind, first.text, file, line, column, True, True), moved[0][1])
        return moved

    def _paste(self, left: Token, right: Token, name: Token) -> Token:
        pasted = tokenize(left.text + right.text, name.file)
        if len(pasted) != 1:
            raise _error(self, name, f"pasting '{left.text}' and '{right.text}' does not give a valid token")
        return pasted[0]

    def _dynamic(self, tok: Token) -> Token:
        if tok.text == "__LINE__":
            return Token(NUMBER, str(tok.line), tok.file, tok.line, tok.column, tok.space_before, tok.at_line_start)
        if tok.text == "__FILE__":
            return Token(STRING, string_literal(tok.file), tok.file, tok.line, tok.column, tok.space_before,
                         tok.at_line_start)
        self.counter += 1
        return Token(NUMBER, str(self.counter - 1), tok.file, tok.line, tok.column, tok.space_before, tok.at_line_start)

    def _pragma_operator(self, tok: Token, stream: _Stream) -> str | None:
        """Reads ``_Pragma("...")`` at ``tok``; returns its unroll hint (pragmas.unroll_hint), or None."""
        texts = []
        for _ in range(3):
            item = stream.next()
            texts.append(item[0] if item else None)
        if None in texts or texts[0].text != "(" or texts[1].kind != STRING or texts[2].text != ")":
            raise _error(self, tok, "_Pragma takes a parenthesized string literal")
        refusal = pragmas.refused_pragma_operator(texts[1])
        if refusal:
            raise _error(self, tok, refusal)
        return pragmas.unroll_hint(pragmas.pragma_tokens(texts[1]))


def _operand(tokens: list[Token], i: int) -> tuple[int, list[Token] | None]:
    """The operand of ``defined``/``__has_include`` at ``i``: ``X`` or ``( ... )``; returns (end, tokens)."""
    if i < len(tokens) and tokens[i].text != "(":
        return i + 1, [tokens[i]]
    end = _matching_paren(tokens, i) if i < len(tokens) else -1
    return (end + 1, list(tokens[i + 1:end])) if end > 0 else (i, None)


def _matching_paren(tokens, i: int) -> int:
    depth = 0
    for k in range(i, len(tokens)):
        depth += (tokens[k].text == "(") - (tokens[k].text == ")")
        if depth == 0:
            return k
    return -1


def _spell(tokens: list[Token], spaces: bool = True) -> str:
    """Tokens back to text: one space where whitespace separated them."""
    parts = []
    for k, tok in enumerate(tokens):
        if spaces and k and tok.space_before:
            parts.append(" ")
        parts.append(tok.text)
    return "".join(parts)


def _stringize(arg: list, name: Token) -> Token:
    parts = []
    for k, (tok, _) in enumerate(arg):
        if k and tok.space_before:
            parts.append(" ")
        text = tok.text
        if tok.kind in (STRING, CHAR):
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(text)
    return Token(STRING, '"' + "".join(parts) + '"', name.file, name.line, name.column, True)

"""Loads through a pointer cast to a wider type, which may be misaligned.

Quantised weights come in packed blocks whose fields sit at any byte offset (ggml's ``block_q5_0`` is 22 bytes:
its ``qh`` field is 4-byte aligned in every other block), and kernels read such a field whole through a cast:
``*((device const uint32_t *) block->qh)``. Apple's GPUs load from any address; CUDA faults on a misaligned load
and poisons the context. Such a read, a dereference applied to a parenthesised cast to an address-space pointer,
becomes ``mg::load_unaligned((cast))`` (metal/_translator.h): one load where the address is aligned, bytes where
it is not. Writes through such a cast are left as written; so are casts to one-byte types, which cannot be
misaligned.
"""
from __future__ import annotations

from .lexer import IDENT, NUMBER, Token

ADDRESS_SPACES = frozenset({"device", "constant", "threadgroup", "thread"})
_BYTE_TYPES = frozenset({"char", "uchar", "int8_t", "uint8_t", "bool", "signed", "unsigned"})
_WRITES = frozenset({"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--"})
_OPERAND_ENDS = frozenset({")", "]", "++", "--"})  # a `*` after one of these multiplies


def rewrite(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    for i in range(len(tokens) - 3):
        if tokens[i].text != "*" or texts[i] != "*" or not _is_unary(tokens, i):
            continue
        outer, cast = i + 1, i + 2
        if tokens[outer].text != "(" or tokens[cast].text != "(" or tokens[cast + 1].text not in ADDRESS_SPACES:
            continue
        cast_end, outer_end = match[cast], match[outer]
        if cast_end < 0 or outer_end < 0 or tokens[cast_end - 1].text != "*" or cast_end + 1 >= outer_end:
            continue
        pointee = {t.text for t in tokens[cast + 2:cast_end - 1]} - {"const", "volatile"}
        if not pointee or pointee <= _BYTE_TYPES or "*" in pointee:
            continue
        after = tokens[outer_end + 1].text if outer_end + 1 < len(tokens) else ""
        if after in _WRITES or after in (".", "->", "["):  # a write, or the cast's value is not what is read
            continue
        texts[i] = "mg::load_unaligned"


def _is_unary(tokens: list[Token], i: int) -> bool:
    """Whether the `*` at ``i`` dereferences (rather than multiplies): nothing before it ends an operand."""
    if i == 0:
        return True
    before = tokens[i - 1]
    if before.kind == NUMBER or before.text in _OPERAND_ENDS:
        return False
    return before.kind != IDENT or before.text in ("return", "case", "else", "do")

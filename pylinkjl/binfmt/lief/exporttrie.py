"""Mach-O export trie primitives: ULEB128 and a walk over every exported name."""

from __future__ import annotations

from collections.abc import Iterator


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong ULEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def walk_trie(trie: bytes) -> Iterator[tuple[bytes, int]]:
    """(name, flags) of every terminal node of a Mach-O export trie."""
    stack = [(0, b"")]
    visits = 0
    while stack:
        pos, prefix = stack.pop()
        visits += 1
        if visits > len(trie) + 1:
            raise ValueError("the trie has a cycle")
        term, p = uleb(trie, pos)
        if term:
            flags, _ = uleb(trie, p)
            yield prefix, flags
        p += term
        if p >= len(trie):
            raise ValueError(f"node at {pos} runs past the end")
        nchild = trie[p]
        p += 1
        for _c in range(nchild):
            end = trie.index(b"\0", p)
            edge = trie[p:end]
            child, p = uleb(trie, end + 1)
            if child >= len(trie) or child == 0:
                raise ValueError(f"child offset {child} is out of range")
            stack.append((child, prefix + edge))

"""Brace patterns in shard names, expanded by sigrl itself (not by a shell, which may not do it).

    shards/{00000..00099}.tar   -> 100 names, zero padding kept
    data/{train,val}-{0..2}.tar -> 6 names, in the order written
    a/{x,{y,z}}.tar             -> nested lists

A name with no brace pattern expands to itself. An unbalanced or empty pattern is a usage error:
reading one shard where a hundred were meant is the mistake this guards against.
"""

from __future__ import annotations

import re

from sigrl.errors import SigrlError

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def has_braces(pattern: str) -> bool:
    return "{" in pattern or "}" in pattern


def expand_braces(pattern: str) -> list[str]:
    """Every name `pattern` stands for, in order; see the module docstring."""
    start = pattern.find("{")
    if start < 0:
        if "}" in pattern:
            raise SigrlError(f"{pattern}: unbalanced '}}' in the brace pattern")
        return [pattern]
    end = _closing(pattern, start)
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    rest = expand_braces(tail)
    return [head + choice + after for choice in _choices(pattern, body) for after in rest]


def _closing(pattern: str, start: int) -> int:
    depth = 0
    for i in range(start, len(pattern)):
        if pattern[i] == "{":
            depth += 1
        elif pattern[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise SigrlError(f"{pattern}: unbalanced '{{' in the brace pattern")


def _choices(pattern: str, body: str) -> list[str]:
    match = _RANGE.match(body)
    if match:
        first, last = match.group(1), match.group(2)
        lo, hi = int(first), int(last)
        width = len(first) if first.lstrip("-").startswith("0") and len(first) > 1 else 0
        step = 1 if hi >= lo else -1
        return [f"{n:0{width}d}" for n in range(lo, hi + step, step)]
    parts = _split_top(body)
    if len(parts) < 2 and not match:
        raise SigrlError(f"{pattern}: '{{{body}}}' is neither a list {{a,b}} nor a range {{000..099}}")
    return [choice for part in parts for choice in expand_braces(part)]


def _split_top(body: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in body:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current.append(ch)
    parts.append("".join(current))
    return parts

"""Brace patterns in shard names, expanded by sigrl itself (not by a shell, which may not do it).

    shards/{00000..00099}.tar   -> 100 names, zero padding kept
    data/{train,val}-{0..2}.tar -> 6 names, in the order written
    a/{x,{y,z}}.tar             -> nested lists
    s/{0..8..4}.tar             -> s/0.tar, s/4.tar, s/8.tar (a step)

Names come out as the `braceexpand` package (which webdataset uses) gives them, padding included
(`{8..010}` -> 008, 009, 010). A name with no brace pattern expands to itself. An unbalanced or
empty pattern, or a single item in braces (`{x}`), is a usage error: reading one shard where a
hundred were meant is the mistake this guards against.

A pattern stands for at most MAX_NAMES names: `count_names` works the number out from the pattern
(no name is made), and `expand_braces` refuses a larger one before making any.
"""

from __future__ import annotations

import re

from sigrl.errors import SigrlError

MAX_NAMES = 1_000_000  # names one pattern may stand for (a million shards: a few billion images)
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$")


def has_braces(pattern: str) -> bool:
    return "{" in pattern or "}" in pattern


def count_names(pattern: str) -> int:
    """How many names `pattern` stands for, from its ranges and lists alone."""
    start = pattern.find("{")
    if start < 0:
        if "}" in pattern:
            raise SigrlError(f"{pattern}: unbalanced '}}' in the brace pattern")
        return 1
    end = _closing(pattern, start)
    body, tail = pattern[start + 1 : end], pattern[end + 1 :]
    match = _RANGE.match(body)
    if match:
        lo, hi, step = _range(pattern, match)
        here = abs(hi - lo) // step + 1
    else:
        here = sum(count_names(part) for part in _parts(pattern, body))
    return here * count_names(tail)


def expand_braces(pattern: str, limit: int = MAX_NAMES) -> list[str]:
    """Every name `pattern` stands for, in order; a usage error above `limit` names."""
    count = count_names(pattern)
    if count > limit:
        raise SigrlError(f"{pattern}: stands for {count:,} names, more than the {limit:,} one pattern may; "
                         "split it into smaller patterns, or list the shards in a folder")
    return _expand(pattern)


def _expand(pattern: str) -> list[str]:
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    end = _closing(pattern, start)
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    rest = _expand(tail)
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


def _range(pattern: str, match: re.Match) -> tuple[int, int, int]:
    lo, hi = int(match.group(1)), int(match.group(2))
    step = abs(int(match.group(3) or 1))
    if step == 0:
        raise SigrlError(f"{pattern}: a range's step must not be 0")
    return lo, hi, step


def _choices(pattern: str, body: str) -> list[str]:
    match = _RANGE.match(body)
    if match:
        first, last = match.group(1), match.group(2)
        lo, hi, step = _range(pattern, match)
        padded = any(len(s.lstrip("-")) > 1 and s.lstrip("-").startswith("0") for s in (first, last))
        width = max(len(first), len(last)) if padded else 0
        return [f"{n:0{width}d}" for n in range(lo, hi + (1 if hi >= lo else -1), step if hi >= lo else -step)]
    return [choice for part in _parts(pattern, body) for choice in _expand(part)]


def _parts(pattern: str, body: str) -> list[str]:
    parts = _split_top(body)
    if len(parts) < 2:
        raise SigrlError(f"{pattern}: '{{{body}}}' is neither a list {{a,b}} nor a range {{000..099}}")
    return parts


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

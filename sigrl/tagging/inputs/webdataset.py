"""WebDataset tar shards, streamed: members grouped into samples by key, one Member per sample.

A shard (img2dataset, LAION, DataComp) holds samples as consecutive members that share a key:
`000123.jpg`, `000123.json`, `000123.txt`. The key is the member's path up to the first dot of its
file name (`dir/000123.seg.png` has key `dir/000123` and extension `seg.png`), as in the
webdataset library. A sample's image is its first member whose extension is an image extension;
its record path is `SHARD.tar#KEY`.

The shard is read once, front to back, as a stream (tarfile's "r|" mode): nothing is unpacked to
disk, and only the current sample's members are in memory. Samples already recorded (`skip`) are
passed over without reading their data.

Damage gets error records, and everything readable is still tagged:
- a member whose data is cut off (a truncated tar): its sample gets an error record;
- a tar that ends inside a header, or holds a header that is not one: the shard itself gets an
  error record (`SHARD.tar`, no key), since no key can be known for what is lost;
- a sample without an image member, or a member over MAX_MEMBER_BYTES: an error record;
- a key that appears again later in the shard: noted (problems), the later members are ignored,
  so that every record path stays unique.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterator

from sigrl.tagging.inputs.files import IMAGE_EXTENSIONS
from sigrl.tagging.inputs.member import Member

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 256 * 2**20  # larger members are refused unread (bounded memory per sample)
META_EXTENSIONS = ("json", "txt")  # carried into the record with --keep-meta
_IMAGE_EXTS = frozenset(e.lstrip(".") for e in IMAGE_EXTENSIONS)


def split_name(name: str) -> tuple[str, str]:
    """(key, extension) of a member name, the webdataset way: the key ends at the file name's first dot."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    key = f"{folder}/{stem}" if folder else stem
    return key, ext if dot else ""


def member_path(shard: str, key: str) -> str:
    """The record path of a sample: `SHARD#KEY` (stable, unique within a run, readable)."""
    return f"{shard}#{key}"


def _image_ext(ext: str) -> bool:
    return ext.lower() in _IMAGE_EXTS or ext.rpartition(".")[2].lower() in _IMAGE_EXTS


@dataclass
class _Sample:
    key: str
    image: bytes | None = None
    image_ext: str = ""
    meta: dict = field(default_factory=dict)
    error: str | None = None
    exts: list[str] = field(default_factory=list)


def iter_samples(
    shard: str, skip: Callable[[str], bool] = lambda path: False, keep_meta: bool = False,
    problems: list[tuple[str, str]] | None = None,
) -> Iterator[Member]:
    """One Member per sample of the tar `shard`, in shard order; see the module docstring.

    `skip(path)` is asked once per sample key (before its data is read) and once for the shard's
    own error record; skipped ones are not yielded. Notes (repeated keys) go to `problems`.
    """
    try:
        fileobj = open(shard, "rb")
    except OSError as err:
        if not skip(shard):
            yield Member(shard, error=f"unreadable tar shard: {err.strerror or err}")
        return
    with fileobj:
        size = os.fstat(fileobj.fileno()).st_size
        try:
            tar = tarfile.open(fileobj=fileobj, mode="r|")
        except tarfile.TarError as err:
            if not skip(shard):
                yield Member(shard, error=f"not a tar file ({err})" if size else "not a tar file (zero bytes)")
            return
        reported = yield from _samples(tar, shard, skip, keep_meta, problems if problems is not None else [])
        damage = None if reported else _tail_damage(fileobj.fileno(), tar.offset, size)
    if damage and not skip(shard):
        yield Member(shard, error=damage)


def _samples(tar: tarfile.TarFile, shard: str, skip: Callable[[str], bool], keep_meta: bool,
             problems: list[tuple[str, str]]) -> Generator[Member, None, bool]:
    """The samples; returns True when damage was already reported (a cut-off member, a bad header)."""
    seen: set[str] = set()  # keys of this shard: a few dozen bytes per sample
    current: _Sample | None = None
    passing: str | None = None  # key of a sample being passed over (recorded, or a repeat)
    while True:
        try:
            info = tar.next()
        except tarfile.TarError as err:  # a damaged header after the first
            if current is not None:
                yield _member(shard, current)
            if not skip(shard):
                yield Member(shard, error=f"corrupt tar: {err}; the samples before it were read")
            return True
        if info is None:
            break
        if not info.isfile():
            continue
        key, ext = split_name(info.name)
        if key.startswith("./"):
            key = key[2:]
        if current is not None and key == current.key:
            pass
        elif key == passing:
            continue
        else:
            if current is not None:
                yield _member(shard, current)
                current = None
            if key in seen:
                problems.append((member_path(shard, key), "key repeated later in the shard; later members ignored"))
                log.warning("%s: key %r appears again; its later members are ignored", shard, key)
                passing = key
                continue
            seen.add(key)
            if skip(member_path(shard, key)):
                passing = key
                continue
            passing, current = None, _Sample(key)
        current.exts.append(ext)
        wanted = (current.image is None and _image_ext(ext)) or (keep_meta and ext in META_EXTENSIONS)
        if not wanted or current.error:
            continue
        if info.size > MAX_MEMBER_BYTES:
            current.error = f"member {info.name} is {info.size} bytes (over {MAX_MEMBER_BYTES})"
            continue
        try:
            data = tar.extractfile(info).read()
        except (tarfile.TarError, OSError, EOFError) as err:
            current.error = f"truncated tar: member {info.name} is cut off ({err})"
            yield _member(shard, current)
            return True  # nothing after a cut-off member can be read
        if _image_ext(ext) and current.image is None:
            current.image, current.image_ext = data, ext
        else:
            current.meta[ext] = _meta_value(ext, data)
    if current is not None:
        yield _member(shard, current)
    return False


def _member(shard: str, sample: _Sample) -> Member:
    path = member_path(shard, sample.key)
    meta = dict(sample.meta) or None
    if sample.error:
        return Member(path, error=sample.error, meta=meta)
    if sample.image is None:
        has = ", ".join(e or "(no extension)" for e in sample.exts)
        return Member(path, error=f"no image member in this sample (has: {has})", meta=meta)
    return Member(path, data=sample.image, meta=meta)


def _meta_value(ext: str, data: bytes) -> object:
    text = data.decode("utf-8", "replace")
    if ext == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # kept as written: the record says what the sample held
    return text


def _tail_damage(fd: int, end: int, size: int) -> str | None:
    """Why the bytes after the last member are not a proper end of archive, or None.

    tarfile ends a stream quietly at a cut-off or invalid header; a proper end is zero blocks (or
    nothing: some writers omit them).
    """
    if end > size:  # the last member's data was passed over (not read) and is cut off
        return f"truncated tar: the member before byte {end} is cut off at byte {size}"
    tail = os.pread(fd, 512, end) if end < size else b""
    if not tail.strip(b"\0"):
        return None
    if len(tail) < 512:
        return f"truncated tar: ends inside a member header at byte {end}; the samples before it were read"
    return f"corrupt tar: no valid member header at byte {end}; the samples before it were read"


def count_samples(shard: str, is_done: Callable[[str], bool]) -> tuple[int, int]:
    """(samples, samples already recorded) of a shard, from its headers only (seeks over the data).

    For the progress total and the run's counts; a damaged shard counts what can be read.
    """
    total = done = 0
    seen: set[str] = set()  # as iter_samples: a key repeated later counts once
    try:
        with tarfile.open(shard, mode="r:") as tar:
            while True:
                info = tar.next()
                if info is None:
                    break
                if not info.isfile():
                    continue
                key = split_name(info.name)[0]
                key = key[2:] if key.startswith("./") else key
                if key not in seen:
                    seen.add(key)
                    total += 1
                    done += is_done(member_path(shard, key))
                tar.members.clear()  # keep no headers: bounded whatever the shard size
    except (tarfile.TarError, OSError, EOFError):
        pass
    return total, done

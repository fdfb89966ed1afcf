"""WebDataset tar shards (plain, or gzipped: .tar.gz, .tgz), streamed: one Member per sample.

A shard (img2dataset, LAION, DataComp) holds samples as consecutive members that share a key:
`000123.jpg`, `000123.json`, `000123.txt`. Keys, extensions, skipped members and the choice of a
sample's image member follow the webdataset library (sigrl.tagging.inputs.samples). A sample's
record path is `SHARD.tar#KEY`.

The shard is read once, front to back, as a stream (tarfile's "r|*" mode, which also reads gzip):
nothing is unpacked to disk, and only the current sample's members are in memory. Samples already
recorded (`skip`) are passed over without reading their data.

With `keep_meta`, every record of a shard carries `meta`: each member that is not an image (`json`
parsed, other UTF-8 text as text, binary members left out) under its extension, and `__image__`,
the name of the member the record was tagged on.

Damage gets error records, and everything readable is still tagged:
- a member whose data is cut off (a truncated tar): its sample gets an error record;
- a tar that ends inside a header, or holds a header that is not one: the shard itself gets an
  error record (`SHARD.tar`, no key), since no key can be known for what is lost;
- a sample without an image member, with an extension twice, or whose image member is over
  MAX_MEMBER_BYTES: an error record;
- a key that appears again later in the shard (webdataset yields a second sample of that key):
  noted (problems), the later members are ignored, so that every record path stays unique.
"""

from __future__ import annotations

import logging
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterator

from sigrl.tagging.inputs.member import Member
from sigrl.tagging.inputs.samples import IMAGE_ENTRY, ImagePicker, meta_value, split_name

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 256 * 2**20  # larger image members are refused unread (bounded memory per sample)
MAX_META_BYTES = 2**20  # larger members that are not images are left out of meta unread
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def member_path(shard: str, key: str) -> str:
    """The record path of a sample: `SHARD#KEY` (stable, unique within a run, readable)."""
    return f"{shard}#{key}"


@dataclass
class _Sample:
    key: str
    image: bytes | None = None
    image_name: str = ""
    image_rank: int | None = None
    meta: dict = field(default_factory=dict)
    error: str | None = None
    exts: list[str] = field(default_factory=list)


def iter_samples(
    shard: str, skip: Callable[[str], bool] = lambda path: False, keep_meta: bool = False,
    problems: list[tuple[str, str]] | None = None, image_ext: tuple[str, ...] | None = None,
) -> Iterator[Member]:
    """One Member per sample of the tar `shard`, in shard order; see the module docstring.

    `skip(path)` is asked once per sample key (before its data is read) and once for the shard's
    own error record; skipped ones are not yielded. Notes (repeated keys) go to `problems`;
    `image_ext` is the image member's preference list (None: the default).
    """
    meta = {} if keep_meta else None
    try:
        fileobj = open(shard, "rb")
    except OSError as err:
        if not skip(shard):
            yield Member(shard, error=f"unreadable tar shard: {err.strerror or err}", meta=meta)
        return
    with fileobj:
        size = os.fstat(fileobj.fileno()).st_size
        try:
            tar = tarfile.open(fileobj=fileobj, mode="r|*")
        except _READ_ERRORS as err:
            if not skip(shard):
                why = f"not a tar file ({err})" if size else "not a tar file (zero bytes)"
                yield Member(shard, error=why, meta=meta)
            return
        reader = _ShardReader(tar, shard, skip, keep_meta, ImagePicker(image_ext), problems)
        reported = yield from reader.samples()
        compressed = getattr(tar.fileobj, "comptype", "tar") != "tar"  # offsets are not the file's then
        damage = None if reported or compressed else _tail_damage(fileobj.fileno(), tar.offset, size)
    if damage and not skip(shard):
        yield Member(shard, error=damage, meta=meta)


class _ShardReader:
    """Groups the members of one tar stream into samples."""

    def __init__(self, tar: tarfile.TarFile, shard: str, skip: Callable[[str], bool], keep_meta: bool,
                 picker: ImagePicker, problems: list[tuple[str, str]] | None) -> None:
        self.tar, self.shard, self.skip, self.keep_meta, self.picker = tar, shard, skip, keep_meta, picker
        self.problems = problems if problems is not None else []
        self.seen: set[str] = set()  # keys of this shard: a few dozen bytes per sample
        self.current: _Sample | None = None
        self.passing: str | None = None  # key of a sample being passed over (recorded, or a repeat)

    def samples(self) -> Generator[Member, None, bool]:
        """The samples; returns True when damage was already reported (a cut-off member, a bad header)."""
        while True:
            try:
                info = self.tar.next()
            except _READ_ERRORS as err:  # a damaged header after the first, a cut-off gzip stream
                if self.current is not None:
                    yield self._member(self.current)
                if not self.skip(self.shard):
                    yield Member(self.shard, error=f"corrupt tar: {err}; the samples before it were read",
                                 meta={} if self.keep_meta else None)
                return True
            if info is None:
                break
            named = split_name(info.name) if info.isreg() else None
            if named is None:
                continue
            finished = self._switch(named[0])
            if finished is not None:
                yield finished
            if self.current is None:
                continue
            if not self._add(info, named[1]):
                yield self._member(self.current)
                return True  # nothing after a cut-off member can be read
        if self.current is not None:
            yield self._member(self.current)
        return False

    def _switch(self, key: str) -> Member | None:
        """Makes `key`'s sample current (None while it is passed over); returns the sample it ends."""
        if (self.current is not None and key == self.current.key) or key == self.passing:
            return None
        finished = None if self.current is None else self._member(self.current)
        self.current = None
        if key in self.seen:
            self.problems.append((member_path(self.shard, key), "key repeated later in the shard; later members ignored"))
            log.warning("%s: key %r appears again; its later members are ignored", self.shard, key)
            self.passing = key
        else:
            self.seen.add(key)
            self.passing = key if self.skip(member_path(self.shard, key)) else None
            if self.passing is None:
                self.current = _Sample(key)
        return finished

    def _add(self, info: tarfile.TarInfo, ext: str) -> bool:
        """Adds a member to the current sample; False when its data is cut off."""
        sample = self.current
        assert sample is not None
        if ext in sample.exts:
            sample.error = f"member {info.name}: a second .{ext} in this sample (webdataset refuses it)"
        sample.exts.append(ext)
        rank = self.picker.rank(ext)
        better = rank is not None and (sample.image_rank is None or rank < sample.image_rank)
        as_meta = self.keep_meta and not self.picker.is_image(ext) and info.size <= MAX_META_BYTES
        if sample.error or not (better or as_meta):
            return True
        if better and info.size > MAX_MEMBER_BYTES:
            sample.error = f"member {info.name} is {info.size} bytes (over {MAX_MEMBER_BYTES})"
            return True
        try:
            data = self.tar.extractfile(info).read()
        except _READ_ERRORS as err:
            sample.error = f"truncated tar: member {info.name} is cut off ({err})"
            return False
        if better:
            sample.image, sample.image_name, sample.image_rank = data, info.name, rank
        elif (value := meta_value(ext, data)) is not None:
            sample.meta[ext] = value
        return True

    def _member(self, sample: _Sample) -> Member:
        path = member_path(self.shard, sample.key)
        meta = dict(sample.meta) if self.keep_meta else None
        if meta is not None and sample.image_name and not sample.error:
            meta[IMAGE_ENTRY] = sample.image_name
        if sample.error:
            return Member(path, error=sample.error, meta=meta)
        if sample.image is None:
            return Member(path, error=f"no image member in this sample (has: {', '.join(sample.exts)})", meta=meta)
        return Member(path, data=sample.image, meta=meta)


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
        with tarfile.open(shard, mode="r:*") as tar:  # gzip: decompressed, and seeks decompress again
            while True:
                info = tar.next()
                if info is None:
                    break
                named = split_name(info.name) if info.isreg() else None
                if named is None:
                    continue
                key = named[0]
                if key not in seen:
                    seen.add(key)
                    total += 1
                    done += is_done(member_path(shard, key))
                tar.members.clear()  # keep no headers: bounded whatever the shard size
    except _READ_ERRORS:
        pass
    return total, done

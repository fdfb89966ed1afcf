"""What a run reads: loose image files, WebDataset tar shards and Parquet tables, in one plan.

    plan_inputs(inputs)  -> InputPlan(files: Discovery, containers: [Container], patterns)
    plan.describe()      -> "100 shards, 2 tables, 12 images" (printed before the model loads)
    iter_container(c, skip, reading, problems)  -> Member per tar sample / table row (streamed)
    count_container(c, is_done)                 -> (members, already recorded)

Each input is classified once:
- a name with a brace pattern that is not itself a file (`shards/{00000..00099}.tar`) is expanded
  here (sigrl does not rely on a shell); every name must exist, or the run stops before it starts;
- a name with a glob pattern that is not itself a file (`'shards/*.tar'`, quoted so that no shell
  expanded it) is expanded here too, sorted; each match is then classified as below;
- both kinds of pattern stand for at most braces.MAX_NAMES names, refused before any is made;
- a `.tar`, `.tar.gz` or `.tgz` file is a WebDataset shard, a `.parquet` / `.pq` file a table;
- a folder that holds tar shards or Parquet files and no images is read as those containers, in
  sorted order. Where it holds tar shards, Parquet files without an image column are metadata
  beside the shards (img2dataset writes `00000.parquet` next to `00000.tar`): they are skipped,
  and `describe()` names them. Any other folder, image file or path list goes to files.discover.

Record paths: a file's own path; `SHARD.tar#KEY` for a tar sample; `FILE.parquet#ROW` for a table
row; the container's path alone for a failure of the whole container (unreadable, cut off in a
header). The container part is the path as given, normalised, like a file's; the part after `#`
is the sample's key as stored in the tar, or the row number. These paths are stable across runs,
unique within a run, and are what `--resume` matches.
"""

from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from sigrl.errors import SigrlError
from sigrl.tagging.inputs import tables, webdataset
from sigrl.tagging.inputs.braces import MAX_NAMES, expand_braces, has_braces
from sigrl.tagging.inputs.files import Discovery, discover, is_image_name
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.inputs.options import ReadOptions
from sigrl.tagging.records import path_key

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
TABLE_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Container:
    """One tar shard or Parquet file; `kind` is "tar" or "parquet"."""

    path: str
    kind: str


@dataclass
class InputPlan:
    """Loose files (as sources.discover finds them) and containers, in the order they are read."""

    files: Discovery = field(default_factory=Discovery)
    containers: list[Container] = field(default_factory=list)
    patterns: list[tuple[str, int]] = field(default_factory=list)  # (brace or glob pattern, names it gave)
    skipped: list[str] = field(default_factory=list)  # metadata tables beside tar shards, not read

    def describe(self) -> str:
        """One line for the user: what will be read, brace patterns spelled out."""
        shards = sum(c.kind == "tar" for c in self.containers)
        tables_ = len(self.containers) - shards
        parts = []
        if shards:
            parts.append(f"{shards} shard{'s' if shards != 1 else ''}")
        if tables_:
            parts.append(f"{tables_} table{'s' if tables_ != 1 else ''}")
        if self.files.paths or not parts:
            parts.append(f"{len(self.files.paths)} image file{'s' if len(self.files.paths) != 1 else ''}")
        expanded = "; ".join(f"{p} -> {n} names" for p, n in self.patterns)
        line = ", ".join(parts) + (f" ({expanded})" if expanded else "")
        if self.skipped:
            shown = ", ".join(self.skipped[:3]) + (f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else "")
            line += (f"; skipped {len(self.skipped)} Parquet file{'s' if len(self.skipped) != 1 else ''} "
                     f"without an image column beside the tar shards (metadata): {shown}")
        return line


def container_kind(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if lower.endswith(TABLE_SUFFIXES):
        return "parquet"
    return None


def plan_inputs(inputs: Sequence[str | os.PathLike[str]], image_column: str | None = None) -> InputPlan:
    """Classifies and expands `inputs` (see the module docstring); usage errors raise SigrlError.

    `image_column` is checked against every table's schema now, before a model loads.
    """
    if not inputs:
        raise SigrlError("no inputs given: pass image folders, image files, text files listing paths, "
                         "tar shards or Parquet files")
    planner = _Planner(image_column)
    for raw in map(os.fspath, inputs):
        if has_braces(raw) and not os.path.lexists(raw):
            planner.braces(raw)
        elif glob.has_magic(raw) and not os.path.lexists(raw):
            matches = _glob(raw)
            planner.plan.patterns.append((raw, len(matches)))
            for name in matches:
                planner.one(name)
        else:
            planner.one(raw)
    plan = planner.plan
    if planner.loose:
        plan.files = discover(planner.loose)
    if image_column is not None and not any(c.kind == "parquet" for c in plan.containers):
        raise SigrlError("--image-column names the image column of Parquet inputs, and there are none")
    for c in plan.containers:
        if c.kind == "parquet":
            tables.check_table(c.path, image_column)
    return plan


class _Planner:
    """The plan being made: containers without duplicates, loose inputs for files.discover."""

    def __init__(self, image_column: str | None) -> None:
        self.plan, self.image_column = InputPlan(), image_column
        self.loose: list[str] = []
        self.seen: set[str] = set()

    def add(self, path: str, kind: str) -> None:
        key = path_key(path)
        if key not in self.seen:
            self.seen.add(key)
            self.plan.containers.append(Container(os.path.normpath(path), kind))

    def one(self, raw: str) -> None:
        if os.path.isfile(raw) and container_kind(raw):
            self.add(raw, container_kind(raw))
        elif os.path.isdir(raw) and (found := _folder_containers(raw)):
            shards = any(container_kind(n) == "tar" for n in found)
            for name in found:
                if shards and container_kind(name) == "parquet" and not tables.has_image_column(name, self.image_column):
                    self.plan.skipped.append(name)
                else:
                    self.add(name, container_kind(name))
        else:
            self.loose.append(raw)

    def braces(self, raw: str) -> None:
        names = expand_braces(raw)
        missing = [n for n in names if not os.path.isfile(n)]
        if missing:
            raise SigrlError(f"{raw}: {len(missing)} of the {len(names)} names it stands for do not exist "
                             f"(first: {missing[0]}); fix the pattern or the files")
        odd = [n for n in names if container_kind(n) is None]
        if odd:
            raise SigrlError(f"{raw}: brace patterns name tar shards or Parquet files; {odd[0]} is neither")
        self.plan.patterns.append((raw, len(names)))
        for name in names:
            self.add(name, container_kind(name))


def _glob(pattern: str) -> list[str]:
    """The names a glob pattern matches, sorted; a usage error when none, or more than MAX_NAMES."""
    matches = list(itertools.islice(glob.iglob(pattern), MAX_NAMES + 1))
    if len(matches) > MAX_NAMES:
        raise SigrlError(f"{pattern}: matches more than the {MAX_NAMES:,} names one pattern may; "
                         "split it into smaller patterns")
    if not matches:
        raise SigrlError(f"{pattern}: no such file or folder, and as a pattern it matches nothing")
    return sorted(matches)


def _folder_containers(folder: str) -> list[str]:
    """Tar shards and Parquet files under `folder`, sorted; none when it also holds images."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files:
            if is_image_name(name):
                return []
            if container_kind(name):
                found.append(os.path.join(root, name))
    return sorted(found)


def iter_container(
    container: Container, skip: Callable[[str], bool], reading: ReadOptions = ReadOptions(),
    problems: list[tuple[str, str]] | None = None,
) -> Iterator[Member]:
    """The members of one container, streamed, those `skip` says are recorded left out."""
    if container.kind == "tar":
        return webdataset.iter_samples(container.path, skip, reading.keep_meta, problems, reading.image_ext)
    return tables.iter_rows(container.path, reading.image_column, skip)


def count_container(container: Container, is_done: Callable[[str], bool]) -> tuple[int, int]:
    """(members, members already recorded): headers or metadata only, for counts and progress."""
    if container.kind == "tar":
        return webdataset.count_samples(container.path, is_done)
    return tables.count_rows(container.path, is_done)


def iter_members(
    containers: Sequence[Container], skip: Callable[[str], bool], reading: ReadOptions = ReadOptions(),
    problems: list[tuple[str, str]] | None = None,
) -> Iterator[Member]:
    """iter_container over several containers, one after the other."""
    for container in containers:
        yield from iter_container(container, skip, reading, problems)


def is_container_record(path: str | os.PathLike[str], container: Container) -> bool:
    """True when a record path belongs to `container` (one of its members, or the container itself)."""
    key, own = path_key(path), path_key(container.path)
    return key == own or key.startswith(own + "#")


__all__ = ["Container", "InputPlan", "Member", "container_kind", "count_container", "is_container_record",
           "iter_container", "iter_members", "plan_inputs"]

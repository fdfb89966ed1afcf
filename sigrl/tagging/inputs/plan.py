"""What a run reads: loose image files, WebDataset tar shards and Parquet tables, in one plan.

    plan_inputs(inputs)  -> InputPlan(files: Discovery, containers: [Container], patterns)
    plan.describe()      -> "100 shards, 2 tables, 12 images" (printed before the model loads)
    iter_container(c, skip, reading, problems)  -> Member per tar sample / table row (streamed)
    count_container(c, is_done)                 -> (members, already recorded)

Each input is classified once:
- a name with a brace pattern that is not itself a file (`shards/{00000..00099}.tar`) is expanded
  here (sigrl does not rely on a shell); every name must exist, or the run stops before it starts;
- a `.tar` file is a WebDataset shard, a `.parquet` / `.pq` file a table;
- a folder that holds tar shards or Parquet files and no images is read as those containers, in
  sorted order; any other folder, image file or path list goes to sources.discover as before.

Record paths: a file's own path; `SHARD.tar#KEY` for a tar sample; `FILE.parquet#ROW` for a table
row; the container's path alone for a failure of the whole container (unreadable, cut off in a
header). The container part is the path as given, normalised, like a file's; the part after `#`
is the sample's key as stored in the tar, or the row number. These paths are stable across runs,
unique within a run, and are what `--resume` matches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from sigrl.errors import SigrlError
from sigrl.tagging.inputs import tables, webdataset
from sigrl.tagging.inputs.braces import expand_braces, has_braces
from sigrl.tagging.inputs.files import Discovery, discover, is_image_name
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.records import path_key

TAR_SUFFIXES = (".tar",)
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
    patterns: list[tuple[str, int]] = field(default_factory=list)  # (brace pattern, names it gave)

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
        return ", ".join(parts) + (f" ({expanded})" if expanded else "")


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
    plan = InputPlan()
    loose: list[str] = []
    seen: set[str] = set()

    def add(path: str, kind: str) -> None:
        key = path_key(path)
        if key not in seen:
            seen.add(key)
            plan.containers.append(Container(os.path.normpath(path), kind))

    for raw in map(os.fspath, inputs):
        if has_braces(raw) and not os.path.lexists(raw):
            names = expand_braces(raw)
            missing = [n for n in names if not os.path.isfile(n)]
            if missing:
                raise SigrlError(f"{raw}: {len(missing)} of the {len(names)} names it stands for do not exist "
                                 f"(first: {missing[0]}); fix the pattern or the files")
            odd = [n for n in names if container_kind(n) is None]
            if odd:
                raise SigrlError(f"{raw}: brace patterns name tar shards or Parquet files; {odd[0]} is neither")
            plan.patterns.append((raw, len(names)))
            for name in names:
                add(name, container_kind(name))
        elif os.path.isfile(raw) and container_kind(raw):
            add(raw, container_kind(raw))
        elif os.path.isdir(raw) and (found := _folder_containers(raw)):
            for name in found:
                add(name, container_kind(name))
        else:
            loose.append(raw)
    if loose:
        plan.files = discover(loose)
    if image_column is not None and not any(c.kind == "parquet" for c in plan.containers):
        raise SigrlError("--image-column names the image column of Parquet inputs, and there are none")
    for c in plan.containers:
        if c.kind == "parquet":
            tables.check_table(c.path, image_column)
    return plan


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
    container: Container, skip: Callable[[str], bool], keep_meta: bool = False, image_column: str | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> Iterator[Member]:
    """The members of one container, streamed, those `skip` says are recorded left out."""
    if container.kind == "tar":
        return webdataset.iter_samples(container.path, skip, keep_meta, problems)
    return tables.iter_rows(container.path, image_column, skip)


def count_container(container: Container, is_done: Callable[[str], bool]) -> tuple[int, int]:
    """(members, members already recorded): headers or metadata only, for counts and progress."""
    if container.kind == "tar":
        return webdataset.count_samples(container.path, is_done)
    return tables.count_rows(container.path, is_done)


def iter_members(
    containers: Sequence[Container], skip: Callable[[str], bool], keep_meta: bool = False,
    image_column: str | None = None, problems: list[tuple[str, str]] | None = None,
) -> Iterator[Member]:
    """iter_container over several containers, one after the other."""
    for container in containers:
        yield from iter_container(container, skip, keep_meta, image_column, problems)


def is_container_record(path: str | os.PathLike[str], container: Container) -> bool:
    """True when a record path belongs to `container` (one of its members, or the container itself)."""
    key, own = path_key(path), path_key(container.path)
    return key == own or key.startswith(own + "#")


__all__ = ["Container", "InputPlan", "Member", "container_kind", "count_container", "is_container_record",
           "iter_container", "iter_members", "plan_inputs"]

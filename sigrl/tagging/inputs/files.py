"""Finding the images to tag: directories, text files listing paths, or several of these.

Walking uses `os.scandir`, whose entries carry the file type from the directory listing, so a tree
of millions of files costs one `stat` per directory, not one per file. Problems (unreadable
folders, symlink loops) are collected and reported, never fatal: one bad folder must not stop a
night-long job.
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from sigrl.errors import SigrlError
from sigrl.tagging.records import path_key

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
PATH_LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})


@dataclass
class Discovery:
    """What `discover` found: image paths in a fixed order, and the places it could not look."""

    paths: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)


def is_image_name(name: str) -> bool:
    """True when the file name has one of the accepted image extensions (any letter case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def discover(inputs: Sequence[str | os.PathLike[str]]) -> Discovery:
    """Image paths under `inputs`, sorted, without duplicates.

    Each input is a directory (walked recursively, following directory symlinks), an image file,
    or a text file listing paths (one per line, relative to the list file's folder; blank lines
    and `#` comments ignored). Entries of a list are taken as given, whatever their extension, so
    a listed file that is missing or not an image gets an error record later rather than
    vanishing. Broken symlinks with image extensions are kept for the same reason.
    """
    if not inputs:
        raise SigrlError("no inputs given: pass image folders, image files or text files listing paths")
    walker = _Walker()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            walker.walk(str(path))
        elif path.is_file() and is_image_name(path.name):
            walker.add(str(path))
        elif path.is_file() and not is_path_list(path):
            walker.add(str(path))  # an image without a known extension (.heic, none): decoding decides
        elif path.is_file():
            for entry in read_path_list(path):
                if os.path.isdir(entry):
                    walker.walk(entry)
                else:
                    walker.add(entry)
        elif path.is_symlink():
            walker.add(str(path))  # a broken link given by name: record the failure downstream
        else:
            raise SigrlError(f"{path}: no such file or folder; pass image folders, images or path lists")
    if not walker.found and not walker.problems:
        shown = ", ".join(os.fspath(p) for p in inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        raise SigrlError(
            f"no images found in {shown}: looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files; "
            "pass a folder with images, image files, or a text file listing paths"
        )
    found = sorted(walker.found.items())  # sorted by key: deterministic whatever the walk order
    return Discovery(paths=[Path(p) for _, p in found], problems=walker.problems)


def is_path_list(path: Path) -> bool:
    """A file given as input lists paths when it is named so (.txt, .lst, .list) or is text (its
    start decodes as UTF-8 and holds no NUL byte); anything else is taken as an image whose name
    lacks a known extension."""
    if path.suffix.lower() in PATH_LIST_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError:
        return True  # read_path_list reports why it cannot be read
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at 8 KiB is fine
    except UnicodeDecodeError:
        return False
    return True


def read_path_list(path: Path) -> list[str]:
    """The entries of a path-list file, resolved against the list's own folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SigrlError(
            f"{path}: not a UTF-8 text file (byte {err.start}); a path list must be UTF-8 text "
            "with one image path per line"
        ) from None
    except OSError as err:
        raise SigrlError(f"{path}: cannot read path list ({err.strerror})") from None
    base = path.parent
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(os.path.join(base, line) if not os.path.isabs(line) else line)
    if not entries:
        log.warning("%s: path list has no entries", path)
    return entries


class _Walker:
    """Iterative directory walk with loop detection by (device, inode) of the directories."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}  # path_key -> path as it will be reported
        self.problems: list[tuple[Path, str]] = []
        self._seen_dirs: dict[tuple[int, int], str] = {}

    def add(self, path: str, key: str | None = None) -> None:
        self.found.setdefault(key or path_key(path), os.path.normpath(path))

    def walk(self, root: str) -> None:
        ident = self._dir_id(root)
        if ident is None or not self._enter(root, ident, ancestors=()):
            return
        # Folders reached through a symlink wait until every real folder is walked, so when a link
        # points into the tree, the link is what gets skipped, not the real folder. Items carry
        # their ancestors' ids so that a link back up the tree is named a loop.
        stack: list[tuple[str, str, tuple[tuple[int, int], ...]]] = [(root, path_key(root), (ident,))]
        links: list[tuple[str, str, tuple[tuple[int, int], ...]]] = []
        while stack or links:
            if not stack:
                link, link_key, ancestors = links.pop(0)
                link_id = self._dir_id(link)
                if link_id is not None and self._enter(link, link_id, ancestors):
                    stack.append((link, link_key, ancestors + (link_id,)))
                continue
            folder, folder_key, ancestors = stack.pop()
            children = []
            for name, is_link in self._scan(folder, folder_key):
                sub, sub_key = os.path.join(folder, name), os.path.join(folder_key, name)
                if is_link:
                    links.append((sub, sub_key, ancestors))
                    continue
                sub_id = self._dir_id(sub)
                if sub_id is not None and self._enter(sub, sub_id, ancestors):
                    children.append((sub, sub_key, ancestors + (sub_id,)))
            stack.extend(reversed(children))  # pop in name order

    def _scan(self, folder: str, folder_key: str) -> list[tuple[str, bool]]:
        """Adds the images of one folder; returns its subfolders as (name, is a symlink), sorted."""
        subdirs = []
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except PermissionError:
            self.problems.append((Path(folder), "unreadable folder: permission denied"))
            return []
        except OSError as err:
            self.problems.append((Path(folder), f"unreadable folder: {err.strerror or err}"))
            return []
        for entry in entries:
            # File types come from the listing (d_type); only symlinks cost a stat to follow.
            is_link = entry.is_symlink()
            try:
                if entry.is_dir():
                    subdirs.append((entry.name, is_link))
                    continue
            except OSError:
                pass
            if is_image_name(entry.name):
                self.add(entry.path, os.path.join(folder_key, entry.name))
            elif is_link:
                self._check_link(entry.path)
        subdirs.sort()
        return subdirs

    def _check_link(self, path: str) -> None:
        """A link that is neither a folder nor an image: report it only when it loops."""
        try:
            os.stat(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                self.problems.append((Path(path), "symlink loop"))

    def _dir_id(self, folder: str) -> tuple[int, int] | None:
        try:
            st = os.stat(folder)
        except OSError as err:
            reason = "symlink loop" if err.errno == errno.ELOOP else f"unreadable folder: {err.strerror}"
            self.problems.append((Path(folder), reason))
            return None
        return (st.st_dev, st.st_ino)

    def _enter(self, folder: str, ident: tuple[int, int], ancestors: tuple[tuple[int, int], ...]) -> bool:
        if ident in ancestors:
            self.problems.append((Path(folder), "symlink loop: links back to a folder above it; skipped"))
            return False
        first = self._seen_dirs.get(ident)
        if first is not None:
            self.problems.append((Path(folder), f"link to a folder already walked as {first}; skipped"))
            return False
        self._seen_dirs[ident] = folder
        return True

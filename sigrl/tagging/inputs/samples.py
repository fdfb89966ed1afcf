"""How tar members make samples, as the webdataset library reads them (webdataset 1.0.2,
tariterators.py), and which member of a sample is its image.

- Only regular members count. A name without "/" that starts and ends with "__" (`__index__`), or
  any name matching `__[^/]*__($|/)` (`__meta__/x`), is skipped.
- key and extension: the key is the member's folder plus its file name up to the first dot, the
  extension everything after that dot (`dir/multi.depth.png`: key `dir/multi`, extension
  `depth.png`). A file name without a dot (`README`) is skipped. The key is kept exactly (`./0004`
  stays `./0004`); the extension is lower-cased (`A.JPG` -> `jpg`).
- Consecutive members with one key form a sample; the same extension twice in a sample is an error
  (webdataset raises; here the sample gets an error record).

The image member: the first extension of the preference list (`--image-ext`) that the sample has;
with the default list (DEFAULT_IMAGE_EXTS) and none of it present, the first member, in shard
order, whose extension ends in an image extension (`x.seg.png`, `x.JPEG`).
"""

from __future__ import annotations

import json
import re

from sigrl.tagging.inputs.files import IMAGE_EXTENSIONS
from sigrl.tagging.inputs.options import DEFAULT_IMAGE_EXTS

_SKIP_META = re.compile(r"__[^/]*__($|/)")
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_IMAGE_EXTS = frozenset(e.lstrip(".") for e in IMAGE_EXTENSIONS)
IMAGE_ENTRY = "__image__"  # the meta entry naming the member a record was tagged on (--keep-meta)


def split_name(name: str) -> tuple[str, str] | None:
    """(key, lower-cased extension) of a member name, or None for a member webdataset skips."""
    if "/" not in name and name.startswith("__") and name.endswith("__"):
        return None
    if _SKIP_META.match(name):
        return None
    match = _KEY_EXT.match(name)
    if match is None:
        return None
    return match.group(1), match.group(2).lower()


class ImagePicker:
    """Ranks a sample's members as its image: lower is preferred, None is not an image member."""

    def __init__(self, preference: tuple[str, ...] | None = None) -> None:
        self.fallback = preference is None
        self.preference = DEFAULT_IMAGE_EXTS if preference is None else preference
        self._rank = {ext: i for i, ext in enumerate(self.preference)}

    def rank(self, ext: str) -> int | None:
        found = self._rank.get(ext)
        if found is None and self.fallback and is_image_ext(ext):
            return len(self.preference)  # after every listed extension; ties go to the earlier member
        return found

    def is_image(self, ext: str) -> bool:
        """Image members are never meta, whether or not this picker would choose them."""
        return ext in self._rank or is_image_ext(ext)

    def describe(self) -> str:
        return ", ".join(self.preference) + (" or any image extension" if self.fallback else "")


def is_image_ext(ext: str) -> bool:
    return ext in _IMAGE_EXTS or ext.rpartition(".")[2] in _IMAGE_EXTS


def meta_value(ext: str, data: bytes) -> object | None:
    """What --keep-meta keeps of a member: `.json` parsed (its text when it does not parse), other
    text as a string; None (not kept) for data that is not UTF-8 text, except in `.json` and `.txt`
    members, whose undecodable bytes read U+FFFD."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if ext not in ("json", "txt"):
            return None
        text = data.decode("utf-8", "replace")
    if ext == "json" or ext.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # kept as written: the record says what the sample held
    return text

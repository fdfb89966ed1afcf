"""What is read from containers besides the image: ReadOptions (--keep-meta, --image-column, --image-ext).

    ReadOptions(keep_meta=True, image_ext=parse_image_ext("jpg,png"))

`image_ext` is the preference list of a tar sample's image member (see sigrl.tagging.inputs.samples);
None is the default list, DEFAULT_IMAGE_EXTS, with its fallback to any image extension.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigrl.errors import SigrlError

# Common RGB formats first: `multi.jpg` is chosen over `multi.depth.png`, `x.png` over `x.tiff`.
DEFAULT_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")


@dataclass(frozen=True)
class ReadOptions:
    """What is read from containers besides the image."""

    keep_meta: bool = False  # carry a tar sample's other members into its record ("meta")
    image_column: str | None = None  # Parquet: the column of image bytes (None: found by layout)
    image_ext: tuple[str, ...] | None = None  # tar samples: image extensions by preference (None: default)


def parse_image_ext(text: str | None) -> tuple[str, ...] | None:
    """`--image-ext jpg,JPEG,.png` -> ("jpg", "jpeg", "png"): lower-cased as webdataset lower-cases
    extensions, a leading dot dropped; None for None. A usage error for an empty list."""
    if text is None:
        return None
    exts = tuple(dict.fromkeys(part.strip().lstrip(".").lower() for part in text.split(",") if part.strip()))
    if not exts or any(not e or "/" in e for e in exts):
        raise SigrlError(f"--image-ext {text!r}: give member extensions by preference, e.g. jpg,png,depth.png")
    return exts

"""Image file or bytes -> uint8 [S, S, 3] model input, robust to whatever a folder of "images" holds.

One decoder for training, evaluation and tagging (sigrl.data.images, sigrl.tagging and the shard
and table readers all call it), so every caller sees identical pixels. A source is a file path or
the encoded bytes of one image (a tar member, a Parquet cell); both take the same steps.

Steps, in order: open (header only) -> pixel-count check -> JPEG DCT-domain downscale (`draft`,
unless DecodeOptions.exact) -> load -> EXIF orientation -> RGB -> resize the shorter side -> center
crop.

The resize and crop follow torchvision's `Resize(int)` + `CenterCrop` on a PIL image (the
preprocessing open_clip models are trained with), so tags match a plain torchvision pipeline.

Transparent pixels are composited on white (BACKGROUND): transparent regions of icons and
cut-outs are meant to be seen on a page, and white is what viewers show; black would invent dark
borders the model would read as content.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from dataclasses import dataclass, replace
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

# A file path, the encoded bytes of one image (a tar member, a Parquet cell), or pixels already
# decoded (a PIL image, a uint8 array [H, W], [H, W, 3] or [H, W, 4]).
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, np.ndarray]

BACKGROUND = (255, 255, 255)
# Pillow refuses images over 2 x Image.MAX_IMAGE_PIXELS on its own; this default sits just under
# that so our limit (with its clear reason) is the one users meet.
DEFAULT_MAX_PIXELS = 2 * 89_478_485 - 1
DRAFT_OVERSAMPLE = 2  # JPEG DCT-domain downscaling stops at twice the resize size (see _draft)

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}
# Only these decoders run: a file named .jpg that is really EPS would otherwise start Ghostscript.
# Camera JPEGs with extra preview frames come through the JPEG opener as MPO images.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF", "GIF")
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


DECODE_MODES = ("fast", "exact", "checked")


@dataclass(frozen=True)
class DecodeOptions:
    """How files become model inputs, beyond the model's own preprocessing.

    mode "fast" (the default) decodes JPEGs much larger than the model input at 1/2, 1/4 or 1/8
    scale in the DCT domain: several times faster on camera photos (see _draft), with pixels within
    a few levels of a full decode, so scores move slightly and near-tied labels can swap.
    mode "exact" always decodes in full: pixel-identical to PIL + torchvision preprocessing, for
    runs that must reproduce such a pipeline's tags (on 12 MP photos most of its cost is PIL's
    antialiased resize of the full image, not the decode).
    mode "checked" decodes like "fast", then decodes in full and scores again the images whose
    tags hinge on a near-tie (sigrl.tagging.scoring.recheck): the tags of "exact" for a fraction of its
    cost. Only a run with a decision rule can check; elsewhere it decodes like "fast".
    """

    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images (decompression bombs)
    mode: str = "fast"
    # JPEGs decoded and resized on the runner's GPU when it is on CUDA (sigrl.device_decode);
    # never with mode "exact"
    gpu_decode: bool = True

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.mode not in DECODE_MODES:
            raise ValueError(f"mode must be one of {DECODE_MODES}, got {self.mode!r}")

    @classmethod
    def from_options(cls, mode: str = "fast", max_pixels: int | None = None, gpu_decode: bool = True) -> "DecodeOptions":
        """From the CLI's --decode, --max-pixels (None: the default limit) and --gpu-decode values."""
        if mode not in DECODE_MODES:
            raise SigrlError(f"--decode must be one of {', '.join(DECODE_MODES)}, got {mode!r}")
        if max_pixels is not None and max_pixels < 1:
            raise SigrlError(f"--max-pixels must be a positive number of pixels, got {max_pixels}")
        return cls(max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels, mode=mode, gpu_decode=gpu_decode)

    @property
    def exact(self) -> bool:
        """True when every image is decoded in full."""
        return self.mode == "exact"

    @property
    def checked(self) -> bool:
        """True when near-tied images are decoded again in full (see sigrl.tagging.scoring.recheck)."""
        return self.mode == "checked"

    def in_full(self) -> "DecodeOptions":
        """The same options, decoding every image in full."""
        return replace(self, mode="exact")


class DecodeError(Exception):
    """One image could not be turned into a model input; `reason` is short and user-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(path: ImageSource, preprocess: PreprocessConfig, options: DecodeOptions = DecodeOptions()) -> np.ndarray:
    """The model input for one file: uint8 [S, S, 3], S = preprocess.image_size.

    Raises DecodeError for anything wrong with the file. Unless options.exact, JPEGs much larger
    than needed are decoded at reduced scale in the DCT domain, never below twice resize_size on
    the shorter side, which is what makes camera-size photos cheap.
    """
    return decode_noting_scale(path, preprocess, options)[0]


def decode_noting_scale(
    path: ImageSource, preprocess: PreprocessConfig, options: DecodeOptions = DecodeOptions()
) -> tuple[np.ndarray, bool]:
    """decode(), and whether the file was decoded at reduced scale (its pixels then differ
    slightly from a full decode's)."""
    if isinstance(path, (Image.Image, np.ndarray)):
        return from_pixels(path, preprocess), False
    with _open_source(path) as fp:
        try:
            im = Image.open(fp, formats=FORMATS)
        except UnidentifiedImageError:
            raise DecodeError("not an image") from None
        except Image.DecompressionBombError:
            raise DecodeError(f"too many pixels (over Pillow's limit of {2 * Image.MAX_IMAGE_PIXELS})") from None
        except (OSError, SyntaxError, ValueError) as err:
            if "truncated" in str(err).lower():  # cut off inside its header
                raise DecodeError("truncated image (inside its header)") from None
            raise DecodeError(f"corrupt image header: {err}") from None
        with im:
            width, height = im.size
            if width * height > options.max_pixels:
                raise DecodeError(f"too many pixels ({width} x {height} > {options.max_pixels})")
            if width < 1 or height < 1:
                raise DecodeError(f"empty image ({width} x {height})")
            reduced = False
            if not options.exact and isinstance(im, JpegImagePlugin.JpegImageFile):  # JPEG and MPO
                reduced = _draft(im, preprocess.resize_size)
            _load(im)
            _apply_orientation(im, "<bytes>" if isinstance(path, (bytes, bytearray, memoryview)) else path)
            try:
                # Inside the `with`: to_rgb may return `im` itself, which closing would invalidate.
                return resize_crop(to_rgb(im), preprocess), reduced
            except (OSError, ValueError) as err:
                raise DecodeError(f"cannot convert {im.mode} image: {err}") from None


def _open_source(source: ImageSource):
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise DecodeError("zero-byte image data")
        return io.BytesIO(source)
    return _open_file(source)


def _open_file(path: str | os.PathLike[str]):
    try:
        fd = _open_fd(path)
    except FileNotFoundError:
        raise DecodeError("broken symlink" if os.path.islink(path) else "no such file") from None
    except PermissionError:
        raise DecodeError("unreadable: permission denied") from None
    except IsADirectoryError:
        raise DecodeError("is a folder, not an image") from None
    except OSError as err:
        raise DecodeError(f"unreadable: {err.strerror or err}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise DecodeError("is a folder, not an image" if stat.S_ISDIR(st.st_mode) else "not a regular file")
    if st.st_size == 0:
        os.close(fd)
        raise DecodeError("zero-byte file")
    return os.fdopen(fd, "rb")


def _open_fd(path: str | os.PathLike[str]) -> int:
    # O_NONBLOCK: a named pipe called "x.jpg" must fail the fstat check in _open_file, not block
    # a decode worker forever (regular files ignore the flag).
    return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))


def _draft(im: ImageFile.ImageFile, resize_size: int) -> bool:
    # Ask for the smallest DCT scale whose result keeps the shorter side >= DRAFT_OVERSAMPLE x
    # resize_size, so the final bicubic resize still downsamples by 2x or more and the pixels stay
    # within a few levels of a full decode (tags then match a plain PIL pipeline's except at
    # near-ties, which --decode checked decodes again in full). Measured on
    # 4000x3000 photos to 224 px: 1/4 scale, ~29 ms vs ~119 ms for a full decode, mean |diff| 0.2
    # levels; drafting right down to resize_size (1/8) saved 17 ms more but moved pixels by up to
    # 12 levels, and on 640x480 a 1/2-scale draft moved them by up to 50 while saving 2 ms.
    width, height = im.size
    scale = DRAFT_OVERSAMPLE * resize_size / min(width, height)
    if scale >= 0.5:
        return False
    im.draft("RGB", (max(1, int(width * scale + 1)), max(1, int(height * scale + 1))))
    return im.size != (width, height)


def _load(im: Image.Image) -> None:
    try:
        im.load()
    except OSError as err:
        message = str(err)
        if "truncated" in message or "broken data stream" in message:
            raise DecodeError("truncated image") from None
        raise DecodeError(f"corrupt image: {message}") from None
    except (SyntaxError, ValueError, EOFError) as err:
        raise DecodeError(f"corrupt image: {err}") from None


def _apply_orientation(im: Image.Image, path: str | os.PathLike[str]) -> None:
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as err:  # malformed EXIF: the pixels are still good, use them as stored
        log.debug("%s: ignoring unreadable EXIF orientation (%s)", path, err)


def from_pixels(pixels: Image.Image | np.ndarray, preprocess: PreprocessConfig) -> np.ndarray:
    """The model input for pixels already decoded: the same colour handling, resize and crop."""
    if isinstance(pixels, np.ndarray):
        if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)):
            raise DecodeError(f"an array image must be uint8 [H, W], [H, W, 3] or [H, W, 4], got {pixels.dtype} {list(pixels.shape)}")
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        pixels = Image.fromarray(np.ascontiguousarray(pixels))
    if pixels.width < 1 or pixels.height < 1:
        raise DecodeError(f"empty image ({pixels.width} x {pixels.height})")
    try:
        return resize_crop(to_rgb(pixels), preprocess)
    except (OSError, ValueError) as err:
        raise DecodeError(f"cannot convert {pixels.mode} image: {err}") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """An RGB image whatever the mode: alpha composited on BACKGROUND, 16-bit scaled to 8-bit."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        page = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(page, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES:
        # Pillow's own I;16 -> RGB conversion clips at 255 instead of scaling: a 16-bit scan
        # would come out almost white. Scale the full 16-bit range to 8 bits, rounding.
        values = np.asarray(im).astype(np.float32)  # [H, W]
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    # L, 1, CMYK (Pillow undoes Adobe's inverted CMYK while decoding), YCbCr, LAB, HSV, P.
    return im.convert("RGB")


def resize_crop(im: Image.Image, preprocess: PreprocessConfig) -> np.ndarray:
    """Shorter side to resize_size, then the central image_size square: uint8 [S, S, 3]."""
    width, height = im.size
    size = preprocess.resize_size
    # torchvision's rule: the shorter side becomes `size`, the longer is truncated, not rounded.
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    if new != (width, height):
        im = im.resize(new, _RESAMPLE[preprocess.interpolation])
    crop = preprocess.image_size
    left = int(round((new[0] - crop) / 2.0))
    top = int(round((new[1] - crop) / 2.0))
    if (left, top, new[0], new[1]) != (0, 0, crop, crop):
        im = im.crop((left, top, left + crop, top + crop))
    out = np.asarray(im, dtype=np.uint8)  # [S, S, 3]
    assert out.shape == (crop, crop, 3), out.shape
    return out

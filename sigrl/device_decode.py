"""JPEG bytes -> uint8 [b, S, S, 3] model input on the runner's device (nvJPEG on a CUDA GPU).

The GPU counterpart of sigrl.decode, for runs whose runner is on CUDA: CPU threads read the bytes
and parse the header (triage), the device decodes the JPEGs of a batch in as few calls as its
memory budget allows, and resizes and crops them there with the model's own preprocessing
(antialiased, like Pillow's resize; images of one size in one call).
Everything the device path does not take goes through sigrl.decode for that image only:

- not a JPEG, a CMYK/YCCK JPEG, or a header Pillow cannot read (the CPU decoder then gives the
  error record of a bad file);
- an image the device decoder rejects (odd sampling, a corrupt scan): the batch is decoded again
  one image at a time, and only the images that fail again go to the CPU decoder.

EXIF orientation is read from the header on the CPU and applied on the device with flips and
transposes, so both paths give upright pixels. The device path always decodes in full (no
DCT-domain draft), so its pixels are close to `--decode exact`'s; they are not identical (the
JPEG upsampling and the float resize differ from libjpeg-turbo's and Pillow's fixed-point
arithmetic by a level or two), which is why `--decode exact` keeps the CPU path.

`decode_jpegs` is the one call that needs the device; the tests run this module on the CPU with
torchvision's CPU decoder in its place, and with a failing stand-in for the fallback. torchvision
0.29 marks its image decoders deprecated in favour of TorchCodec; moving means changing that one
function.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, JpegImagePlugin

from sigrl.config import PreprocessConfig
from sigrl.decode import DecodeOptions

log = logging.getLogger(__name__)

# Modes the device decoder turns into RGB itself; CMYK and YCCK JPEGs go to Pillow, which undoes
# Adobe's inverted CMYK (nvJPEG does not).
DEVICE_MODES = frozenset({"RGB", "L"})
# The float copies of one resize call stay near this many bytes (12 MP: 7 images, VGA: 270).
RESIZE_BUDGET = 1 << 30
# The full-size decoded images of one decode call stay near this many bytes (12 MP: 59 images), so a
# batch of 256 camera photos does not hold 9 GB of decoded pixels on the device at once.
DECODE_BUDGET = 2 << 30
_INTERPOLATION = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest-exact"}


def decode_jpegs(datas: list[torch.Tensor], device: str) -> list[torch.Tensor]:
    """uint8 [3, H, W] images on `device` for the JPEG byte tensors `datas` (uint8 [n] on the CPU).

    Raises if any image fails: the caller then retries one image at a time.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
    return list(out)


@dataclass(frozen=True)
class Triage:
    """What the header says: whether the device may decode the image, and its EXIF orientation."""

    on_device: bool
    orientation: int = 1  # EXIF tag 0x0112; 1 = upright
    pixels: int = 0  # width x height
    why: str = ""  # why not on the device (for the debug log)


def triage(data: bytes, options: DecodeOptions) -> Triage:
    """Reads only the header (no pixels). Anything not plainly a JPEG the device decodes goes to
    the CPU decoder, which also gives bad files their error records."""
    if len(data) < 4 or data[:3] != b"\xff\xd8\xff":
        return Triage(False, why="not a JPEG")
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as im:
            if not isinstance(im, JpegImagePlugin.JpegImageFile):
                return Triage(False, why="not a JPEG")
            if im.mode not in DEVICE_MODES:
                return Triage(False, why=f"{im.mode} JPEG")
            width, height = im.size
            if width < 1 or height < 1 or width * height > options.max_pixels:
                return Triage(False, why="size")  # the CPU decoder says what is wrong with it
            orientation = _orientation(im)
    except Exception:  # any header trouble: the CPU decoder gives the reason
        return Triage(False, why="unreadable header")
    return Triage(True, orientation, width * height)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF: use the pixels as stored, as sigrl.decode does
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """[C, H, W] turned upright from EXIF `orientation`, as PIL.ImageOps.exif_transpose does."""
    if orientation == 2:  # mirrored
        return image.flip(-1)
    if orientation == 3:  # rotated 180
        return image.flip(-1).flip(-2)
    if orientation == 4:  # mirrored vertically
        return image.flip(-2)
    if orientation == 5:  # transposed
        return image.transpose(-1, -2)
    if orientation == 6:  # stored rotated 90 counter-clockwise: turn it clockwise
        return torch.rot90(image, k=-1, dims=(-2, -1))
    if orientation == 7:  # transversed
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return torch.rot90(image, k=1, dims=(-2, -1))
    return image


def resize_crop_tensor(image: torch.Tensor, preprocess: PreprocessConfig) -> torch.Tensor:
    """uint8 [3, H, W] -> uint8 [S, S, 3] (or [n, 3, H, W] -> [n, S, S, 3], images of one size):
    sigrl.decode.resize_crop's steps on a tensor.

    The shorter side becomes resize_size (the longer truncated, torchvision's rule), antialiased
    like Pillow's resize, then the central image_size square.
    """
    batched = image.ndim == 4
    x = image if batched else image.unsqueeze(0)  # [n, 3, H, W]
    height, width = x.shape[-2:]
    size = preprocess.resize_size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) != (width, height):
        mode = _INTERPOLATION[preprocess.interpolation]
        if mode == "nearest-exact":
            x = F.interpolate(x.float(), size=(new_h, new_w), mode=mode)
        else:
            x = F.interpolate(x.float(), size=(new_h, new_w), mode=mode, antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)  # [n, 3, h, w]
    crop = preprocess.image_size
    left = int(round((new_w - crop) / 2.0))
    top = int(round((new_h - crop) / 2.0))
    out = x[:, :, top : top + crop, left : left + crop].permute(0, 2, 3, 1)  # [n, S, S, 3]
    assert out.shape[1:] == (crop, crop, 3), out.shape
    return out if batched else out[0]


def _is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def _per_call(shape: tuple[int, ...]) -> int:
    return max(1, RESIZE_BUDGET // (4 * shape[0] * shape[1] * shape[2]))


class DeviceDecoder:
    """Decodes a batch of JPEG bytes on `device`; see the module docstring.

    On CUDA every batch is built on a side stream of its own (`batch_stream`), never on the
    stream that scores: torchvision's nvJPEG decode allocates its outputs on the current stream
    and the hardware decoder writes them without waiting for that stream's queued kernels, so on
    the scoring stream it could be handed, and overwrite, memory the model is still reading
    (pytorch/vision#9606). The side stream is drained at the end of each batch, so nothing of its
    own is in flight either when the next decode starts.
    """

    def __init__(self, preprocess: PreprocessConfig, device: str) -> None:
        self.preprocess, self.device = preprocess, device
        self.device_images = 0  # images decoded on the device so far
        self.retried_batches = 0  # batches the device decoder rejected as a whole
        # Set when the device decoder failed on every image of a batch before it ever worked (no
        # nvJPEG in this torchvision build, say): every image then goes to the CPU decoder at once
        # instead of paying a failed batch call and one failed call per image each time.
        self.disabled: str | None = None
        self._side = torch.cuda.Stream(device=device) if _is_cuda(device) else None
        # The stream that will read the batches: the consumer's current stream when this is made.
        self._consumer = torch.cuda.current_stream(device) if _is_cuda(device) else None

    @contextlib.contextmanager
    def batch_stream(self) -> Iterator[None]:
        """Device work inside runs on the side stream (on CUDA; elsewhere nothing changes)."""
        if self._side is None:
            yield
            return
        with torch.cuda.stream(self._side):
            yield

    def hand_over(self, images: torch.Tensor) -> torch.Tensor:
        """Makes the batch `images` (built inside batch_stream) safe to read on the consumer's stream:
        waits for the side stream, and keeps its memory from being reused until the consumer's
        work queued before it is freed has run."""
        if self._side is not None:
            assert self._consumer is not None
            self._side.synchronize()
            if images.numel():  # a batch whose every image failed holds no device memory
                images.record_stream(self._consumer)
        return images

    def decode(self, datas: Sequence[bytes], orientations: Sequence[int],
               pixels: Sequence[int] | None = None) -> list[torch.Tensor | None]:
        """Per image: uint8 [S, S, 3] on the device, or None where the device decoder failed
        (the caller decodes that one on the CPU). `pixels` (width x height per image, from
        triage) splits the batch into decode calls of about DECODE_BUDGET bytes of pixels."""
        out: list[torch.Tensor | None] = []
        start = 0
        while start < len(datas):
            end, total = start + 1, 3 * (pixels[start] if pixels else 0)
            while end < len(datas) and (pixels is None or total + 3 * pixels[end] <= DECODE_BUDGET):
                total += 3 * pixels[end] if pixels else 0
                end += 1
            out += self._decode_call(datas[start:end], orientations[start:end])
            start = end
        return out

    def _decode_call(self, datas: Sequence[bytes], orientations: Sequence[int]) -> list[torch.Tensor | None]:
        if not datas or self.disabled:
            return [None] * len(datas)
        tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]  # [n] each
        try:
            decoded: list[torch.Tensor | None] = list(decode_jpegs(tensors, self.device))
        except Exception as err:  # one bad image fails the batched call: retry one at a time
            self.retried_batches += 1
            log.debug("device JPEG decode failed for a batch of %d (%s); decoding one at a time", len(datas), err)
            decoded = [self._one(t) for t in tensors]
            if self.device_images == 0 and len(datas) > 1 and all(d is None for d in decoded):
                self.disabled = f"{type(err).__name__}: {err}"
                log.warning("the %s JPEG decoder failed on every image of a batch (%s); decoding on the CPU from now on",
                            self.device, self.disabled)
        upright = [None if image is None else orient(image, o) for image, o in zip(decoded, orientations)]
        # Images of one size are resized in one call (a folder of camera or VGA photos is mostly one
        # or two sizes); a failure there sends that group to the CPU decoder.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(upright):
            if image is not None:
                groups.setdefault(tuple(image.shape), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(datas)
        chunks = [rows[i : i + _per_call(shape)] for shape, rows in groups.items() for i in range(0, len(rows), _per_call(shape))]
        for rows in chunks:
            try:
                stack = upright[rows[0]].unsqueeze(0) if len(rows) == 1 else torch.stack([upright[i] for i in rows])
                resized = resize_crop_tensor(stack, self.preprocess)  # [n, S, S, 3]
            except Exception as err:  # e.g. out of device memory on huge images
                log.debug("device resize failed for %d images (%s); the CPU decoder takes them", len(rows), err)
                continue
            for j, i in enumerate(rows):
                out[i] = resized[j]
            self.device_images += len(rows)
        return out

    def _one(self, data: torch.Tensor) -> torch.Tensor | None:
        try:
            return decode_jpegs([data], self.device)[0]
        except Exception as err:
            log.debug("device JPEG decode failed (%s); the CPU decoder takes the image", err)
            return None


def upload(images: np.ndarray, device: str) -> torch.Tensor:
    """uint8 [b, S, S, 3] from the CPU decoder onto the device."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device)

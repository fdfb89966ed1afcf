"""iter_batches' counterpart for a runner on CUDA: batches whose images are already on the device.

    CPU threads: read bytes, parse the header (sigrl.device_decode.triage); what the device does
                 not take is decoded here by sigrl.decode, as in pipeline.iter_batches
    one device thread: decode the batch's JPEGs on the device, resize and crop them there; images
                 the device decoder rejects go back to the CPU threads one by one

Batches come out in input order, with the same paths, failures, `reduced` and `sources` as
pipeline.iter_batches; only `images` differs: a uint8 torch tensor [b, S, S, 3] on the device,
which the torch runner takes as it is. At most `queue_depth` batches are in flight.

The device thread builds each batch on a CUDA side stream of its own (see
sigrl.device_decode.DeviceDecoder for why it must not share the scoring stream), so decoding and
resizing batch k+1 can overlap the scoring of batch k on the GPU as well as on the host.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from sigrl.config import PreprocessConfig
from sigrl.decode import DecodeError, DecodeOptions, _open_file, decode_noting_scale
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.scoring.pipeline import Batch, Input, check_batching, chunks, decode_or_reason, make_batch, read_ahead

log = logging.getLogger(__name__)


@dataclass
class _Read:
    """One input after the CPU thread: JPEG bytes for the device, a CPU-decoded image, or a reason."""

    data: bytes | None = None  # for the device
    orientation: int = 1
    pixels: int = 0
    image: np.ndarray | None = None  # [S, S, 3] decoded on the CPU
    reduced: bool = False
    reason: str | None = None


def read_for_device(source: Path | Member, preprocess: PreprocessConfig, decoding: DecodeOptions) -> _Read:
    """Reads one input; decodes it on the CPU unless the device can take it. Never raises."""
    from sigrl.device_decode import triage

    try:
        if isinstance(source, Member):
            if source.error is not None or source.data is None:
                return _Read(reason=source.error or "no image data")
            if not isinstance(source.data, (bytes, bytearray, memoryview)):  # pixels already decoded
                return _cpu(source, preprocess, decoding)
            data = bytes(source.data)
            if not data:
                return _Read(reason="zero-byte image data")
        else:
            with _open_file(source) as fp:
                data = fp.read()
        seen = triage(data, decoding)
        if seen.on_device:
            return _Read(data=data, orientation=seen.orientation, pixels=seen.pixels)
        return _cpu_bytes(data, preprocess, decoding)
    except DecodeError as err:
        return _Read(reason=err.reason)
    except Exception as err:  # a bug or MemoryError on one file must not stop the run
        log.warning("unexpected error reading %s", source, exc_info=True)
        return _Read(reason=f"unexpected error: {type(err).__name__}: {err}")


def _cpu(source: Path | Member, preprocess: PreprocessConfig, decoding: DecodeOptions) -> _Read:
    result = decode_or_reason(source, preprocess, decoding)
    return _Read(reason=result) if isinstance(result, str) else _Read(image=result[0], reduced=result[1])


def _cpu_bytes(data: bytes, preprocess: PreprocessConfig, decoding: DecodeOptions) -> _Read:
    try:
        image, reduced = decode_noting_scale(data, preprocess, decoding)
    except DecodeError as err:
        return _Read(reason=err.reason)
    except Exception as err:
        log.warning("unexpected error decoding an image", exc_info=True)
        return _Read(reason=f"unexpected error: {type(err).__name__}: {err}")
    return _Read(image=image, reduced=reduced)


def iter_device_batches(
    paths: Iterable[Input],
    preprocess: PreprocessConfig,
    device: str,
    batch_size: int = 8,
    workers: int = 2,
    decoding: DecodeOptions = DecodeOptions(),
    queue_depth: int = 4,
    stats: dict[str, int] | None = None,
) -> Iterator[Batch]:
    """Batches of `paths` in order, images on `device`; every input appears once, as an image or a
    failure. `device` is "cuda" in use; the tests pass "cpu" (torchvision's CPU decoder).
    `stats["decoded"]`, when given, counts the images decoded on the device so far."""
    check_batching(batch_size, queue_depth,
                   f"the device pipeline needs >= 1 reading thread, got {workers}" if workers < 1 else None)
    return _batches(iter(paths), preprocess, device, batch_size, workers, decoding, queue_depth,
                    {} if stats is None else stats)


@dataclass
class _Pending:
    sources: list[Path | Member]
    reads: list[Future]  # per input: a _Read
    batch: Future | None = None  # the device stage's Batch


def _batches(source: Iterator[Input], preprocess: PreprocessConfig, device: str, batch_size: int, workers: int,
             decoding: DecodeOptions, queue_depth: int, stats: dict[str, int]) -> Iterator[Batch]:
    from sigrl.device_decode import DeviceDecoder

    decoder = DeviceDecoder(preprocess, device)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sigrl-read")
    stage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sigrl-device-decode")

    def start(chunk: list[Path | Member]) -> _Pending:
        item = _Pending(chunk, [pool.submit(read_for_device, p, preprocess, decoding) for p in chunk])
        item.batch = stage.submit(_device_stage, item, decoder, pool, preprocess, decoding)
        return item

    def finish(item: _Pending) -> Batch:
        batch = item.batch.result()
        stats["decoded"] = decoder.device_images
        return batch

    def cancel(item: _Pending) -> None:
        for r in item.reads:
            r.cancel()
        if item.batch is not None:
            item.batch.cancel()

    try:
        yield from read_ahead(chunks(source, batch_size), queue_depth, start, finish, cancel)
    finally:
        stage.shutdown(wait=True, cancel_futures=True)
        pool.shutdown(wait=True, cancel_futures=True)


def _device_stage(item: _Pending, decoder: Any, pool: ThreadPoolExecutor, preprocess: PreprocessConfig,
                  decoding: DecodeOptions) -> Batch:
    import torch

    from sigrl.device_decode import upload

    reads: list[_Read] = [f.result() for f in item.reads]
    wanted = [i for i, r in enumerate(reads) if r.data is not None]
    with decoder.batch_stream():
        on_device = dict(zip(wanted, decoder.decode([reads[i].data for i in wanted], [reads[i].orientation for i in wanted],
                                                    [reads[i].pixels for i in wanted])))
        # What the device decoder rejected goes to the CPU decoder, in the reading threads.
        redo = {i: pool.submit(_cpu_bytes, reads[i].data, preprocess, decoding) for i, t in on_device.items() if t is None}
        for i, future in redo.items():
            reads[i] = future.result()
        ok = [i for i, r in enumerate(reads) if r.reason is None]
        size = preprocess.image_size
        images = torch.empty((len(ok), size, size, 3), dtype=torch.uint8, device=decoder.device)  # [b, S, S, 3]
        cpu_rows = [row for row, i in enumerate(ok) if on_device.get(i) is None]
        device_rows = [row for row, i in enumerate(ok) if on_device.get(i) is not None]
        if device_rows:  # one gather and one scatter, not a copy kernel per image
            images[device_rows] = torch.stack([on_device[ok[row]] for row in device_rows])
        if cpu_rows:
            images[cpu_rows] = upload(np.stack([reads[ok[row]].image for row in cpu_rows]), decoder.device)
        del on_device  # the per-image tensors are freed on the side stream, where they were used
    return _assemble(item.sources, reads, ok, decoder.hand_over(images))


def _assemble(sources: list[Path | Member], reads: list[_Read], ok: list[int], images: Any) -> Batch:
    failures = [(i, r.reason) for i, r in enumerate(reads) if r.reason is not None]
    return make_batch(sources, ok, failures, images, np.array([reads[i].reduced for i in ok], dtype=bool))

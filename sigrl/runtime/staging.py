"""Host-to-device copies of image batches through one reused page-locked (pinned) buffer.

From ordinary (pageable) memory, CUDA first copies a batch into a pinned bounce buffer of its own
and the copy blocks the host whatever `non_blocking` says; from pinned memory it is a DMA transfer
queued on the stream, so the host goes on launching the model's kernels while the bytes move.
The buffer is reused for every batch (pinning is slow: allocate once) and grown when a larger
batch comes; before it is overwritten, the copy out of it is waited for (a CUDA event).

Used by the torch runner on CUDA for uint8 batches decoded on the CPU; batches decoded on the GPU
(sigrl.tagging.scoring.device_pipeline) are on the device already and never come here.
"""

from __future__ import annotations

import numpy as np
import torch


class HostStaging:
    """upload(images) -> the batch on `device`; `pin` (default: on CUDA) page-locks the buffer.

    With pin False the buffer is ordinary memory (the tests run it on the CPU); on the CPU the
    returned tensor is the buffer itself, valid until the next upload.
    """

    def __init__(self, device: str, pin: bool | None = None) -> None:
        self.device = device
        self.pin = (device == "cuda") if pin is None else pin
        self._buffer: torch.Tensor | None = None  # uint8 [capacity, S, S, 3]
        self._copied: torch.cuda.Event | None = None  # the last copy out of the buffer
        self.allocations = 0

    def upload(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [b, S, S, 3] on the device, copied through the staging buffer."""
        if self._copied is not None:
            self._copied.synchronize()  # the buffer's previous batch has left it
            self._copied = None
        n = images.shape[0]
        if self._buffer is None or self._buffer.shape[0] < n or tuple(self._buffer.shape[1:]) != images.shape[1:]:
            self._buffer = None  # release the old pinned block before taking a larger one
            self._buffer = torch.empty(images.shape, dtype=torch.uint8, pin_memory=self.pin)
            self.allocations += 1
        host = self._buffer[:n]
        np.copyto(host.numpy(), images, casting="no")  # [b, S, S, 3]
        x = host.to(self.device, non_blocking=self.pin)
        if self.pin and self.device == "cuda":
            self._copied = torch.cuda.Event()
            self._copied.record()
        return x

    def close(self) -> None:
        if self._copied is not None:
            self._copied.synchronize()
        self._buffer, self._copied = None, None

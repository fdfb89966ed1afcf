"""Resumable training state as safetensors + JSON metadata (nothing is unpickled on resume).

The state file holds the trainable weights' optimizer moments, the extra trainable modules (the
SPML logit scale), the position in the run (epoch, step, best validation figure) and the random
number generator states of torch, numpy and Python. The model weights themselves are in the run's
`last.safetensors`, a normal model checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sigrl.checkpoint import load_tensors, read_metadata, save_tensors
from sigrl.errors import SigrlError

STATE_FORMAT = "sigrl-train-state"


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_state(path: Path, optimizer: torch.optim.Optimizer, extra: torch.nn.Module | None,
               progress: dict[str, Any]) -> None:
    tensors, rng_meta = _rng_state()
    opt = optimizer.state_dict()
    scalars = []
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            value = torch.as_tensor(value)
            key = f"opt.{idx}.{name}"
            if value.dim() == 0:
                scalars.append(key)
                value = value.reshape(1)
            tensors[key] = value
    if extra is not None:
        tensors.update({f"extra.{k}": v.reshape(1) if v.dim() == 0 else v for k, v in extra.state_dict().items()})
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    meta = {"format": STATE_FORMAT, "progress": progress, "rng": rng_meta, "param_groups": groups,
            "scalars": scalars}
    save_tensors(path, tensors, meta)


def load_state(path: Path, optimizer: torch.optim.Optimizer, extra: torch.nn.Module | None) -> dict[str, Any]:
    """Restore optimizer, extra module and RNG states; return the saved progress."""
    meta = read_metadata(path)
    if meta.get("format") != STATE_FORMAT:
        raise SigrlError(f"{path}: not a sigrl training state; resume needs a run folder written by `sigrl train`")
    tensors = load_tensors(path)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value.reshape(()) if key in meta["scalars"] else value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if extra is not None:
        own = extra.state_dict()
        extra.load_state_dict({k: tensors[f"extra.{k}"].reshape(v.shape) for k, v in own.items()})
    _set_rng_state(tensors, meta["rng"])
    return meta["progress"]

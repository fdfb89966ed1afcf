"""Checkpoints round-trip bit-exactly, describe themselves, and fail clearly when damaged."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from sigrl.checkpoint import read_metadata
from sigrl.errors import SigrlError
from sigrl.model import load_model, save_model
from sigrl.model.backbone import load_clip, save_clip_checkpoint
from sigrl.model.factory import open_model

LABELS = ["a", "b", "c"]


def test_round_trip_is_bit_exact(tmp_path, tiny_model, tiny_images):
    path = tmp_path / "m.safetensors"
    save_model(path, tiny_model, labels=LABELS, summary={"epochs": 0})
    loaded = load_model(path)
    original = tiny_model.state_dict()
    restored = loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    with torch.no_grad():
        x = tiny_model.normalize_uint8(tiny_images)
        assert torch.equal(tiny_model(x, tiny_model.encode_labels(LABELS)), loaded(x, loaded.encode_labels(LABELS)))
    meta = read_metadata(path)
    assert meta["labels"] == LABELS
    assert meta["config"] == tiny_model.config.to_dict()
    assert meta["config"]["preprocess"]["image_size"] == 32
    assert meta["summary"] == {"epochs": 0}


def test_truncated_file_names_the_file(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_model(path, tiny_model)
    data = path.read_bytes()
    for cut in (4, 100, len(data) // 2):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(SigrlError, match=f"cut{cut}.safetensors.*truncated"):
            load_model(bad)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(SigrlError, match="notes.safetensors"):
        load_model(bad)
    with pytest.raises(SigrlError, match="no such checkpoint"):
        load_model(tmp_path / "missing.safetensors")


def test_mismatched_weights(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_model(path, tiny_model)
    # Rewrite the metadata so the config asks for a different head: the weights no longer fit.
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["sigrl"])
    meta["config"]["head"]["gmc_head_dim"] = 4
    header["__metadata__"]["sigrl"] = json.dumps(meta)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + size :])
    with pytest.raises(SigrlError, match="do not match"):
        load_model(path)


def test_clip_checkpoint_is_a_backbone_and_not_a_model(tmp_path, tiny_model):
    path = tmp_path / "clip.safetensors"
    save_clip_checkpoint(path, tiny_model.clip, tiny_model.arch, tiny_model.config.preprocess, {"steps": 1})
    loaded = load_clip(None, str(path))
    for key, value in tiny_model.clip.state_dict().items():
        assert torch.equal(value, loaded.clip.state_dict()[key])
    assert loaded.preprocess == tiny_model.config.preprocess
    with pytest.raises(SigrlError, match="not a sigrl model checkpoint"):
        load_model(path)


def test_open_clip_file_loading_and_specs(tmp_path, tiny_model):
    # A plain open_clip state dict (as open_clip's own training writes) loads into the backbone.
    path = tmp_path / "openclip.pt"
    torch.save({"state_dict": tiny_model.clip.state_dict()}, path)
    loaded = load_clip(tiny_model.arch, str(path))
    assert torch.equal(loaded.clip.visual.proj, tiny_model.clip.visual.proj)
    with pytest.raises(SigrlError, match="no such file"):
        load_clip(tiny_model.arch, str(tmp_path / "nothing.pt"))
    with pytest.raises(SigrlError, match="open_clip spec"):
        open_model("open_clip:")


def test_open_model_dispatch(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_model(path, tiny_model)
    assert open_model(path).config == tiny_model.config
    assert open_model("sigrl-tiny").config.name == "sigrl-tiny"

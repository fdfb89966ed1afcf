"""The binding figures of scripts/shape_probe.py on toy embeddings whose answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

_spec = importlib.util.spec_from_file_location("shape_probe", Path(__file__).parents[1] / "scripts" / "shape_probe.py")
shape_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shape_probe)


def test_unseen_prompt_lands_on_its_nearest_seen_prompt_and_the_colour_share_counts_it():
    labels = ["red cross", "blue star", "red star", "blue cross"]
    text = torch.nn.functional.normalize(torch.tensor([
        [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
        [0.9, 0.1, 0.0],  # red star sits on red cross: same colour
        [0.1, 0.9, 0.1],  # blue cross sits on blue star: same colour
    ]), dim=-1)
    out = shape_probe.unseen_prompt_neighbours(text, labels, {"red star", "blue cross"})
    assert out["nearest_seen"]["red star"]["label"] == "red cross"
    assert out["nearest_seen"]["blue cross"]["label"] == "blue star"
    assert out["same_colour_share"] == 1.0
    text[3] = torch.tensor([1.0, 0.0, 0.0])  # now blue cross lands on red cross
    assert shape_probe.unseen_prompt_neighbours(text, labels, {"red star", "blue cross"})["same_colour_share"] == 0.5


def test_linear_oracle_finds_a_label_the_prompts_miss():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(400, 8)).astype(np.float32)  # [N, D]
    targets = np.where(np.stack([img[:, 0] > 0.5, img[:, 1] > 0.5], 1), 1, -1)  # [N, 2]
    scores = np.stack([img[:, 0], rng.normal(size=400)], 1)  # prompt 0 right, prompt 1 blind
    out = shape_probe.linear_oracle(img, scores, targets, {"seen": [0], "unseen": [1]})
    assert out["seen"]["oracle"] > 0.9 and out["seen"]["prompts"] > 0.9
    assert out["unseen"]["oracle"] > 0.9 and out["unseen"]["prompts"] < 0.5

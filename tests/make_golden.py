"""Regenerate tests/golden/sigrl_tiny.json: scores of the seeded tiny model on fixed inputs.

Run `python tests/make_golden.py` only when a deliberate change alters the model's outputs, and say
why in the commit; tests/model/test_golden.py compares against this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).parent / "golden" / "sigrl_tiny.json"
LABELS = ["red circle", "blue square", "green triangle", "yellow star", "purple cross", "cat", "dog"]
VARIANTS = {
    "sigrl": {},
    "sigrl-no-gmc": {"gmc": False},
    "sigrl-reference-gmc": {"gmc_residual": False},
    "sigrl-no-svfr": {"svfr": False},
    "mkt": {"variant": "mkt"},
    "clip": {"variant": "clip"},
}


def golden_inputs() -> np.ndarray:
    return np.random.default_rng(2025).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)


def compute() -> dict[str, list[list[float]]]:
    from sigrl.config import load_config
    from sigrl.model import create_model

    images = torch.from_numpy(golden_inputs())
    out = {}
    for name, head in VARIANTS.items():
        model = create_model(load_config("sigrl-tiny").replace(head=head), seed=0).eval()
        if model.gmc is not None and model.gmc.gate is not None:
            model.gmc.gate.data.fill_(0.5)  # the residual gate starts at 0; a trained one is not
        with torch.no_grad():
            scores = model(model.normalize_uint8(images), model.encode_labels(LABELS))
        out[name] = scores.tolist()
    return out


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"labels": LABELS, "scores": compute()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")

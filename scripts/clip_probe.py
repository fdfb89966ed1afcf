"""What a world CLIP recognises: zero-shot mAP of colour alone, shape alone and the colour-shape label.

A label is a colour and a shape; a CLIP that ranks images well by colour and not by shape has a
label mAP held down by the shape half. Each attribute is scored as its own label set (an image is
positive for "red" when any of its objects is red) with its chance level (the positive rate).

    python scripts/clip_probe.py --clip CLIP.safetensors --data world/test.jsonl [--limit 2000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from sigrl.data.images import load_images
from sigrl.data.manifest import load_manifest
from sigrl.data.world_vocab import COLOURS, SHAPES
from sigrl.metrics import mean_average_precision
from sigrl.model.backbone import build_tokenizer, load_clip
from sigrl.train.zeroshot import image_embeddings, label_embeddings

PROMPTS = {"colour": "There is a {label} object in the scene", "shape": "There is a {label} in the scene",
           "label": "There is a {label} in the scene"}


def attribute_targets(targets: np.ndarray, labels: list[str], names: list[str], part: int) -> np.ndarray:
    """+1 / -1 per image and attribute: positive when any positive label has that colour (part 0) or shape (1)."""
    out = -np.ones((len(targets), len(names)), dtype=np.int8)
    for j, label in enumerate(labels):
        k = names.index(label.split(" ")[part])
        out[:, k] = np.where(targets[:, j] == 1, 1, out[:, k])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, default=2000)
    args = p.parse_args()
    loaded = load_clip(None, args.clip)
    clip, pre, tokenizer = loaded.clip.eval(), loaded.preprocess, build_tokenizer(loaded.arch)
    manifest = load_manifest(args.data)
    manifest = manifest.subset(range(min(args.limit, len(manifest))))
    images = image_embeddings(clip, load_images(manifest.image_paths(), pre, threads=2), pre)  # [n, D]
    targets, labels = manifest.targets(), list(manifest.labels)
    sets = {"colour": (list(COLOURS), attribute_targets(targets, labels, list(COLOURS), 0)),
            "shape": (list(SHAPES), attribute_targets(targets, labels, list(SHAPES), 1)),
            "label": (labels, targets)}
    report = {}
    for name, (names, truth) in sets.items():
        with torch.no_grad():
            text = label_embeddings(clip, tokenizer, names, PROMPTS[name])
        report[name] = {"mAP": round(mean_average_precision((images @ text.T).numpy(), truth), 4),
                        "chance": round(float((truth == 1).mean()), 4), "prompt": PROMPTS[name]}
    print(json.dumps({"images": len(manifest), **report}, indent=1))


if __name__ == "__main__":
    main()

"""Does a world CLIP's *image tower* see shape? Two probes that cannot blame the text side.

On the single-object scenes of a world manifest (one object, so colour and shape are unambiguous):
- linear probe: multinomial logistic regression on the frozen, L2-normalised global image embedding,
  fitted on the first half of the scenes and scored on the second, for the object's shape (chance
  1/8) and its colour (chance 1/8);
- same-colour ranking: the CLIP's own text side scores the 8 labels of the object's colour with the
  zero-shot prompt; top-1 is the share of scenes whose true shape ranks first (chance 1/8).
Also the zero-shot label mAP over the manifest (all, seen, unseen). Accepts a sigrl CLIP checkpoint
or a SigRL model checkpoint (its backbone is probed).

    python scripts/shape_probe.py --clip CLIP.safetensors --data world/test.jsonl [--out probe.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from sigrl.checkpoint import read_metadata
from sigrl.config import TextConfig
from sigrl.data.images import load_images
from sigrl.data.manifest import Manifest, load_manifest
from sigrl.data.world_vocab import COLOURS, SHAPES, label_of
from sigrl.model.backbone import CLIP_FORMAT, build_tokenizer, load_clip
from sigrl.train.zeroshot import image_embeddings, label_embeddings, zero_shot_report


def open_clip_of(path: str) -> tuple[torch.nn.Module, dict, object]:
    """(clip, arch, preprocess) of a CLIP checkpoint or of a SigRL checkpoint's backbone."""
    if read_metadata(path).get("format") == CLIP_FORMAT:
        loaded = load_clip(None, path)
        return loaded.clip.eval(), loaded.arch, loaded.preprocess
    from sigrl.model.factory import load_model

    model = load_model(path)
    return model.clip.eval(), model.arch, model.config.preprocess


def single_object_scenes(manifest: Manifest) -> tuple[Manifest, list[str], list[str]]:
    keep = [i for i, rec in enumerate(manifest.records) if len(rec.meta.get("objects", ())) == 1]
    labels = [manifest.records[i].meta["objects"][0]["label"] for i in keep]
    return manifest.subset(keep), [lab.split(" ", 1)[0] for lab in labels], [lab.split(" ", 1)[1] for lab in labels]


def linear_probe(features: np.ndarray, names: list[str]) -> float:
    half = len(features) // 2
    fit = LogisticRegression(max_iter=3000, C=10.0).fit(features[:half], names[:half])
    return float(fit.score(features[half:], names[half:]))


def same_colour_ranking(clip, tokenizer, img: torch.Tensor, colours: list[str], shapes: list[str], prompt: str) -> float:
    hits = []
    with torch.no_grad():
        text = {c: label_embeddings(clip, tokenizer, [label_of(c, s) for s in SHAPES], prompt) for c in COLOURS}  # [8, D]
    for i, (colour, shape) in enumerate(zip(colours, shapes)):
        hits.append(int(torch.argmax(text[colour] @ img[i])) == SHAPES.index(shape))
    return float(np.mean(hits))


def probe(clip_path: str, data: str, prompt: str = TextConfig().prompt, threads: int = 2) -> dict:
    clip, arch, preprocess = open_clip_of(clip_path)
    tokenizer = build_tokenizer(arch)
    manifest = load_manifest(data)
    single, colours, shapes = single_object_scenes(manifest)
    img = image_embeddings(clip, load_images(single.image_paths(), preprocess, threads=threads), preprocess)  # [n, D]
    zs = zero_shot_report(clip, tokenizer, preprocess, manifest, prompt, threads=threads)
    return {
        "single_object_scenes": len(single),
        "linear_probe": {"shape": round(linear_probe(img.numpy(), shapes), 4),
                         "colour": round(linear_probe(img.numpy(), colours), 4), "chance": 1 / len(SHAPES)},
        "same_colour_shape_top1": round(same_colour_ranking(clip, tokenizer, img, colours, shapes, prompt), 4),
        "zero_shot_map": {k: round(zs[f"map_{k}"], 4) for k in ("all", "seen", "unseen") if f"map_{k}" in zs},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True, help="sigrl CLIP checkpoint or SigRL model checkpoint")
    p.add_argument("--data", required=True, help="world manifest (test or val split)")
    p.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = p.parse_args()
    report = {"clip": Path(args.clip).name, "data": args.data, **probe(args.clip, args.data)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

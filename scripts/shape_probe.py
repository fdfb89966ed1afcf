"""Does a world CLIP's *image tower* see shape? Two probes that cannot blame the text side.

On the single-object scenes of a world manifest (one object, so colour and shape are unambiguous):
- linear probe: multinomial logistic regression on the frozen, L2-normalised global image embedding,
  fitted on the first half of the scenes and scored on the second, for the object's shape (chance
  1/8) and its colour (chance 1/8);
- same-colour ranking: the CLIP's own text side scores the 8 labels of the object's colour with the
  zero-shot prompt; top-1 is the share of scenes whose true shape ranks first (chance 1/8).
Also the zero-shot label mAP over the manifest (all, seen, unseen), by prompts and by patch words
(sigrl.train.zeroshot: labels composed from their words, scored on the best patch), and two figures
that say where unseen labels are lost:
- unseen prompts: the seen label whose prompt embedding is nearest each unseen label's (cosine), and
  how often it shares the colour -- "red star" landing on "red cross" means the text side names
  the colour and guesses the shape;
- linear oracle: a logistic regression per label on the frozen embeddings of all scenes (first half
  to fit, second to score), mAP over the seen and the unseen columns beside the prompts' mAP on the
  same half. The oracle's unseen/seen ratio is what the image features allow; the prompts' falls
  below it by what the text side loses.
Accepts a sigrl CLIP checkpoint or a SigRL model checkpoint (its backbone is probed).

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
from sigrl.metrics import mean_average_precision
from sigrl.model.backbone import CLIP_FORMAT, build_tokenizer, load_clip
from sigrl.train.zeroshot import (evaluate_scores, image_features, label_embeddings, patch_word_scores,
                                  word_label_embeddings)


def open_clip_of(path: str) -> tuple[torch.nn.Module, dict, object]:
    """(clip, arch, preprocess) of a CLIP checkpoint or of a SigRL checkpoint's backbone."""
    if read_metadata(path).get("format") == CLIP_FORMAT:
        loaded = load_clip(None, path)
        return loaded.clip.eval(), loaded.arch, loaded.preprocess
    from sigrl.model.factory import load_model

    model = load_model(path)
    return model.clip.eval(), model.arch, model.config.preprocess


def single_object_scenes(manifest: Manifest) -> tuple[list[int], list[str], list[str]]:
    """Indices of the scenes with exactly one object, and that object's colour and shape."""
    keep = [i for i, rec in enumerate(manifest.records) if len(rec.meta.get("objects", ())) == 1]
    labels = [manifest.records[i].meta["objects"][0]["label"] for i in keep]
    return keep, [lab.split(" ", 1)[0] for lab in labels], [lab.split(" ", 1)[1] for lab in labels]


def linear_probe(features: np.ndarray, names: list[str]) -> float:
    half = len(features) // 2
    fit = LogisticRegression(max_iter=3000, C=10.0).fit(features[:half], names[:half])
    return float(fit.score(features[half:], names[half:]))


def same_colour_ranking(text: torch.Tensor, labels: list[str], img: torch.Tensor, colours: list[str],
                        shapes: list[str]) -> float:
    """Share of scenes whose true shape ranks first among the 8 labels of the object's colour."""
    rows = {c: [labels.index(label_of(c, s)) for s in SHAPES] for c in COLOURS}  # the 8 prompts of each colour
    hits = [int(torch.argmax(text[rows[colour]] @ img[i])) == SHAPES.index(shape)
            for i, (colour, shape) in enumerate(zip(colours, shapes))]
    return float(np.mean(hits))


def unseen_prompt_neighbours(text: torch.Tensor, labels: list[str], unseen: set[str]) -> dict:
    """The nearest seen label prompt of each unseen label prompt, from prompt embeddings [L, D]."""
    seen = [j for j, lab in enumerate(labels) if lab not in unseen]
    nearest = {}
    for j, lab in enumerate(labels):
        if lab in unseen:
            sims = text[seen] @ text[j]  # [S]
            k = int(sims.argmax())
            nearest[lab] = {"label": labels[seen[k]], "cosine": round(float(sims[k]), 3)}
    same_colour = [n["label"].split(" ", 1)[0] == lab.split(" ", 1)[0] for lab, n in nearest.items()]
    return {"same_colour_share": round(float(np.mean(same_colour)), 4), "nearest_seen": nearest}


def linear_oracle(img: np.ndarray, scores: np.ndarray, targets: np.ndarray, columns: dict[str, list[int]]) -> dict:
    """Per-label logistic regression on frozen embeddings (first half fits, second scores) beside the prompts."""
    half = len(img) // 2
    fitted = np.zeros((len(img) - half, targets.shape[1]), dtype=np.float32)  # [n - half, L]
    for j in range(targets.shape[1]):
        y = targets[:half, j] == 1
        if 0 < y.sum() < half:
            fitted[:, j] = LogisticRegression(max_iter=3000, C=10.0).fit(img[:half], y).decision_function(img[half:])
    out = {}
    for name, cols in columns.items():
        out[name] = {"oracle": round(mean_average_precision(fitted[:, cols], targets[half:, cols]), 4),
                     "prompts": round(mean_average_precision(scores[half:, cols], targets[half:, cols]), 4)}
    return out


def probe(clip_path: str, data: str, prompt: str = TextConfig().prompt, threads: int = 2) -> dict:
    clip, arch, preprocess = open_clip_of(clip_path)
    tokenizer = build_tokenizer(arch)
    manifest = load_manifest(data)
    labels, unseen = list(manifest.labels), set(manifest.unseen)
    images = load_images(manifest.image_paths(), preprocess, threads=threads)
    img, patches = image_features(clip, images, preprocess)  # [N, D], [N, P, D]
    text = label_embeddings(clip, tokenizer, labels, prompt)  # [L, D]
    scores = (img @ text.T).numpy()  # [N, L]
    zs = evaluate_scores(scores, manifest)
    words = evaluate_scores(patch_word_scores(patches, word_label_embeddings(clip, tokenizer, labels, prompt)).numpy(),
                            manifest)
    single, colours, shapes = single_object_scenes(manifest)
    single_img = img[single]  # [n, D]
    columns = {"seen": [j for j, lab in enumerate(labels) if lab not in unseen],
               "unseen": [j for j, lab in enumerate(labels) if lab in unseen]}
    return {
        "single_object_scenes": len(single),
        "linear_probe": {"shape": round(linear_probe(single_img.numpy(), shapes), 4),
                         "colour": round(linear_probe(single_img.numpy(), colours), 4), "chance": 1 / len(SHAPES)},
        "same_colour_shape_top1": round(same_colour_ranking(text, labels, single_img, colours, shapes), 4),
        "zero_shot_map": {k: round(zs[f"map_{k}"], 4) for k in ("all", "seen", "unseen") if f"map_{k}" in zs},
        "zero_shot_map_patch_words": {k: round(words[f"map_{k}"], 4) for k in ("all", "seen", "unseen")
                                      if f"map_{k}" in words},
        "unseen_prompts": unseen_prompt_neighbours(text, labels, unseen) if unseen else None,
        "linear_oracle_map": linear_oracle(img.numpy(), scores, manifest.targets(), columns) if unseen else None,
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

"""`sigrl data synth`: write the procedural world as PNG images plus one manifest per split.

Layout of the output folder:

    DIR/train.jsonl  DIR/val.jsonl  DIR/test.jsonl      manifests (see sigrl.data.manifest)
    DIR/images/{train,val,test}/000000.png ...          the scenes

Every image is drawn from its own generator seeded by (seed, split, index), so the output is
byte-identical for a seed whatever the number of worker processes. Training scenes contain only
seen labels (the unseen quarter never occurs there, neither in the targets nor in the captions);
val and test scenes draw from all labels with full annotations.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sigrl.data.manifest import Manifest, Record, write_manifest
from sigrl.data.world_render import render_scene
from sigrl.data.world_vocab import COLOURS, SHAPES, all_labels, caption, seen_labels, unseen_labels
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
CAPTIONS_PER_IMAGE = 3
WORLD_VERSION = 1


@dataclass(frozen=True)
class SynthSpec:
    out: Path
    seed: int
    sizes: dict[str, int]
    image_size: int = 64
    workers: int = 0  # 0: one per CPU core
    overwrite: bool = False  # replace the world already in `out` (else a non-empty `out` is refused)


def _pool_for(split: str) -> list[tuple[str, str]]:
    labels = seen_labels() if split == "train" else all_labels()
    return [tuple(lab.split(" ", 1)) for lab in labels]  # type: ignore[misc]


def _render_one(job: tuple[int, str, int, int, str]) -> dict:
    """Draw, encode and write one scene; return its manifest record as plain data."""
    seed, split, index, image_size, out = job
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    image, objects = render_scene(image_size, _pool_for(split), rng)
    rel = f"images/{split}/{index:06d}.png"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    Path(out, rel).write_bytes(buf.getvalue())
    captions = [caption(objects, rng) for _ in range(CAPTIONS_PER_IMAGE)]
    layout = [
        {"label": o.label, "size": o.size, "texture": o.texture, "cx": round(o.cx, 2), "cy": round(o.cy, 2),
         "radius": round(o.radius, 2), "angle": round(o.angle, 2), "visible": o.visible}
        for o in objects
    ]
    targets = {lab: 1 for lab in sorted({o.label for o in objects})}
    return {"path": rel, "targets": targets, "captions": captions, "meta": {"n_objects": len(objects), "objects": layout}}


def _world_meta(spec: SynthSpec, split: str) -> dict:
    return {
        "world_version": WORLD_VERSION, "seed": spec.seed, "split": split, "image_size": spec.image_size,
        "colours": list(COLOURS), "shapes": list(SHAPES),
        "label_pool": "seen" if split == "train" else "all",
    }


def synth(spec: SynthSpec) -> dict[str, Path]:
    """Generate every split of the world; returns {split: manifest path}."""
    if spec.image_size < 32:
        raise SigrlError(f"--image-size {spec.image_size} is too small to draw the shapes; use 32 or more")
    unknown = set(spec.sizes) - set(SPLITS)
    if unknown or any(n < 0 for n in spec.sizes.values()):
        raise SigrlError(f"split sizes must be non-negative counts for {SPLITS}, got {spec.sizes}")
    out = Path(spec.out)
    _prepare_out(out, spec.overwrite)
    workers = spec.workers or os.cpu_count() or 1
    manifests: dict[str, Path] = {}
    # fork keeps start-up cheap; the result does not depend on the worker count or start method
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers) as pool:
        for split in SPLITS:
            n = spec.sizes.get(split, 0)
            if n == 0:
                continue
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            jobs = [(spec.seed, split, i, spec.image_size, str(out)) for i in range(n)]
            rows = pool.map(_render_one, jobs, chunksize=max(1, min(256, n // (4 * workers) or 1)))
            elapsed = time.perf_counter() - start
            log.info("%s: %d images in %.1f s (%.0f images/s)", split, n, elapsed, n / max(elapsed, 1e-9))
            manifest = Manifest(
                labels=all_labels(), unseen=unseen_labels(), root=out,
                records=[Record(r["path"], r["targets"], tuple(r["captions"]), r["meta"]) for r in rows],
                missing=-1, name=f"world-{split}", meta=_world_meta(spec, split),
            )
            manifests[split] = out / f"{split}.jsonl"
            write_manifest(manifest, manifests[split])
    return manifests


def _prepare_out(out: Path, overwrite: bool) -> None:
    """An earlier world in `out` would leave its splits and images beside the new ones (a smaller
    rerun keeps the old extra images), so a non-empty folder is refused unless `overwrite`, which
    removes only what synth writes."""
    if out.exists() and not out.is_dir():
        raise SigrlError(f"{out} is a file; --out must be a folder (new or empty)")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise SigrlError(
            f"{out} is not empty; choose a new folder, or pass --overwrite to replace the world in it "
            "(its images/ folder and split manifests are deleted first)"
        )
    shutil.rmtree(out / "images", ignore_errors=True)
    for split in SPLITS:
        (out / f"{split}.jsonl").unlink(missing_ok=True)


def contact_sheet(manifest: Manifest, count: int = 12, columns: int = 4, scale: int = 3) -> Image.Image:
    """A grid of the first `count` scenes, each upscaled and captioned with its positive labels."""
    tile = None
    cells = []
    for rec, path in list(zip(manifest.records, manifest.image_paths()))[:count]:
        try:
            img = Image.open(path).convert("RGB")
        except OSError as err:  # missing, unreadable or not an image: the manifest's root or files are wrong
            raise SigrlError(f"{path}: cannot show this image of the manifest ({err}); check the manifest's root and its files") from None
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        tile = img.size
        labels = [lab for lab, v in rec.targets.items() if v == 1]
        cells.append((img, labels))
    if tile is None:
        raise SigrlError(f"manifest {manifest.name!r} has no images to show")
    text_h = 12 * 5 + 4
    rows = (len(cells) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (tile[0] + 8), rows * (tile[1] + text_h + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (img, labels) in enumerate(cells):
        x, y = (k % columns) * (tile[0] + 8) + 4, (k // columns) * (tile[1] + text_h + 8) + 4
        sheet.paste(img, (x, y))
        for j, lab in enumerate(labels):
            mark = "*" if lab in manifest.unseen else ""
            draw.text((x, y + tile[1] + 2 + 12 * j), lab + mark, fill="black")
    return sheet


def spec_dict(spec: SynthSpec) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}

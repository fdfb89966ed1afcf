"""Small images and record comparisons shared by the distributed-engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ["red", "green", "blue", "circle", "square", "triangle"]
MODEL = "sigrl-tiny"  # random-init tiny config: deterministic (seed 0), fast


def make_images(folder: Path, count: int) -> list[Path]:
    """`count` small smooth PNGs of varied sizes in two subfolders, plus one broken 'image'."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        h, w = 28 + i % 9, 30 + i % 11
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = rng.uniform(0, 255, size=3)
        img = np.stack([base[0] + 60 * np.sin(x / 5 + i), base[1] + 60 * np.cos(y / 4), base[2] * (x + y) / (w + h)], -1)
        path = sub / f"img{i:04d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    return paths


def by_path(records: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        assert r["path"] not in out, f"{r['path']} recorded twice"
        out[r["path"]] = r
    return out


def assert_same_records(got: list[dict], want: list[dict], tol: float = 1e-5) -> None:
    """Same images, statuses, errors and tags; every score within `tol`."""
    a, b = by_path(got), by_path(want)
    assert sorted(a) == sorted(b)
    for path, r in a.items():
        w = b[path]
        assert (r["status"], r["error"]) == (w["status"], w["error"]), path
        assert [t["label"] for t in r["tags"]] == [t["label"] for t in w["tags"]], path
        np.testing.assert_allclose([t["score"] for t in r["tags"]], [t["score"] for t in w["tags"]], atol=tol)
        if w["scores"] is None:
            assert r["scores"] is None
        else:
            np.testing.assert_allclose(r["scores"], w["scores"], atol=tol)

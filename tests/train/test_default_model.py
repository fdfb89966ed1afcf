"""The embedded default model: small, labelled with every world label, and better than chance."""

from __future__ import annotations

import pytest

from sigrl.data.manifest import load_manifest
from sigrl.data.world import SynthSpec, synth
from sigrl.data.world_vocab import all_labels
from sigrl.errors import SigrlError
from sigrl.evaluate import evaluate

try:
    from sigrl import default_model

    PACKAGED = default_model.path()
except SigrlError:
    PACKAGED = None

needs_model = pytest.mark.skipif(PACKAGED is None, reason="this checkout ships no packaged default model")

# Measured on the packaged model with this 120-image split (seed 11, not the world's seed 0):
# ZSL mAP 0.459 (own) vs 0.424 (plain CLIP on the same backbone), GZSL 0.200 vs 0.167; the model
# packed before the head-only phase and the residual GMC had 0.387 / 0.182. The floors sit below the
# measurement and far above chance (about 0.08 ZSL, 0.04 GZSL); on 2,000 images of an unseen-seed
# world the SigRL head leads plain CLIP by 2.9 GZSL points with a seed spread of 0.05.
ZSL_FLOOR = 0.42
GZSL_FLOOR = 0.18
GZSL_LEAD_OVER_CLIP = 0.015


@needs_model
def test_default_model_is_small_and_knows_every_world_label():
    assert PACKAGED.stat().st_size <= 25 * 1024 * 1024
    assert default_model.labels() == list(all_labels())


@needs_model
def test_default_model_map_above_floor(tmp_path):
    paths = synth(SynthSpec(out=tmp_path, seed=11, sizes={"test": 120}, image_size=64, workers=1))
    manifest = load_manifest(paths["test"])
    report = evaluate(default_model.load_default(), manifest, "ov", ["own", "clip"], batch_size=64, threads=1)
    own, clip = report["results"]["own"], report["results"]["clip"]
    assert own["zsl"]["mAP"] >= ZSL_FLOOR
    assert own["gzsl"]["mAP"] >= GZSL_FLOOR
    assert own["gzsl"]["mAP"] >= clip["gzsl"]["mAP"] + GZSL_LEAD_OVER_CLIP

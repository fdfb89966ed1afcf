"""`sigrl eval` through the real entry point, against figures computed independently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sigrl.cli.main import app
from sigrl.data.images import load_images, normalise
from sigrl.data.manifest import load_manifest
from sigrl.metrics import mean_average_precision, precision_recall_f1_at_k
from sigrl.model import create_model, save_model
from sigrl.model.text import make_prompts


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_world):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    model = create_model("sigrl-tiny", seed=1)
    save_model(path, model, load_manifest(tiny_world["test"]).labels, {"setting": "ov"})
    return path


def test_eval_cli_ov_matches_plain_clip_zero_shot(tiny_world, tiny_checkpoint, tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(tiny_checkpoint), "--data",
                                      str(tiny_world["test"]), "--variants", "clip,mkt,own,no-gmc",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "ZSL mAP" in result.output and "no-gmc" in result.output
    report = json.loads(out.read_text())[str(tiny_checkpoint)]
    assert set(report["results"]) == {"clip", "mkt", "own", "no-gmc"}

    # independent CLIP zero-shot figures: open_clip's own encoders, all labels / unseen only
    manifest = load_manifest(tiny_world["test"])
    model = create_model("sigrl-tiny", seed=1).eval()
    images = normalise(load_images(manifest.image_paths(), model.config.preprocess), model.config.preprocess)
    with torch.no_grad():
        img = model.clip.encode_image(images, normalize=True)
        txt = model.clip.encode_text(model.tokenizer(make_prompts(manifest.labels, model.config.text.prompt)),
                                     normalize=True)
    scores = (img @ txt.T).numpy()
    targets = manifest.targets()
    clip = report["results"]["clip"]
    assert clip["gzsl"]["mAP"] == pytest.approx(mean_average_precision(scores, targets), abs=1e-5)
    assert clip["gzsl"]["F1@3"] == pytest.approx(precision_recall_f1_at_k(scores, targets, 3)["f1"], abs=1e-5)
    cols = [manifest.labels.index(u) for u in manifest.unseen]
    keep = (targets[:, cols] == 1).any(axis=1)
    assert clip["zsl"]["n_images"] == int(keep.sum())
    zsl = mean_average_precision(scores[keep][:, cols], targets[keep][:, cols])
    assert clip["zsl"]["mAP"] == pytest.approx(zsl, abs=1e-5)  # cosine ranking ignores the label set
    # the SigRL head differs from plain CLIP (it is a different scorer, not a relabelled copy)
    assert report["results"]["own"]["gzsl"]["mAP"] != pytest.approx(clip["gzsl"]["mAP"], abs=1e-6)


def test_eval_cli_spml_reports_map_over_the_training_labels(tiny_world, tmp_path):
    manifest = load_manifest(tiny_world["test"])
    path = tmp_path / "spml.safetensors"
    model = create_model("sigrl-tiny", seed=2)
    save_model(path, model, manifest.seen, {"setting": "spml", "train_labels": list(manifest.seen)})
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(path), "--data", str(tiny_world["test"]),
                                      "--variants", "own", "--json", str(out)])
    assert result.exit_code == 0, result.output
    own = json.loads(out.read_text())[str(path)]["results"]["own"]
    assert own["n_labels"] == len(manifest.seen)
    assert 0.0 < own["mAP"] <= 1.0 and np.isfinite(own["mAP"])


def test_eval_cli_rejects_unknown_variant(tiny_world, tiny_checkpoint):
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(tiny_checkpoint), "--data",
                                      str(tiny_world["test"]), "--variants", "bogus"])
    assert result.exit_code != 0

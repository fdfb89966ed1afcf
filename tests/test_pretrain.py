"""Contrastive pretraining smoke test and the zero-shot figures on hand-made scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigrl.data.captions import load_captions
from sigrl.data.manifest import Manifest, Record, load_manifest
from sigrl.data.world import SynthSpec, synth
from sigrl.errors import SigrlError
from sigrl.model.backbone import build_tokenizer, load_clip
from sigrl.train.pretrain import PretrainConfig, pretrain
from sigrl.train.zeroshot import evaluate_scores, zero_shot_report

TINY_ARCH = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    synth(SynthSpec(out=out, seed=1, sizes={"train": 16, "test": 6}, workers=1))
    return out


def test_pretrain_learns_and_the_checkpoint_loads_back(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.safetensors"
    cfg = PretrainConfig(arch=TINY_ARCH, minutes=None, steps=12, batch_size=8, lr=3e-3, warmup_steps=1,
                         log_every=4, eval_manifest=str(world / "test.jsonl"), threads=1)
    summary = pretrain([world / "train.jsonl"], out, cfg)
    assert summary["steps"] == 12 and summary["samples_seen"] == 96
    assert [s for s, _ in summary["loss_curve"]] == [4, 8, 12]
    assert np.isfinite(summary["loss_last"]) and summary["loss_last"] < summary["loss_first"]
    zs = summary["zero_shot"]
    assert zs["images"] == 6 and 0.0 <= zs["map_all"] <= 1.0
    loaded = load_clip(None, str(out))
    assert loaded.arch == TINY_ARCH and loaded.preprocess.image_size == 32
    report = zero_shot_report(loaded.clip, build_tokenizer(loaded.arch), loaded.preprocess,
                              load_manifest(world / "test.jsonl"), threads=1)
    assert report["map_all"] == pytest.approx(zs["map_all"], abs=1e-6)  # same weights after the round trip


def test_patch_loss_runs_in_the_recipe_and_the_report_scores_patch_words(world: Path, tmp_path: Path) -> None:
    cfg = PretrainConfig(arch=TINY_ARCH, minutes=None, steps=4, batch_size=8, warmup_steps=1, log_every=2,
                         label_loss=1.0, word_loss=1.0, patch_loss=1.0, eval_manifest=str(world / "test.jsonl"),
                         threads=1)
    summary = pretrain([world / "train.jsonl"], tmp_path / "clip.safetensors", cfg)
    assert set(summary["loss_parts_last"]) == {"caption", "label", "word", "patch", "total"}
    assert "patch label loss" in summary["recipe"]
    words = summary["zero_shot"]["patch_words"]
    assert words["images"] == 6 and 0.0 <= words["map_all"] <= 1.0


def test_patch_word_scores_take_the_best_patch_of_the_composed_label() -> None:
    import torch

    from sigrl.train.zeroshot import patch_word_scores

    # words red, star, cross as axes; labels "red star" and "red cross" composed as word means
    composed = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]])  # [L=2, D=3]
    patches = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],  # a red patch and a cross patch apart
                            [[0.6, 0.0, 0.8], [0.0, 1.0, 0.0]]])  # a red cross together, a star apart
    scores = patch_word_scores(patches, composed, batch_size=1)
    assert torch.allclose(scores, torch.tensor([[0.5, 0.5], [0.5, 0.7]]))
    # the bound red cross outranks the unbound one; "red star" ties, its words never meet on a patch
    assert scores[1, 1] > scores[0, 1] and scores[1, 0] == scores[0, 0]


def test_pretrain_refuses_a_batch_larger_than_the_data(world: Path, tmp_path: Path) -> None:
    cfg = PretrainConfig(arch=TINY_ARCH, minutes=None, steps=1, batch_size=64)
    with pytest.raises(SigrlError, match="lower --batch-size"):
        pretrain([world / "train.jsonl"], tmp_path / "x.safetensors", cfg)


def test_caption_tables_in_open_clip_layout(tmp_path: Path, world: Path) -> None:
    table = tmp_path / "pairs.csv"
    table.write_text(f"filepath,title\n{world}/images/train/000000.png,a red circle\n{world}/images/train/000001.png,\n")
    pairs = load_captions([table, world / "test.jsonl"])
    assert len(pairs) == 1 + 6  # the row without a caption is skipped
    assert pairs.captions[0] == ("a red circle",) and len(pairs.captions[1]) == 3
    bad = tmp_path / "bad.tsv"
    bad.write_text("name\tcaption\nx.png\thello\n")
    with pytest.raises(SigrlError, match="no image path column"):
        load_captions([bad])


def test_zero_shot_figures_on_known_scores(tmp_path: Path) -> None:
    labels = ("a", "b", "c", "d")
    records = [Record("0.png", {"a": 1}), Record("1.png", {"b": 1}), Record("2.png", {"c": 1, "d": 1}),
               Record("3.png", {"d": 1}), Record("4.png", {"a": 1, "c": 1})]
    m = Manifest(labels=labels, unseen=("c", "d"), root=tmp_path, records=records, missing=-1)
    perfect = m.targets().astype(float)
    report = evaluate_scores(perfect, m)
    assert report["top1_single_object"] == {"images": 3, "all": 1.0, "seen_truth": 1.0, "unseen_truth": 1.0,
                                            "chance": 0.25}
    assert report["map_seen"] == 1.0 and report["map_unseen"] == 1.0
    assert report["chance_map_seen"] == pytest.approx((2 / 5 + 1 / 5) / 2)
    assert report["chance_map_unseen"] == pytest.approx((2 / 5 + 2 / 5) / 2)
    wrong = -perfect  # every positive ranked last
    bad = evaluate_scores(wrong, m)
    assert bad["top1_single_object"]["all"] == 0.0 and bad["map_seen"] < 0.6
    json.dumps(report)  # the report goes into checkpoint metadata as JSON


def test_pretrain_command_with_the_shipped_world_architecture(world: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sigrl.cli.main import app

    out = tmp_path / "clip.safetensors"
    result = CliRunner().invoke(app, ["pretrain", "--data", str(world / "train.jsonl"), "--arch", "clip-world-tiny",
                                      "--out", str(out), "--steps", "2", "--batch-size", "4", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["steps"] == 2  # --steps alone: no time budget
    loaded = load_clip(None, str(out))
    assert loaded.arch["vision_cfg"]["image_size"] == 64 and loaded.arch["text_cfg"]["vocab_size"] == 49408


def test_label_captions_add_one_prompt_per_positive_label(world: Path) -> None:
    manifest = load_manifest(world / "train.jsonl")
    plain = load_captions([world / "train.jsonl"])
    labelled = load_captions([world / "train.jsonl"], label_prompt="There is a {label} in the scene")
    assert plain.image_paths == labelled.image_paths
    targets = manifest.targets()
    for i, (base, more) in enumerate(zip(plain.captions, labelled.captions)):
        positives = [lab for lab, t in zip(manifest.labels, targets[i]) if t == 1]
        assert more[: len(base)] == base
        assert list(more[len(base):]) == [f"There is a {lab} in the scene" for lab in positives]


def test_shorter_caption_lists_are_padded_by_cycling() -> None:
    from sigrl.train.pretrain_data import tokenize_all as _tokenize_all

    import torch

    def tokenizer(texts: list[str]) -> torch.Tensor:  # a caption's "tokens": its length
        return torch.tensor([[len(t)] for t in texts])

    tokens = _tokenize_all(tokenizer, [("a", "bb"), ("ccc", "dddd", "e", "ff")])
    assert tokens[:, :, 0].tolist() == [[1, 2, 1, 2], [3, 4, 1, 2]]

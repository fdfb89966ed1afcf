"""The training loop on the tiny config: a step lowers the loss, resume equals an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from sigrl.checkpoint import load_tensors
from sigrl.errors import SigrlError
from sigrl.train import loop
from sigrl.train.optim import lr_at, param_groups, set_lr
from sigrl.train.recipe import TrainConfig


def _cfg(world, out, **kw) -> TrainConfig:
    base = dict(setting="ov", data=str(world["train"]), val=str(world["val"]), init="sigrl-tiny", out=str(out),
                epochs=3, batch_size=16, threads=1, head_steps=0, compile=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("setting,loss", [("ov", "em"), ("spml", "an"), ("spml", "em")])
def test_one_step_lowers_the_loss(tiny_world, tmp_path, setting, loss):
    # The distillation term starts at its minimum (student == teacher, zero L1 subgradient), so any
    # step raises it; the step is checked on the ranking objective it optimises.
    cfg = _cfg(tiny_world, tmp_path, setting=setting, loss=loss, lr=1e-4, warmup_epochs=0.0,
               distill_weight=0.0).resolved()
    run = loop._prepare(cfg)
    run.model.eval()  # no dropout: the same batch gives the same loss before and after the step
    idx = torch.arange(16)
    x = (run.data.train.images[idx].float() - run.model.pixel_mean) / run.model.pixel_std
    before, _ = loop._loss(run, idx, x)
    run.optimizer.zero_grad()
    before.backward()
    run.optimizer.step()
    with torch.no_grad():
        after, _ = loop._loss(run, idx, x)
    assert after.item() < before.item() - 1e-6


def test_resume_equals_uninterrupted(tiny_world, tmp_path):
    full = _cfg(tiny_world, tmp_path / "full")
    loop.train(full)
    part = _cfg(tiny_world, tmp_path / "part")
    first = loop.train(part, stop_after=1)
    assert first["epoch"] == 1
    loop.train(part, resume=True)
    a = load_tensors(tmp_path / "full" / "last.safetensors")
    b = load_tensors(tmp_path / "part" / "last.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6
    # the weights did move, so the comparison is not trivially true
    init = loop._prepare(full.resolved()).model.state_dict()
    assert max((a[k] - init[k]).abs().max().item() for k in a) > 1e-4
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    with pytest.raises(SigrlError, match="--resume"):
        loop.train(part)


def test_frozen_parts_do_not_change(tiny_world, tmp_path):
    cfg = _cfg(tiny_world, tmp_path, epochs=1, trainable_blocks=1)
    loop.train(cfg)
    init = loop._prepare(cfg.resolved()).model.state_dict()
    trained = load_tensors(tmp_path / "last.safetensors")
    assert torch.equal(trained["clip.token_embedding.weight"], init["clip.token_embedding.weight"])
    assert torch.equal(trained["clip.visual.transformer.resblocks.0.mlp.c_fc.weight"],
                       init["clip.visual.transformer.resblocks.0.mlp.c_fc.weight"])
    assert not torch.equal(trained["clip.visual.transformer.resblocks.1.mlp.c_fc.weight"],
                           init["clip.visual.transformer.resblocks.1.mlp.c_fc.weight"])


def test_layer_decay_and_schedule(tiny_world, tmp_path):
    cfg = _cfg(tiny_world, tmp_path).resolved()
    run = loop._prepare(cfg)
    groups = param_groups(run.model, cfg)
    scales = {g["layer"]: g["lr_scale"] for g in groups if not g["head"]}
    assert scales == {1: pytest.approx(0.65 ** 2), 2: pytest.approx(0.65), 3: 1.0}  # 2-block tiny ViT
    # the fresh heads are groups of their own, holding exactly GMC's and SVFR's parameters
    head = {id(p) for g in groups if g["head"] for p in g["params"]}
    assert head == {id(p) for m in (run.model.gmc, run.model.svfr) for p in m.parameters()}
    set_lr(run.optimizer, 1e-4, 3e-3)
    for g in run.optimizer.param_groups:
        assert g["lr"] == pytest.approx(3e-3 if g["head"] else 1e-4 * g["lr_scale"])
    decayed = [g for g in groups if g["weight_decay"] > 0]
    assert decayed and all(p.ndim >= 2 for g in decayed for p in g["params"])
    # 10 steps per epoch, 2 warm-up epochs of 20 epochs
    assert lr_at(cfg, 0, 200, 10) == pytest.approx(1e-4 / 20)
    assert lr_at(cfg, 19, 200, 10) == pytest.approx(1e-4)
    assert lr_at(cfg, 20, 200, 10) == pytest.approx(1e-4)
    assert lr_at(cfg, 200, 200, 10) == pytest.approx(1e-7)


def test_cached_features_equal_recomputed_ones(tiny_world, tmp_path):
    from sigrl.train.head_phase import cache_features

    run = loop._prepare(_cfg(tiny_world, tmp_path).resolved())
    images = run.data.train.images[:10]
    cache = cache_features(run.model, images, mirror=True, device=run.device, batch_size=4)
    run.model.eval()
    with torch.no_grad():
        for view, x in enumerate((images.float(), images.float().flip(-1))):
            g, feats = run.model.encode_image((x - run.model.pixel_mean) / run.model.pixel_std)
            assert (cache.g[view] - g).abs().max().item() <= 1e-5
            assert (cache.feats[view] - feats).abs().max().item() <= 1e-5
    assert not torch.allclose(cache.feats[0], cache.feats[1])  # the mirror is a different view


def test_head_phase_trains_only_the_heads_and_is_recorded(tiny_world, tmp_path):
    cfg = _cfg(tiny_world, tmp_path, epochs=0, head_steps=30, batch_size=8, head_warmup_steps=5)
    loop.train(cfg)
    init = loop._prepare(cfg.resolved()).model.state_dict()
    trained = load_tensors(tmp_path / "last.safetensors")
    moved = {k for k in trained if not torch.equal(trained[k], init[k])}
    assert moved and all(k.startswith(("gmc.", "svfr.")) for k in moved)
    assert "gmc.gate" in moved  # the residual gate leaves 0: the graph term is used
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert record["phase"] == "head" and record["head_steps"] == 30 and record["val_mAP"] is not None
    assert (tmp_path / "best.safetensors").is_file()


def test_compiled_falls_back_to_eager_when_compiling_fails(monkeypatch):
    from sigrl.train import head_phase

    def broken(fn, dynamic):
        def fail(*args):
            raise RuntimeError("no C++ compiler\nmore detail")
        return fail

    monkeypatch.setattr(head_phase.torch, "compile", broken)
    calls = []
    score = head_phase.compiled(lambda g, f: calls.append(1) or g + f, True)
    one = torch.ones(2)
    assert torch.equal(score(one, one), 2 * one) and torch.equal(score(one, one), 2 * one)
    assert len(calls) == 2


def test_word_composed_patch_head_trains_and_reloads(tiny_world, tmp_path):
    """`sigrl train --variant patch --compose words`: a weightless head, so the epoch trains the
    backbone; the checkpoint keeps the composition, and reloads to the same scores."""
    from sigrl.model.factory import open_model

    loop.train(_cfg(tiny_world, tmp_path, variant="patch", compose="words", epochs=1, head_steps=50))
    config = json.loads((tmp_path / "config.json").read_text())["model"]
    assert config["text"]["compose"] == "words" and config["head"]["variant"] == "patch"
    model = open_model(tmp_path / "best.safetensors").eval()
    assert model.config.text.compose == "words"
    labels = ["red circle", "blue square"]
    words = model.embed_labels(["red", "circle"])
    expected = torch.nn.functional.normalize(words, dim=-1).mean(0)
    assert torch.allclose(model.embed_labels(labels)[0], expected, atol=1e-6)

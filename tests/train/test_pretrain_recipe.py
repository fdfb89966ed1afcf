"""The shape-requiring pretraining recipe: label sigmoid loss, hard negatives, conv stem, caption loss."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sigrl.data.captions import CaptionSet
from sigrl.data.hard_negatives import negative_captions, negative_scenes, objects_from_meta
from sigrl.data.world_render import render_scene
from sigrl.data.world_vocab import seen_labels, unseen_labels
from sigrl.model.backbone import build_clip, encode_image_features, resolve_arch
from sigrl.model.conv_stem import ConvStem
from sigrl.config import load_config
from sigrl.errors import SigrlError
from sigrl.model.factory import create_model
from sigrl.model.text import word_mix
from sigrl.train.pretrain_data import label_words, training_labels
from sigrl.train.pretrain_losses import LabelSigmoidLoss, PatchLabelLoss, caption_loss


def test_label_sigmoid_loss_on_a_toy_batch() -> None:
    loss = LabelSigmoidLoss(prior=0.25)
    image = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)  # [B=2, D]
    labels = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)  # [L=3, D]
    targets = torch.tensor([[1, 0, 1], [0, 1, 1]])  # two positives per image
    logits = 10.0 * image @ labels.T + math.log(0.25 / 0.75)
    expect = -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits)).sum(-1).mean()
    assert torch.allclose(loss(image, labels, targets), expect, atol=1e-6)
    # a ranking that puts every positive above every negative is cheaper than its reverse
    assert loss(image, labels, targets) < loss(image, labels, 1 - targets)


def test_training_labels_exclude_labels_that_never_occur_as_positives() -> None:
    seen = list(seen_labels())
    pairs = CaptionSet([Path("a"), Path("b"), Path("c")], [("x",)] * 3,
                       positives=[(seen[0], seen[5]), (seen[5],), (seen[9],)], layouts=[{}, {}, {}])
    labels, targets = training_labels(pairs)
    assert labels == tuple(sorted({seen[0], seen[5], seen[9]}))
    assert not set(labels) & set(unseen_labels())  # unseen columns never become prompts or targets
    assert targets.tolist() == [[int(lab in p) for lab in labels] for p in pairs.positives]


def test_word_targets_split_training_labels_and_never_name_an_unseen_label() -> None:
    labels = ("blue star", "red circle", "red star")
    targets = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.uint8)  # [N=3, L=3]
    words, word_targets = label_words(labels, targets)
    assert words == ("blue", "circle", "red", "star")
    # image 0: blue + star; image 1: red + circle + star (the word "red" once, from two labels); image 2: none
    assert word_targets.tolist() == [[1, 0, 0, 1], [0, 1, 1, 1], [0, 0, 0, 0]]
    # words are parts of training labels only: no unseen label is ever one of them
    seen = seen_labels()
    all_words, _ = label_words(seen, torch.ones(1, len(seen), dtype=torch.uint8))
    assert not set(all_words) & set(unseen_labels())
    assert all(" " not in w for w in all_words)


def test_patch_label_loss_binds_words_by_place() -> None:
    # words: red, blue, star, cross as the 4 axes; training labels "red star" and "blue cross"
    words = torch.eye(4)  # [W, D]
    mix = word_mix(("red star", "blue cross"), ("red", "blue", "star", "cross"))
    assert mix.tolist() == [[0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5]]
    unit = lambda v: F.normalize(torch.tensor(v, dtype=torch.float), dim=-1)  # noqa: E731
    # image 0 has a red star and a blue cross, each on its own patch; image 1 the swapped pairing
    bound = torch.stack([unit([1, 0, 1, 0]), unit([0, 1, 0, 1])])  # [P=2, D]
    swapped = torch.stack([unit([1, 0, 0, 1]), unit([0, 1, 1, 0])])
    loss = PatchLabelLoss(prior=0.5)
    both = torch.tensor([[1, 1]])
    # the same words are present in both images, so only placement tells them apart
    assert loss(bound[None], words, mix, both) < loss(swapped[None], words, mix, both)
    # and the logit is the best patch's, times the temperature, plus the bias
    logits = 10.0 * torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)]])
    expect = F.binary_cross_entropy_with_logits(logits, both.float(), reduction="none").sum(-1).mean()
    assert torch.allclose(loss(bound[None], words, mix, both), expect, atol=1e-5)
    # a label with a word no training label has cannot be composed
    with pytest.raises(SigrlError, match="green"):
        word_mix(("green star",), ("red", "star"))


def _scenes(n: int, seed: int) -> list[list]:
    rng = np.random.default_rng(seed)
    pool = [tuple(lab.split(" ", 1)) for lab in seen_labels()]
    return [render_scene(64, pool, rng)[1] for _ in range(n)]


def test_hard_negatives_never_form_an_unseen_label() -> None:
    allowed = set(seen_labels())
    scenes = _scenes(150, seed=3)
    made = 0
    for objects in scenes:
        present = {o.label for o in objects}
        for changed in negative_scenes(objects, allowed):
            labels = {o.label for o in changed}
            assert labels <= allowed, labels - allowed
            assert labels - present, "a negative must state a label the scene does not have"
            made += 1
    assert made > 150  # nearly every scene has several swaps
    rng = np.random.default_rng(0)
    captions = negative_captions(scenes[0], allowed, 3, rng)
    assert 1 <= len(captions) <= 3 and all(isinstance(c, str) and c for c in captions)
    for caption in captions:  # no unseen label's words appear together in a negative caption
        for label in unseen_labels():
            colour, shape = label.split(" ")
            assert f"{colour} {shape}" not in caption


def test_objects_round_trip_through_manifest_meta() -> None:
    objects = _scenes(1, seed=5)[0]
    meta = {"objects": [{"label": o.label, "size": o.size, "texture": o.texture, "cx": o.cx, "cy": o.cy,
                         "radius": o.radius, "angle": o.angle, "visible": o.visible} for o in objects]}
    assert objects_from_meta(meta) == objects
    assert objects_from_meta({}) is None


def test_caption_loss_ignores_duplicate_captions_and_uses_hard_negatives() -> None:
    torch.manual_seed(0)
    image = F.normalize(torch.randn(4, 8), dim=-1)
    text = image.clone()  # each caption matches its image exactly
    tokens = torch.tensor([[1, 2], [1, 2], [3, 4], [5, 6]])  # images 0 and 1 share a caption
    scale = torch.tensor(10.0)
    with_dup = caption_loss(image, text, scale, tokens)
    text[1] = text[0]  # the shared caption now embeds identically: a duplicate must not count against image 1
    plain = caption_loss(image, text, scale, torch.tensor([[1, 2], [7, 8], [3, 4], [5, 6]]))
    masked = caption_loss(image, text, scale, tokens)
    assert masked < plain and torch.isfinite(with_dup)
    negatives = image.clone()  # a false caption as close as the true one raises the loss
    hard = caption_loss(image, image, scale, torch.arange(8).view(4, 2), negatives, torch.tensor([1, 1, 0, 0]).bool())
    easy = caption_loss(image, image, scale, torch.arange(8).view(4, 2), -negatives, torch.tensor([1, 1, 0, 0]).bool())
    none = caption_loss(image, image, scale, torch.arange(8).view(4, 2))
    assert hard > easy >= none - 1e-6


def test_conv_stem_keeps_the_patch_grid_and_the_sigrl_head_shapes() -> None:
    plain = resolve_arch("clip-world-tiny")
    stem = resolve_arch("clip-world-stem")
    assert {k: v for k, v in stem.items() if k != "conv_stem"} == plain
    torch.manual_seed(0)
    with_stem, without = build_clip(stem).eval(), build_clip(plain).eval()
    assert isinstance(with_stem.visual.conv1, ConvStem)
    x = torch.randn(2, 3, 64, 64)
    assert with_stem.visual.conv1(x).shape == without.visual.conv1(x).shape == (2, 192, 8, 8)
    g, feats = encode_image_features(with_stem.visual, x)
    g0, feats0 = encode_image_features(without.visual, x)
    assert g.shape == g0.shape == (2, 128) and feats.shape == feats0.shape == (2, 64, 128)
    # the SigRL model on a stem backbone scores [B, N] as on the patch convolution
    cfg = load_config("sigrl-tiny")
    arch = dict(cfg.backbone.arch) | {"conv_stem": {"channels": [16, 32, 32]}}
    model = create_model(dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, arch=arch))).eval()
    labels = model.encode_labels(["red circle", "blue star", "green heart"])
    with torch.no_grad():
        scores = model(torch.randn(2, 3, 32, 32), labels)
    assert scores.shape == (2, 3) and torch.isfinite(scores).all()


def test_a_frozen_stem_keeps_its_batch_norm_statistics_in_train_mode() -> None:
    stem = ConvStem([8, 8, 8], 16)
    for p in stem.parameters():
        p.requires_grad_(False)
    stem.train()
    before = stem.body[1].running_mean.clone()
    stem(torch.randn(4, 3, 16, 16) + 3.0)
    assert torch.equal(before, stem.body[1].running_mean)
    for p in stem.parameters():
        p.requires_grad_(True)
    stem.train()
    stem(torch.randn(4, 3, 16, 16) + 3.0)
    assert not torch.equal(before, stem.body[1].running_mean)


"""The clip variant is open_clip zero-shot; mkt equals SigRL with both modules off; text trimming is exact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sigrl.model import SigRL, create_model
from sigrl.model.text import encode_tokens, make_prompts

LABELS = ["red circle", "blue square", "green triangle", "yellow star", "dog"]


def _variant(model: SigRL, **head) -> SigRL:
    clone = SigRL(model.config.replace(head=head), model.clip, model.arch).eval()
    clone.load_state_dict(model.state_dict(), strict=False)
    return clone


def test_clip_variant_is_open_clip_zero_shot(tiny_model, tiny_images):
    clip_model = _variant(tiny_model, variant="clip")
    images = tiny_model.normalize_uint8(tiny_images)
    with torch.no_grad():
        ours = clip_model(images, clip_model.encode_labels(LABELS))
        tokens = clip_model.tokenizer(make_prompts(LABELS, clip_model.config.text.prompt))
        img = tiny_model.clip.encode_image(images, normalize=True)
        txt = tiny_model.clip.encode_text(tokens, normalize=True)
        reference = img @ txt.T
    assert (ours - reference).abs().max().item() <= 1e-5


def test_text_context_trimming_is_exact(tiny_model):
    tokens = tiny_model.tokenizer(make_prompts(LABELS, "a photo of a {label}"))
    with torch.no_grad():
        trimmed = encode_tokens(tiny_model.clip, tokens)
        full = tiny_model.clip.encode_text(tokens)
    assert (tokens != 0).sum(1).max() < tokens.shape[1]  # something was actually trimmed
    assert (trimmed - full).abs().max().item() <= 1e-5


def test_mkt_is_sigrl_with_both_modules_off(tiny_model, tiny_images):
    images = tiny_model.normalize_uint8(tiny_images)
    mkt = _variant(tiny_model, variant="mkt")
    off = _variant(tiny_model, variant="sigrl", gmc=False, svfr=False)
    with torch.no_grad():
        a = mkt(images, mkt.encode_labels(LABELS))
        b = off(images, off.encode_labels(LABELS))
        # and by hand: top-k patch cosine mean + global cosine, each normalised over labels
        g, feats = tiny_model.encode_image(images)
        h = tiny_model.embed_labels(LABELS)
        sims = F.normalize(feats, dim=-1) @ F.normalize(h, dim=-1).T
        local = sims.topk(tiny_model.config.head.topk, dim=1).values.mean(1)
        glob = F.normalize(g, dim=-1) @ F.normalize(h, dim=-1).T
        by_hand = (local / local.norm(dim=1, keepdim=True) + glob / glob.norm(dim=1, keepdim=True)) / 2
    assert (a - b).abs().max().item() <= 1e-6
    assert (a - by_hand).abs().max().item() <= 1e-5


@pytest.mark.parametrize("head", [dict(gmc=False), dict(svfr=False), dict(variant="mkt"), dict(variant="clip")])
def test_ablations_have_only_their_modules(head):
    m = _variant(create_model("sigrl-tiny"), **head)
    assert (m.gmc is not None) == m.config.head.uses_gmc
    assert (m.svfr is not None) == m.config.head.uses_svfr


def test_backbone_features_match_open_clip(tiny_model, tiny_images):
    images = tiny_model.normalize_uint8(tiny_images)
    with torch.no_grad():
        g, feats = tiny_model.encode_image(images)
        pooled = tiny_model.clip.encode_image(images)
    assert feats.shape == (3, 16, tiny_model.dim)
    assert (g - pooled).abs().max().item() <= 1e-5


def test_graph_wrappers_keep_the_model_mode(tiny_model):
    from sigrl.model.graphs import ImageGraph, TextGraph

    assert not tiny_model.training
    for wrapper in (TextGraph(tiny_model), ImageGraph(tiny_model)):
        assert not wrapper.training
        wrapper.train(wrapper.training)  # what exporters do on exit: restore recursively
        assert not tiny_model.gmc.training

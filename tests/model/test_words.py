"""Labels composed of their words (text.compose "words") and the best-patch head (variant "patch"):
the same figures as the zero-shot probe's patch-words rule, the same in every runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sigrl.errors import SigrlError
from sigrl.evaluate import score_variants, variant_model
from sigrl.model import SigRL
from sigrl.model.text import encode_labels
from sigrl.train.zeroshot import patch_word_scores
from sigrl.words import compose_words, split_words, word_mix

LABELS = ["red star", "blue square", "red square", "star"]


def _words_model(model: SigRL) -> SigRL:
    return SigRL(model.config.replace(head={"variant": "patch"}, text={"compose": "words"}), model.clip, model.arch).eval()


def test_split_words_and_mix():
    words, mix = split_words(LABELS)
    assert words == ["blue", "red", "square", "star"]
    assert mix.dtype == np.float32 and mix.shape == (4, 4)
    np.testing.assert_array_equal(mix[0], [0, 0.5, 0, 0.5])  # red star
    np.testing.assert_array_equal(mix[3], [0, 0, 0, 1])  # a one-word label is its word
    with pytest.raises(SigrlError, match="'green star' has words \\['green'\\]"):
        word_mix(["green star"], words)
    with pytest.raises(SigrlError, match="empty"):
        split_words([])


def test_compose_averages_unit_word_vectors():
    emb = np.array([[3.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    got = compose_words(emb, np.array([[0.5, 0.5], [1.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(got, [[0.5, 0.5], [1.0, 0.0]])  # the scale of a word's embedding does not count


def test_words_need_a_per_label_head(tiny_model):
    with pytest.raises(SigrlError, match="compose 'words' needs a head without GMC and SVFR"):
        tiny_model.config.replace(text={"compose": "words"})  # the full SigRL head
    with pytest.raises(SigrlError, match="text.compose must be one of"):
        tiny_model.config.replace(head={"variant": "patch"}, text={"compose": "sentences"})
    tiny_model.config.replace(head={"variant": "sigrl", "gmc": False, "svfr": False}, text={"compose": "words"})


def test_a_label_is_the_mean_of_its_words(tiny_model):
    words_model = _words_model(tiny_model)
    h = words_model.embed_labels(LABELS)  # [4, D]
    single = F.normalize(encode_labels(tiny_model.clip, tiny_model.tokenizer, ["red", "star"],
                                       tiny_model.config.text.prompt), dim=-1)
    assert torch.allclose(h[0], single.mean(0), atol=1e-6)
    assert torch.allclose(h[3], single[1], atol=1e-6)
    prompt_h = tiny_model.embed_labels(LABELS)  # the label strings themselves: another embedding
    assert not torch.allclose(F.normalize(h, dim=-1), F.normalize(prompt_h, dim=-1), atol=1e-3)


def test_patch_head_scores_the_best_patch(tiny_model, tiny_images):
    words_model = _words_model(tiny_model)
    x = tiny_model.normalize_uint8(tiny_images)
    with torch.no_grad():
        scores = words_model(x, words_model.encode_labels(LABELS))  # [3, 4]
        _, feats = tiny_model.encode_image(x)  # [3, P, D]
        h = words_model.embed_labels(LABELS)
        best = (F.normalize(feats, dim=-1) @ F.normalize(h, dim=-1).T).amax(1)
    assert torch.allclose(scores, best, atol=1e-6)
    # The probe's rule (unit patches against the unnormalised mean of unit words) ranks each label's
    # column the same way: it differs only by the label's norm.
    probe = patch_word_scores(F.normalize(feats, dim=-1), h)
    assert torch.allclose(probe, scores * h.norm(dim=-1), atol=1e-5)


def test_eval_variant_patch_words(tiny_model, tiny_images):
    models = {v: variant_model(tiny_model, v) for v in ("clip", "patch-words")}
    assert models["patch-words"].config.text.compose == "words" and models["clip"].config.text.compose == "prompt"
    out = score_variants(models, tiny_images.permute(0, 3, 1, 2), {"all": LABELS})
    x = tiny_model.normalize_uint8(tiny_images)
    with torch.no_grad():
        direct = _words_model(tiny_model)(x, _words_model(tiny_model).encode_labels(LABELS)).numpy()
        clip_direct = models["clip"](x, models["clip"].encode_labels(LABELS)).numpy()
    np.testing.assert_allclose(out["patch-words"]["all"], direct, atol=1e-5)
    np.testing.assert_allclose(out["clip"]["all"], clip_direct, atol=1e-5)  # each head its own embedding
    # The baselines keep their published form on a word-composed checkpoint: label prompts.
    assert variant_model(_words_model(tiny_model), "mkt").config.text.compose == "prompt"

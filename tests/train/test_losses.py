"""The training losses against values worked out by hand on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from sigrl.train import losses as L


def test_ranking_hinge_divides_each_image_by_its_violating_pairs():
    scores = torch.tensor([[0.9, 0.1, -0.5, 0.3], [0.0, 0.2, 0.4, 0.0]])
    targets = torch.tensor([[1, -1, -1, 0], [1, -1, 1, 0]])
    # image 0, margin 0.5: pairs (0,1): 0.5+0.1-0.9 = -0.3 -> 0; (0,2): 0.5-0.5-0.9 -> 0. No violation: 0.
    # image 1: pos {0, 2}, neg {1}: (0,1): 0.5+0.2-0.0 = 0.7; (2,1): 0.5+0.2-0.4 = 0.3 -> (0.7+0.3)/2 = 0.5
    assert L.ranking_loss(scores, targets, margin=0.5).item() == pytest.approx((0.0 + 0.5) / 2)
    # margin 1: image 0: (0,1): 0.2, (0,2): 1-0.5-0.9 = -0.4 -> 0 -> one violating pair: 0.2 / 1
    # image 1: 1.2 and 0.8 -> 1.0
    assert L.ranking_loss(scores, targets, margin=1.0).item() == pytest.approx((0.2 + 1.0) / 2)


def test_ranking_hinge_ignores_unknown_labels_and_images_without_pairs():
    scores = torch.tensor([[0.1, 5.0, 0.2], [3.0, -3.0, 0.0]])
    targets = torch.tensor([[1, 0, -1], [0, 0, 0]])
    # only the pair (0, 2) counts in image 0: 1 + 0.2 - 0.1 = 1.1; image 1 has no pairs: 0
    assert L.ranking_loss(scores, targets).item() == pytest.approx(1.1 / 2)


def test_ranking_hinge_gradient_flows_only_through_violating_pairs():
    scores = torch.tensor([[0.0, 2.0, 0.5]], requires_grad=True)
    targets = torch.tensor([[-1, 1, -1]])
    L.ranking_loss(scores, targets).backward()
    # pairs (1,0): 1+0-2 = -1 -> 0; (1,2): 1+0.5-2 = -0.5 -> 0: nothing violates, zero gradient
    assert scores.grad.abs().sum().item() == 0.0


def test_an_is_bce_with_unknowns_as_negatives():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    targets = torch.tensor([[1, 0, 0]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = (-math.log(sig(2.0)) - math.log(1 - sig(-1.0)) - math.log(1 - sig(0.5))) / 3
    assert L.an_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_em_maximises_entropy_on_unknowns():
    logits = torch.tensor([[1.0, 0.0, -2.0]])
    targets = torch.tensor([[1, 0, 0]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    ent = lambda p: -p * math.log(p) - (1 - p) * math.log(1 - p)  # noqa: E731
    alpha = 0.2
    expected = (-math.log(sig(1.0)) - alpha * ent(0.5) - alpha * ent(sig(-2.0))) / 3
    assert L.em_loss(logits, targets, alpha).item() == pytest.approx(expected, rel=1e-6)
    assert L.binary_entropy(torch.tensor(0.0)).item() == pytest.approx(math.log(2), rel=1e-6)


def test_em_pl_uses_a_smoothed_positive_target_on_pseudo_positives():
    logits = torch.tensor([[1.0, 0.5, -1.0]])
    targets = torch.tensor([[1, 0, 0]])
    pseudo = torch.tensor([[True, True, False]])  # the observed positive stays a plain positive
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    ent = lambda p: -p * math.log(p) - (1 - p) * math.log(1 - p)  # noqa: E731
    alpha, beta = 0.1, 0.7
    smoothed = -beta * math.log(sig(0.5)) - (1 - beta) * math.log(1 - sig(0.5))
    expected = (-math.log(sig(1.0)) + smoothed - alpha * ent(sig(-1.0))) / 3
    assert L.em_pl_loss(logits, targets, pseudo, alpha, beta).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_is_l1_between_normalised_features():
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    teacher = torch.tensor([[6.0, 8.0], [0.0, 2.0]])
    # image 0: same direction -> 0; image 1: |1-0| + |0-1| = 2 -> mean 1
    assert L.distillation_loss(student, teacher).item() == pytest.approx(1.0)


def test_pseudo_positives_threshold_the_zero_shot_softmax():
    feats = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    got = L.pseudo_positives(feats, labels, temperature=2.0, threshold=0.3)
    # image 0: cos (1, 0, -1) -> softmax(2, 0, -2) = (0.867, 0.117, 0.016)
    # image 1: cos (0.6, 0.8, -0.6) -> softmax(1.2, 1.6, -1.2) = (0.389, 0.580, 0.035)
    assert got.tolist() == [[True, False, False], [True, True, False]]


def test_logit_scale_is_monotone_and_label_count_invariant():
    scale = L.LogitScale(init_scale=4.0, init_bias=-1.0)
    scores = torch.tensor([[0.5, 0.0, -0.5, 0.0]])
    assert scale(scores).tolist()[0] == pytest.approx([4 * 2 * 0.5 - 1, -1, -4 * 2 * 0.5 - 1, -1])


def test_sqrt_n_scaled_ranking_has_zero_loss_on_a_well_separated_batch():
    # label-normalised scores (each row has unit norm): positives clearly above negatives, but by
    # far less than the reference margin of 1
    n = 16
    raw = torch.full((2, n), 0.1)
    raw[0, :2] = 0.6
    raw[1, 5] = 0.8
    scores = torch.nn.functional.normalize(raw, dim=-1)
    targets = -torch.ones(2, n, dtype=torch.long)
    targets[0, :2] = 1
    targets[1, 5] = 1
    gap = (scores[0, 0] - scores[0, 2]).item()
    assert gap < 1.0 and math.sqrt(n) * gap > 1.0
    assert L.ranking_loss(scores, targets, margin=1.0).item() > 0  # raw scores: every pair violates
    scale = L.rank_scale("sqrt_n", n)
    assert scale == pytest.approx(4.0)
    assert L.ranking_loss(scores, targets, margin=1.0, scale=scale).item() == 0.0
    # and a pair inside the margin still counts, on the scaled values
    close = scores.clone()
    close[1, 0] = close[1, 5] - 0.5 / scale
    assert L.ranking_loss(close[1:], targets[1:], margin=1.0, scale=scale).item() == pytest.approx(0.5)
    assert L.rank_scale("none", n) == 1.0

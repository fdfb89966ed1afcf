import json
import math

import numpy as np
import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.decisions.rule import decide, make_rule, near_ties, select
from sigrl.tagging.decisions.thresholds import fit_thresholds, read_thresholds, write_thresholds
from sigrl.tagging.records import batch_records

LABELS = ["cat", "dog", "car", "tree"]
SCORES = np.array(
    [
        [0.9, 0.2, 0.6, 0.6],
        [0.1, 0.3, 0.2, 0.0],
        [0.5, 0.8, 0.7, 0.75],
    ]
)


def test_global_threshold():
    rule = make_rule(LABELS, threshold=0.55)
    assert decide(SCORES, rule) == [[("cat", 0.9), ("car", 0.6), ("tree", 0.6)], [], [("dog", 0.8), ("tree", 0.75), ("car", 0.7)]]


def test_per_label_overrides_global_and_topk_limits():
    rule = make_rule(LABELS, threshold=0.55, per_label={"tree": 0.7, "cat": 0.05}, topk=2)
    assert decide(SCORES, rule) == [[("cat", 0.9), ("car", 0.6)], [("cat", 0.1)], [("dog", 0.8), ("tree", 0.75)]]


def test_topk_alone_and_ties_go_to_earlier_label():
    rule = make_rule(LABELS, topk=2)
    assert decide(SCORES, rule) == [[("cat", 0.9), ("car", 0.6)], [("dog", 0.3), ("car", 0.2)], [("dog", 0.8), ("tree", 0.75)]]


def test_nan_never_chosen():
    rule = make_rule(LABELS, threshold=0.0)
    mask = select(np.array([[np.nan, 0.1, -0.1, 0.0]]), rule)
    assert mask.tolist() == [[False, True, False, True]]


def test_rule_errors():
    with pytest.raises(SigrlError, match="no threshold for 2 label"):
        make_rule(LABELS, per_label={"cat": 0.1, "dog": 0.2})
    with pytest.raises(SigrlError, match=r"not in the label set: \['bus'\]"):
        make_rule(LABELS, threshold=0.5, per_label={"bus": 0.1})
    with pytest.raises(SigrlError, match="topk"):
        make_rule(LABELS, topk=0)
    with pytest.raises(SigrlError, match="scores mode"):
        make_rule(LABELS, threshold=0.1, scores_mode="some")


def test_threshold_files(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("# fitted\ncat\t0.25\n\nred car\t-1e-2\n")
    assert read_thresholds(tsv, ["cat", "red car"]) == {"cat": 0.25, "red car": -0.01}
    js = tmp_path / "t.json"
    js.write_text(json.dumps({"thresholds": {"cat": 0.5}, "fitted_on": "val.jsonl"}))
    assert read_thresholds(js, LABELS) == {"cat": 0.5}
    write_thresholds(tmp_path / "w.json", ["cat", "dog"], np.array([0.1, 0.2]), model="m1")
    assert read_thresholds(tmp_path / "w.json", LABELS) == {"cat": 0.1, "dog": 0.2}
    write_thresholds(tmp_path / "w.tsv", ["cat", "dog"], np.array([0.1, 0.2]))
    assert read_thresholds(tmp_path / "w.tsv", LABELS) == {"cat": 0.1, "dog": 0.2}


@pytest.mark.parametrize(
    "content, match",
    [
        ("cat\t0.1\nbus\t0.2\n", r"labels not in the label set: 'bus' \(line 2\)"),
        ("cat 0.1\n", r"line 1: expected 'label<TAB>threshold'"),
        ("cat\tlow\n", r"line 1: expected"),
        ("cat\tnan\n", r"line 1: expected"),
        ("cat\t0.1\ncat\t0.2\n", r"'cat' appears on lines 1 and 2"),
    ],
)
def test_threshold_file_errors(tmp_path, content, match):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(SigrlError, match=match):
        read_thresholds(path, LABELS)


def test_threshold_json_errors(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"cat": "high"}')
    with pytest.raises(SigrlError, match="finite number"):
        read_thresholds(path, LABELS)
    path.write_text('{"dog": 0.1, "bus": 0.2}')
    with pytest.raises(SigrlError, match="'bus'"):
        read_thresholds(path, LABELS)


def brute_force_f1(scores, positive):
    best = (-1.0, None)
    for t in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= t
        tp = (pred & positive).sum()
        f1 = 2 * tp / (pred.sum() + positive.sum())
        if f1 > best[0]:
            best = (f1, t)
    return best


def test_fit_thresholds_matches_brute_force():
    rng = np.random.default_rng(0)
    targets = rng.random((60, 5)) < 0.3
    scores = np.round(targets * 0.4 + rng.normal(0, 0.3, size=(60, 5)), 1)  # many ties
    thresholds, f1 = fit_thresholds(scores, targets)
    for c in range(5):
        want_f1, _ = brute_force_f1(scores[:, c], targets[:, c])
        assert f1[c] == pytest.approx(want_f1)
        pred = scores[:, c] >= thresholds[c]
        got = 2 * (pred & targets[:, c]).sum() / (pred.sum() + targets[:, c].sum())
        assert got == pytest.approx(want_f1)  # the threshold reproduces the best F1


def test_fit_thresholds_midpoints_no_positives_and_unknowns():
    scores = np.array([[0.9, 0.5], [0.7, 0.4], [0.2, 0.3], [0.1, 0.95]])
    targets = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    known = np.array([[1, 1], [1, 1], [1, 1], [1, 0]], dtype=bool)
    thresholds, f1 = fit_thresholds(scores, targets, known)
    assert thresholds[0] == pytest.approx((0.7 + 0.2) / 2) and f1[0] == 1.0
    # Label 1's only positive is unknown: no positives left, never chosen.
    assert thresholds[1] > 0.5 and f1[1] == 0.0
    assert not math.isinf(thresholds[1])


def test_batch_records_modes():
    rule = make_rule(LABELS, threshold=0.55, topk=1, scores_mode="all")
    records = batch_records(["a.jpg", "b.jpg"], SCORES[:2] + 1e-9, rule, failures=[("c.jpg", "zero-byte file")])
    assert records[0] == {"path": "a.jpg", "tags": [{"label": "cat", "score": 0.9}], "scores": [0.9, 0.2, 0.6, 0.6], "status": "ok", "error": None}
    assert records[1]["tags"] == [] and records[1]["scores"] == [0.1, 0.3, 0.2, 1e-09]  # 6 significant digits, not 6 decimals
    assert records[2] == {"path": "c.jpg", "tags": [], "scores": None, "status": "error", "error": "zero-byte file"}
    tags_only = batch_records(["a.jpg"], SCORES[:1], make_rule(LABELS, threshold=0.55))
    assert tags_only[0]["scores"] is None and len(tags_only[0]["tags"]) == 3


def test_near_ties_against_thresholds_and_between_the_kth_and_next_label():
    at_threshold = make_rule(LABELS, threshold=0.5)
    scores = np.array([[0.9, 0.2, 0.503, 0.1], [0.9, 0.2, 0.6, 0.1], [0.9, 0.2, 0.497, 0.1]])
    assert near_ties(scores, at_threshold, 0.005, 0.002).tolist() == [True, False, True]
    top2 = make_rule(LABELS, topk=2)
    scores = np.array([[0.9, 0.6, 0.599, 0.1], [0.9, 0.6, 0.59, 0.1], [0.9, 0.6, 0.6, 0.6], [0.6, 0.6, 0.1, 0.0]])
    assert near_ties(scores, top2, 0.005, 0.002).tolist() == [True, False, True, False]
    both = make_rule(LABELS, threshold=0.5, topk=2)
    scores = np.array(
        [
            [0.9, 0.8, 0.3, 0.2],  # the third label fails the threshold: it does not compete
            [0.9, 0.45, 0.4, 0.1],  # fewer than k labels pass
            [0.9, 0.8, 0.799, 0.2],  # the 2nd and 3rd of those that pass are close
        ]
    )
    assert near_ties(scores, both, 0.005, 0.002).tolist() == [False, False, True]

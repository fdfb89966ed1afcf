"""The on-disk label cache: keys, round trip, corruption recovery, default location."""

from __future__ import annotations

import numpy as np
import pytest

from sigrl.runtime.label_cache import LabelArrays, LabelCache, cache_key, default_cache_dir


def _side(n: int, seed: int = 0) -> LabelArrays:
    rng = np.random.default_rng(seed)
    return LabelArrays(rng.standard_normal((n, 8)).astype(np.float32), rng.standard_normal((n, 8)).astype(np.float32))


def test_key_depends_on_model_labels_order_and_prompt():
    base = cache_key("m1", ["a", "b"], "a {label}")
    assert base == cache_key("m1", ("a", "b"), "a {label}")
    others = {
        cache_key("m2", ["a", "b"], "a {label}"),
        cache_key("m1", ["a", "c"], "a {label}"),
        cache_key("m1", ["b", "a"], "a {label}"),
        cache_key("m1", ["a", "b"], "the {label}"),
        cache_key("m1", ["a b"], "a {label}"),
    }
    assert base not in others and len(others) == 5


def test_round_trip_and_counters(tmp_path):
    cache = LabelCache(tmp_path)
    assert cache.get("m", ["a", "b", "c"], "p {label}") is None and cache.misses == 1
    side = _side(3)
    path = cache.put("m", ["a", "b", "c"], "p {label}", side)
    assert path.parent == tmp_path and not list(tmp_path.glob("*.tmp"))
    got = cache.get("m", ["a", "b", "c"], "p {label}")
    np.testing.assert_array_equal(got.embeddings, side.embeddings)
    np.testing.assert_array_equal(got.context, side.context)
    assert (cache.hits, cache.writes) == (1, 1)
    assert cache.get("m", ["a", "b", "c"], "q {label}") is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_labels"])
def test_corrupt_entry_ignored_then_rewritten(tmp_path, damage):
    cache = LabelCache(tmp_path)
    labels, side = ["x", "y"], _side(2, seed=1)
    path = cache.put("m", labels, "p {label}", side)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid file for other labels under this key (e.g. copied by hand)
        other = cache.put("m", ["x", "z"], "p {label}", _side(2, seed=2))
        path.write_bytes(other.read_bytes())
    assert cache.get("m", labels, "p {label}") is None
    cache.put("m", labels, "p {label}", side)
    np.testing.assert_array_equal(cache.get("m", labels, "p {label}").context, side.context)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGRL_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "labels"
    assert LabelCache().directory == tmp_path / "c" / "labels"
    monkeypatch.delenv("SIGRL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "sigrl" / "labels"


def test_corrupt_entry_recovered_by_runner(tiny_model, tmp_path):
    from sigrl.runtime.torch_runner import TorchRunner

    images = np.zeros((1, 32, 32, 3), np.uint8)
    cache = LabelCache(tmp_path)
    expected = TorchRunner(tiny_model, label_cache=cache).infer(images, ["a", "b", "c"])
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"\x00" * 64)
    runner = TorchRunner(tiny_model, label_cache=LabelCache(tmp_path))
    np.testing.assert_allclose(runner.infer(images, ["a", "b", "c"]), expected, atol=1e-6)
    assert runner.text_runs == 1 and runner.label_cache.writes == 1
    assert LabelCache(tmp_path).get(runner.model_hash, ["a", "b", "c"], runner.prompt) is not None


def test_model_hash_changes_with_weights(tiny_model):
    import copy

    import torch

    from sigrl.runtime.torch_runner import weights_sha256

    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other.svfr.fuse_label.weight[0, 0] += 1e-3
    assert weights_sha256(other) != weights_sha256(tiny_model)
    assert weights_sha256(copy.deepcopy(tiny_model)) == weights_sha256(tiny_model)

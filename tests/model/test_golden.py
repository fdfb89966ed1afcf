"""The seeded tiny model reproduces the committed golden scores (tests/make_golden.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import make_golden  # noqa: E402


@pytest.fixture(scope="module")
def fresh():
    return make_golden.compute()


@pytest.mark.parametrize("variant", sorted(make_golden.VARIANTS))
def test_golden_scores(fresh, variant):
    golden = json.loads(make_golden.GOLDEN.read_text())
    expected = np.array(golden["scores"][variant])
    got = np.array(fresh[variant])
    assert got.shape == expected.shape == (2, len(make_golden.LABELS))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_variants_really_differ(fresh):
    a, b = np.array(fresh["sigrl"]), np.array(fresh["mkt"])
    assert np.abs(a - b).max() > 1e-3

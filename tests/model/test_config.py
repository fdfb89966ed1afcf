from __future__ import annotations

import json

import pytest

from sigrl.config import config_from_dict, list_configs, load_config
from sigrl.errors import SigrlError
from sigrl.model import create_model


def test_shipped_configs_parse():
    names = list_configs()
    assert {"sigrl-tiny", "sigrl-vit-b16", "sigrl-vit-b32"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name
        assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "head": {"variant": "bogus"}}, "variant"),
        ({"name": "x", "head": {"colour": 1}}, "unknown keys"),
        ({"name": "x", "text": {"prompt": "no placeholder"}}, "label"),
        ({"head": {}}, "missing 'name'"),
        ({"name": "x", "preprocess": {"image_size": 224, "resize_size": 200}}, "resize_size"),
    ],
)
def test_bad_configs_are_explained(data, message):
    with pytest.raises(SigrlError, match=message):
        config_from_dict(data)


def test_config_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SigrlError, match="bad.json"):
        load_config(bad)
    with pytest.raises(SigrlError, match="shipped configs"):
        load_config("no-such-model")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(load_config("sigrl-tiny").to_dict()))
    assert load_config(good) == load_config("sigrl-tiny").replace(preprocess=load_config(good).preprocess)


@pytest.mark.parametrize("name", ["sigrl-vit-b32"])
def test_reference_backbones_build(name):
    model = create_model(name)
    assert model.dim == 512
    assert model.config.preprocess.image_size == 224

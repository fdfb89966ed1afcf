"""An export manifest edited to lie is refused in one line with exit 2 (issue 14).

Each ONNX file carries its own metadata; the manifest must agree with the graph it lists. Run
through the real entry point (`sigrl tag` on the edited export) and through the reader.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

from sigrl.cli.main import run
from sigrl.errors import SigrlError
from sigrl.runtime.manifest import read_manifest, read_onnx_metadata


def _edit_name(m):
    m["model"]["name"] = "vit-huge"


def _edit_mean(m):
    m["preprocess"]["mean"] = [0.5, 0.5, 0.5]


def _edit_size(m):
    m["preprocess"]["image_size"] = 24  # still a valid crop of the resized image


def _swap_graphs(m):
    m["graphs"]["text"]["file"], m["graphs"]["image"]["file"] = "image.onnx", "text.onnx"
    m["variants"]["image"]["fp32"] = "text.onnx"


def _int8_is_text(m):
    m["variants"]["image"]["int8"] = "text.onnx"


def _edit_prompt(m):
    m["prompt"] = "a photo of a {label}"


LIES = {"model name": (_edit_name, []), "mean": (_edit_mean, []), "image size": (_edit_size, []),
        "graph files swapped": (_swap_graphs, []), "int8 variant is the text graph": (_int8_is_text, ["--precision", "int8"]),
        "prompt": (_edit_prompt, [])}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lies")
    (root / "images").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "images" / "a.png")
    (root / "labels.txt").write_text("cat\ndog\n")
    return root


def test_metadata_reader_matches_onnx(tiny_export):
    for name in ("text.onnx", "image.onnx", "image.int8.onnx"):
        path = tiny_export / name
        assert read_onnx_metadata(path) == {e.key: e.value for e in onnx.load(str(path)).metadata_props}


def test_honest_export_passes(tiny_export):
    manifest = read_manifest(tiny_export)
    assert manifest.text_graph().name == "text.onnx" and manifest.image_graph("int8").name == "image.int8.onnx"


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_manifest_is_a_usage_error(tiny_export, folder, tmp_path, capsys, lie):
    edit, extra = LIES[lie]
    export = tmp_path / "export"
    shutil.copytree(tiny_export, export)
    manifest = json.loads((export / "manifest.json").read_text())
    edit(manifest)
    (export / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    code = run(["tag", str(folder / "images"), "--labels", str(folder / "labels.txt"), "--out", str(tmp_path / "t.jsonl"),
                "--model", str(export), "--label-cache", str(tmp_path / "cache"), "--quiet", *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "re-export" in lines[0], captured.err
    assert not (tmp_path / "t.jsonl").exists()


def test_a_graph_without_sigrl_metadata_is_refused(tiny_export, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(tiny_export, export)
    proto = onnx.load(str(export / "text.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(export / "text.onnx"))
    with pytest.raises(SigrlError, match="not a graph written by `sigrl export`"):
        read_manifest(export).text_graph()

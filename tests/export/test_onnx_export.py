"""The tiny ONNX export: parity values, manifest and metadata_props, dynamic N and B, overwrite guard."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import sigrl
from sigrl.errors import SigrlError
from sigrl.export.manifest import prepare_out_dir, read_manifest
from sigrl.export.parity import FP32_TOL, spearman, top_k_agreement
from sigrl.model.graphs import TextGraph, tokenize_labels


def test_parity_passes_with_values(tiny_export):
    report = json.loads((tiny_export.out_dir / "parity.json").read_text())
    assert report["passed"] is True
    cases = {(c["variant"], c["batch"], c["labels"]): c for c in report["cases"]}
    # B = 1, an odd N, N = 1, and N beyond the tiny config's label chunk (16) are all covered.
    assert {(1, 1), (1, 5), (2, 7), (3, 12), (2, 33)} == {(b, n) for v, b, n in cases if v == "fp32"}
    fp32 = [c for c in report["cases"] if c["variant"] == "fp32"]
    assert max(c["max_abs_diff"] for c in fp32) < 2e-6  # measured ~3e-7; the bar is 1e-4
    assert all(c["top5_agreement"] == 1.0 for c in fp32)
    int8 = report["variants"]["int8"]
    assert 1e-5 < int8["max_abs_diff"] < 0.05  # quantization does move the scores, a little
    assert int8["top5_agreement"] >= 0.9 and int8["passed"]
    assert report["bars"]["fp32"]["max_abs_diff"] == FP32_TOL
    assert tiny_export.parity.passed


def test_manifest_contract(tiny_export):
    man = read_manifest(tiny_export.out_dir)
    assert man["format"] == "sigrl-export" and man["format_version"] == 1
    assert man["sigrl_version"] == sigrl.__version__
    assert man["model"]["name"] == "sigrl-tiny" and man["model"]["config"]["head"]["label_chunk"] == 16
    assert man["model"]["labels"] is None and man["model"]["source"] == "sigrl-tiny"
    assert man["model"]["source_sha256"] is None
    assert man["preprocess"]["image_size"] == 32 and len(man["preprocess"]["mean"]) == 3
    assert man["prompt"] == "There is a {label} in the scene"
    assert man["tokenizer"] == {"kind": "open_clip-bpe", "context_length": 16}
    assert man["graphs"]["text"]["inputs"] == {"tokens": ["N", 16]}
    assert man["graphs"]["image"]["inputs"]["images"] == ["B", 32, 32, 3]
    assert man["graphs"]["image"]["outputs"] == {"scores": ["B", "N"]}
    assert man["variants"]["image"] == {"fp32": "image.onnx", "int8": "image.int8.onnx"}
    assert man["engines"] == {} and man["parity"] == "parity.json"


def test_metadata_props_and_tensor_names(tiny_export):
    for name, graph, inputs, outputs in (
        ("text.onnx", "text", ["tokens"], ["embeddings", "context"]),
        ("image.onnx", "image", ["images", "embeddings", "context"], ["scores"]),
    ):
        proto = onnx.load(str(tiny_export.out_dir / name), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        assert props["sigrl.graph"] == graph and props["sigrl.format"] == "sigrl-export"
        assert json.loads(props["sigrl.model_config"])["name"] == "sigrl-tiny"
        assert json.loads(props["sigrl.tokenizer"])["context_length"] == 16
        assert props["sigrl.prompt"] == "There is a {label} in the scene"
        assert [i.name for i in proto.graph.input] == inputs
        assert [o.name for o in proto.graph.output] == outputs
    image = onnx.load(str(tiny_export.out_dir / "image.onnx"), load_external_data=False)
    assert image.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_text_graph_exact_for_large_odd_n_where_gmc_chunks_rows(tiny_model, tiny_export):
    # At N = 601 both GMC layers and the exported graph's GMC loop split the pair term into several
    # row blocks, and the text encoder's loop runs three blocks of labels: all must agree.
    labels = [f"tag {i}" for i in range(601)]
    session = ort.InferenceSession(str(tiny_export.out_dir / "text.onnx"), providers=["CPUExecutionProvider"])
    full = tiny_model.tokenizer([f"There is a {x} in the scene" for x in labels]).numpy()
    h, ctx = session.run(None, {"tokens": full})
    with torch.no_grad():
        ref_h, ref_ctx = TextGraph(tiny_model)(tokenize_labels(tiny_model, labels))
    assert h.shape == (601, 64)
    assert np.abs(h - ref_h.numpy()).max() < 1e-4
    assert np.abs(ctx - ref_ctx.numpy()).max() < 1e-4


def test_refuses_to_overwrite_user_data(tmp_path, tiny_export):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SigrlError, match="not empty and holds no sigrl export"):
        prepare_out_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert prepare_out_dir(tiny_export.out_dir) == tiny_export.out_dir  # a previous export is fine
    with pytest.raises(SigrlError, match="not a directory"):
        prepare_out_dir(tmp_path / "notes.txt")


def test_checkpoint_source_hash_and_labels(tmp_path, tiny_model):
    from sigrl.export.exporter import export_model
    from sigrl.checkpoint import file_sha256
    from sigrl.model import save_model

    ckpt = tmp_path / "m.safetensors"
    save_model(ckpt, tiny_model, labels=["cat", "dog", "car"])
    result = export_model(str(ckpt), tmp_path / "out")
    model = result.manifest["model"]
    assert model["labels"] == ["cat", "dog", "car"] and model["source_sha256"] == file_sha256(ckpt)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "out" / "image.onnx")).metadata_props}
    assert json.loads(props["sigrl.labels"]) == ["cat", "dog", "car"]
    assert props["sigrl.source_sha256"] == model["source_sha256"]


def test_ranking_measures():
    ref = np.array([[0.9, 0.1, 0.5, 0.3, 0.7, 0.2]])
    assert top_k_agreement(ref, ref) == 1.0 and spearman(ref, ref) == pytest.approx(1.0)
    swapped = ref.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]  # the best label falls to last
    assert top_k_agreement(ref, swapped) == pytest.approx(0.8)
    assert spearman(ref, -ref) == pytest.approx(-1.0)


def test_failed_fp32_parity_raises_after_writing_the_report(tmp_path, tiny_model, tiny_export, monkeypatch):
    import shutil

    from sigrl.export import parity

    out = tmp_path / "copy"
    shutil.copytree(tiny_export.out_dir, out)
    monkeypatch.setattr(parity, "FP32_TOL", 0.0)  # any rounding difference now fails
    with pytest.raises(SigrlError, match="disagree with PyTorch"):
        parity.check_parity(tiny_model, out, read_manifest(out), cases=((2, 7),))
    assert json.loads((out / "parity.json").read_text())["passed"] is False


def test_int8_quantizes_the_first_half_of_the_vit_blocks_and_keeps_the_rest_fp32(tiny_export):
    import re

    import onnx

    graph = onnx.load(str(tiny_export.out_dir / "image.int8.onnx")).graph
    blocks = {int(m.group(1)) for n in graph.node if (m := re.search(r"/resblocks\.(\d+)/", n.name))}
    integer = {int(m.group(1)) for n in graph.node if n.op_type == "MatMulInteger"
               and (m := re.search(r"/resblocks\.(\d+)/", n.name))}
    assert len(blocks) >= 2 and integer == set(range(len(blocks) // 2))
    assert not [n.name for n in graph.node if n.op_type == "MatMulInteger" and "/resblocks." not in n.name]
    head = [n for n in graph.node if "/svfr/" in n.name and n.op_type.startswith("MatMul")]
    assert head and all(n.op_type == "MatMul" for n in head)


def test_text_graph_loops_over_label_blocks_and_gmc_rows(tiny_export):
    # The text encoder runs in an ONNX Loop over blocks of labels, and each GMC layer's pair term
    # in a Loop over query rows: nothing in the graph grows with N x N (issue 14).
    proto = onnx.load(str(tiny_export.out_dir / "text.onnx"))
    loops = [n for n in proto.graph.node if n.op_type == "Loop"]
    assert len(loops) == 3  # label blocks, GMC layer 1, GMC layer 2
    body_ops = {n.op_type for n in loops[0].attribute[0].g.node}
    assert {"Slice", "SequenceInsert", "MatMul"} <= body_ops


def test_text_graph_memory_is_linear_in_n(tiny_model, tiny_export):
    # N = 2,000 across several label blocks (256) and GMC row blocks: held whole, the second GMC
    # layer's pair term alone would be N * N * 64 * 4 bytes = 1 GB.
    from sigrl.bench.timing import PeakRss

    labels = [f"tag {i}" for i in range(2000)]
    session = ort.InferenceSession(str(tiny_export.out_dir / "text.onnx"), providers=["CPUExecutionProvider"])
    tokens = tiny_model.tokenizer([f"There is a {x} in the scene" for x in labels]).numpy()
    with PeakRss() as rss:
        h, ctx = session.run(None, {"tokens": tokens})
    assert rss.growth_bytes < 300 * 2**20, rss.growth_bytes
    with torch.no_grad():
        ref_h, ref_ctx = TextGraph(tiny_model)(tokenize_labels(tiny_model, labels))
    assert np.abs(h - ref_h.numpy()).max() < 1e-4
    assert np.abs(ctx - ref_ctx.numpy()).max() < 1e-4

"""ONNX export of the text graph and the image graph (sigrl.model.graphs), plus the int8 variant.

Exporter: torch.onnx's TorchScript-based tracer (`dynamo=False`). With torch 2.14 the dynamo
exporter needs the extra `onnxscript` package, took ~6 s instead of <1 s for the tiny model, and
still specialised the label count N to the traced value; the tracer keeps B and N dynamic and every
export is checked at B and N different from the traced ones (parity.py).

Decisions the tracer forces, each verified by the parity cases:
- Label chunks (DESIGN.md section 5). The SVFR head loops over label chunks in Python, which a
  trace would bake for the traced N. The image graph is therefore exported with
  `head.label_chunk = None`: one whole-N head, exact for any N. Its two [B, P, N, D] intermediates
  are the memory peak, so runners bound B*N per call by choosing the batch size for the label
  count. Measured (ONNX Runtime CPU, peak RSS growth of one call): ViT-B/16 (P=196, D=512)
  20 / 75 / 149 MB at B=1 with N=16 / 48 / 96 and 158 MB at B=2, N=48, i.e. ~1.55 MB per
  image-label pair, about four live fp32 [P, D] slices per pair (the tiny config: 16 KB per pair,
  also 4 x P x D x 4 bytes). So B=8, N=81 needs ~1 GB and B=1, N=1006 ~1.6 GB; a runner with a
  memory budget M takes B = max(1, M // (N * 4 * P * D * 4)). Per-chunk graphs driven by the
  runner would cap memory for any N but cost five graphs and a runner-side schedule; not done.
- The text graph in bounded memory (onnx_text.py): the text encoder is traced once and run by an
  ONNX Loop over blocks of labels, and GMC's row loop is scripted, so it stays a Loop in the graph.
  Before, the traced GMC held the whole [N, N, heads, dim] pair term: 51 GB at N = 10,000.
- Token context: tracing fixes the sequence length of open_clip's attention, so the text graph
  takes the tokenizer's full zero-padded output [N, C] (C = context_length). Trimming to the
  longest prompt stays a PyTorch-side saving.
- Images enter as uint8 [B, S, S, 3] and are normalised inside the graph (graphs.py): 4x less
  host-to-device traffic and no float copy on the host.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from sigrl import __version__
from sigrl.errors import SigrlError
from sigrl.model.graphs import ImageGraph, LabelSideGraph, TextGraph, TokenEncoder
from sigrl.model.sigrl import SigRL
from sigrl.export.manifest import EXPORT_FORMAT, FORMAT_VERSION
from sigrl.export.onnx_text import compose_text_graph
from sigrl.export.weights import narrow_exact_fp16

log = logging.getLogger(__name__)

TEXT_FILE, IMAGE_FILE, IMAGE_INT8_FILE = "text.onnx", "image.onnx", "image.int8.onnx"
_TRACE_N, _TRACE_B = 6, 2  # parity checks other values, so a baked size cannot pass unnoticed


def context_length(model: SigRL) -> int:
    return int(model.arch.get("text_cfg", {}).get("context_length", 77))


def build_manifest(
    model: SigRL, source: str, source_sha256: str | None, labels: list[str] | None
) -> dict[str, Any]:
    """The manifest of an ONNX export (engines are added by the TensorRT step)."""
    cfg = model.config
    pre = cfg.preprocess
    size, dim, ctx = pre.image_size, model.dim, context_length(model)
    return {
        "format": EXPORT_FORMAT,
        "format_version": FORMAT_VERSION,
        "sigrl_version": __version__,
        "model": {
            "name": cfg.name,
            "config": cfg.to_dict(),
            "arch": model.arch,
            "labels": labels,
            "source": source,
            "source_sha256": source_sha256,
        },
        "preprocess": cfg.to_dict()["preprocess"],
        "prompt": cfg.text.prompt,
        "tokenizer": {"kind": "open_clip-bpe", "context_length": ctx},
        "graphs": {
            "text": {
                "file": TEXT_FILE,
                "inputs": {"tokens": ["N", ctx]},
                "outputs": {"embeddings": ["N", dim], "context": ["N", dim]},
            },
            "image": {
                "file": IMAGE_FILE,
                "inputs": {"images": ["B", size, size, 3], "embeddings": ["N", dim], "context": ["N", dim]},
                "outputs": {"scores": ["B", "N"]},
                "label_chunk": None,  # the whole label set in one head evaluation (module docstring)
            },
        },
        "variants": {"image": {"fp32": IMAGE_FILE}},
        "engines": {},
        "parity": "parity.json",
    }


def _metadata_props(manifest: Mapping[str, Any], graph: str) -> dict[str, str]:
    model = manifest["model"]
    props = {
        "sigrl.format": EXPORT_FORMAT,
        "sigrl.version": manifest["sigrl_version"],
        "sigrl.graph": graph,
        "sigrl.model_name": model["name"],
        "sigrl.model_config": json.dumps(model["config"], sort_keys=True),
        "sigrl.arch": json.dumps(model["arch"], sort_keys=True),
        "sigrl.preprocess": json.dumps(manifest["preprocess"], sort_keys=True),
        "sigrl.prompt": manifest["prompt"],
        "sigrl.tokenizer": json.dumps(manifest["tokenizer"], sort_keys=True),
        "sigrl.source": model["source"],
        "sigrl.source_sha256": model["source_sha256"] or "",
        "sigrl.graph_io": json.dumps(manifest["graphs"][graph], sort_keys=True),
    }
    if model["labels"] is not None:
        props["sigrl.labels"] = json.dumps(model["labels"])
    return props


def graph_inputs(path: Path) -> set[str]:
    import onnx

    return {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}


def _set_metadata(path: Path, props: Mapping[str, str], narrow: bool = False) -> None:
    """Write the graph's metadata; with `narrow`, also store its exactly-fp16 weights in fp16 (export/weights.py)."""
    import onnx

    proto = onnx.load(str(path))
    if narrow:
        saved = narrow_exact_fp16(proto)
        if saved:
            log.info("%s: %.1f MB of weights stored in fp16 (exactly representable)", path.name, saved / 1e6)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)


def whole_head(model: SigRL) -> SigRL:
    """A view of the model whose head evaluates all labels at once (shares every weight)."""
    view = copy.copy(model)
    view.config = model.config.replace(head={"label_chunk": None})
    return view


def trace_inputs(model: SigRL) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens [N, C] with no padding (so encode_tokens' trim is the identity) and uint8 images."""
    gen = torch.Generator().manual_seed(0)
    vocab = int(model.arch.get("text_cfg", {}).get("vocab_size", 49408))
    tokens = torch.randint(1, vocab, (_TRACE_N, context_length(model)), generator=gen)
    size = model.config.preprocess.image_size
    images = torch.randint(0, 256, (_TRACE_B, size, size, 3), generator=gen, dtype=torch.uint8)
    return tokens, images


def _export(module: torch.nn.Module, args: tuple, path: Path, names: dict[str, Any], opset: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        # Tracer warnings name the Python-side sizes; the parity cases are what proves the graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(tmp), dynamo=False, opset_version=opset, do_constant_folding=True,
            input_names=names["inputs"], output_names=names["outputs"], dynamic_axes=names["axes"],
        )
    os.replace(tmp, path)


def export_text_graph(model: SigRL, tokens: torch.Tensor, embeddings: torch.Tensor, path: Path, opset: int) -> None:
    """The text graph as two traced halves joined by onnx_text: a loop over label blocks through
    the text encoder, then the label side with GMC's row loop (memory linear in N)."""
    encoder, side = path.with_name("text.encoder.tmp.onnx"), path.with_name("text.side.tmp.onnx")
    try:
        _export(TokenEncoder(model), (tokens,), encoder, {
            "inputs": ["tokens"], "outputs": ["embeddings"], "axes": {"tokens": {0: "N"}, "embeddings": {0: "N"}},
        }, opset)
        _export(LabelSideGraph(model), (embeddings,), side, {
            "inputs": ["embeddings"], "outputs": ["context"], "axes": {"embeddings": {0: "N"}, "context": {0: "N"}},
        }, opset)
        compose_text_graph(encoder, side, path)
    finally:
        encoder.unlink(missing_ok=True)
        side.unlink(missing_ok=True)


def export_onnx(
    model: SigRL,
    out_dir: Path,
    *,
    source: str,
    source_sha256: str | None = None,
    labels: list[str] | None = None,
    opset: int = 17,
    int8: bool = False,
) -> dict[str, Any]:
    """Write text.onnx, image.onnx (and image.int8.onnx) into out_dir; return the manifest."""
    # The manifest records the model as configured; the graphs are traced from the whole-N view.
    manifest = build_manifest(model, source, source_sha256, labels)
    model = whole_head(model.eval())
    tokens, images = trace_inputs(model)
    with torch.no_grad():
        embeddings, context = TextGraph(model)(tokens)
    # Traced with autograd on: under no_grad open_clip's attention takes PyTorch's fused fast path,
    # which has no ONNX form.
    export_text_graph(model, tokens, embeddings, out_dir / TEXT_FILE, opset)
    _export(ImageGraph(model), (images, embeddings, context), out_dir / IMAGE_FILE, {
        "inputs": ["images", "embeddings", "context"], "outputs": ["scores"],
        "axes": {"images": {0: "B"}, "embeddings": {0: "N"}, "context": {0: "N"}, "scores": {0: "B", 1: "N"}},
    }, opset)
    # The tracer drops an input the head never reads (the CLIP and MKT heads take no label context):
    # the manifest names the inputs the graph has, and runners feed exactly those.
    kept = graph_inputs(out_dir / IMAGE_FILE)
    image_io = manifest["graphs"]["image"]
    image_io["inputs"] = {name: dims for name, dims in image_io["inputs"].items() if name in kept}
    if int8:  # quantised from the plain fp32 graph, before its weights are narrowed below
        quantize_image_graph(out_dir / IMAGE_FILE, out_dir / IMAGE_INT8_FILE)
        _set_metadata(out_dir / IMAGE_INT8_FILE, {**_metadata_props(manifest, "image"), "sigrl.precision": "int8"})
        manifest["variants"]["image"]["int8"] = IMAGE_INT8_FILE
    _set_metadata(out_dir / TEXT_FILE, _metadata_props(manifest, "text"), narrow=True)
    _set_metadata(out_dir / IMAGE_FILE, _metadata_props(manifest, "image"), narrow=True)
    log.info("wrote %s and %s to %s", TEXT_FILE, IMAGE_FILE, out_dir)
    return manifest


_BLOCK = re.compile(r"/resblocks\.(\d+)/")


def _first_half_of_blocks(graph: Any) -> set[str]:
    """Names of the graph's nodes inside the first half of the transformer blocks."""
    block = {node.name: int(m.group(1)) for node in graph.node if (m := _BLOCK.search(node.name))}
    half = (max(block.values()) + 1) // 2 if block else 0
    return {name for name, index in block.items() if index < half}


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def quantize_image_graph(src: Path, dst: Path) -> None:
    """ONNX Runtime dynamic quantization of the first half of the ViT blocks: int8 weights,
    activations quantized per call (CPU).

    Everything else stays fp32. Scores are normalised over the label set, so neighbouring labels
    are often close and int8 drift reorders them; how much drift to accept was measured on
    sigrl-vit-b32 (random init, N = 20, image graph on 2 threads):
    - the whole graph (48 world images): 1.83x fp32 speed, 87.5% identical top-5 sets;
    - every block (400 photos, 640x480, side by side with the next row): 1.88x, 94.8% identical
      sets, 98.95% of the tags kept;
    - the first half of the blocks: 1.30x, 96.0% identical, 99.2% kept. The second half alone
      drifted as much; the MLPs drift most (attention alone kept 99.5%).
    The first half is the trade taken: tags within 1% of fp32, for about a quarter less time.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise SigrlError("int8 export needs ONNX Runtime: pip install 'sigrl[onnx]'") from None
    tmp = dst.with_name(dst.name + ".tmp")
    root = logging.getLogger()
    quiet = _DropRecords()  # the quantizer logs advice about uint8 inputs and pre-processing on the root logger
    root.addFilter(quiet)
    try:
        import onnx

        graph = onnx.load(str(src), load_external_data=False).graph
        quantized = _first_half_of_blocks(graph)
        keep_fp32 = [node.name for node in graph.node if node.name not in quantized]
        # The quantizer turns each Gemm into a MatMul named NAME_MatMul before choosing what to
        # quantize, so a Gemm stays fp32 only if that name is excluded too.
        keep_fp32 += [node.name + "_MatMul" for node in graph.node if node.op_type == "Gemm" and node.name not in quantized]
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, nodes_to_exclude=keep_fp32)
    finally:
        root.removeFilter(quiet)
    os.replace(tmp, dst)

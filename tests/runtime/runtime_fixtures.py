"""A minimal export directory in the `sigrl export` layout, for runner tests.

Written with torch.onnx.export directly so that the runner tests do not depend on the exporter's
internals; the layout and tensor names are the shared contract (manifest.json, text.onnx,
image.onnx, optional image.int8.onnx).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from sigrl import __version__
from sigrl.model.graphs import ImageGraph
from sigrl.model.sigrl import SigRL

TRACE_LABELS = ["cat", "dog", "red car", "tree", "blue sky"]


class _TracedText(nn.Module):
    """TextGraph's computation with the context length taken from the input's shape.

    The library's encode_tokens finds the longest prompt with `.item()`, which a trace records as
    a constant; the runners already pass tokens trimmed to the longest prompt, so the shape is it.
    """

    def __init__(self, model: SigRL):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip, length = self.model.clip, tokens.shape[1]
        x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask[:length, :length]))  # [N, T, W]
        x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]  # end-of-text token
        side = self.model.label_side(x @ clip.text_projection)
        return side.embeddings, side.context


def write_export(model: SigRL, out: Path, model_hash: str, int8: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    # Wrappers in eval mode: export toggles train/eval on the module it gets, recursively.
    text, image = _TracedText(model).eval(), ImageGraph(model).eval()
    # The legacy tracer records the attention's sequence length as a constant, so the text graph
    # is traced at the full context length with a static T axis (the runner pads to it).
    tokens = model.tokenizer([cfg.text.prompt.format(label=label) for label in TRACE_LABELS])  # [N, C]
    with torch.no_grad():
        embeddings, context = text(tokens)
    size = model.config.preprocess.image_size
    images = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    common = {"dynamo": False, "opset_version": 17}
    torch.onnx.export(
        text, (tokens,), str(out / "text.onnx"), input_names=["tokens"], output_names=["embeddings", "context"],
        dynamic_axes={"tokens": {0: "N"}, "embeddings": {0: "N"}, "context": {0: "N"}}, **common,
    )
    torch.onnx.export(
        image, (images, embeddings, context), str(out / "image.onnx"),
        input_names=["images", "embeddings", "context"], output_names=["scores"],
        dynamic_axes={"images": {0: "B"}, "embeddings": {0: "N"}, "context": {0: "N"}, "scores": {0: "B", 1: "N"}},
        **common,
    )
    variants = {"fp32": "image.onnx"}
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(out / "image.onnx"), str(out / "image.int8.onnx"), weight_type=QuantType.QInt8)
        variants["int8"] = "image.int8.onnx"
    manifest = {
        "format": "sigrl-export",
        "format_version": 1,
        "sigrl_version": __version__,
        "model": {
            "name": cfg.name, "config": cfg.to_dict(), "arch": model.arch, "labels": None,
            "source": "test", "source_sha256": model_hash,
        },
        "preprocess": cfg.to_dict()["preprocess"],
        "prompt": cfg.text.prompt,
        "tokenizer": {"kind": "open_clip-bpe", "context_length": model.arch["text_cfg"]["context_length"]},
        "graphs": {"text": {"file": "text.onnx"}, "image": {"file": "image.onnx"}},
        "variants": {"image": variants},
        "engines": {},
        "parity": "parity.json",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out

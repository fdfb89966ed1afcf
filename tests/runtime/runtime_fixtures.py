"""The export directory runner tests read: written by the real exporter (`sigrl.export.onnx`),
so the runners are tested against exactly what `sigrl export` produces."""

from __future__ import annotations

from pathlib import Path

from sigrl.model.sigrl import SigRL

LABELS = ["cat", "dog", "red car", "tree", "blue sky", "green circle", "small yellow square"]  # odd N


def write_export(model: SigRL, out: Path, model_hash: str, int8: bool = False) -> Path:
    from sigrl.export.manifest import MANIFEST, prepare_out_dir, write_json
    from sigrl.export.onnx import export_onnx

    out = prepare_out_dir(out)
    manifest = export_onnx(model, out, source="tests", source_sha256=model_hash, int8=int8)
    write_json(out / MANIFEST, manifest)
    return out

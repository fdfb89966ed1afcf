"""Reading an export directory's manifest.json (written by `sigrl export`), without torch.

The manifest says everything a runner needs: the model config and architecture, preprocessing,
the prompt template, tokenizer settings, the graph files, their precision variants and engines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError

MANIFEST = "manifest.json"
FORMAT = "sigrl-export"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportManifest:
    directory: Path
    data: Mapping[str, Any]

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST

    @property
    def name(self) -> str:
        return str(self.data["model"].get("name") or self.directory.name)

    @property
    def arch(self) -> Mapping[str, Any]:
        return self.data["model"]["arch"]

    @property
    def model_hash(self) -> str:
        return str(self.data["model"].get("source_sha256") or "")

    @property
    def prompt(self) -> str:
        return str(self.data["prompt"])

    @property
    def context_length(self) -> int:
        return int(self.data["tokenizer"]["context_length"])

    @property
    def preprocess(self) -> PreprocessConfig:
        fields = dict(self.data["preprocess"])
        for key in ("mean", "std"):
            if key in fields:
                fields[key] = tuple(float(v) for v in fields[key])
        try:
            return PreprocessConfig(**fields)
        except TypeError as err:
            raise SigrlError(f"{self.path}: bad 'preprocess' section ({err}); re-export the model") from None

    def text_graph(self) -> Path:
        return self._file(self.data["graphs"]["text"]["file"])

    def image_graph(self, precision: str) -> Path:
        variants = dict((self.data.get("variants") or {}).get("image") or {})
        variants.setdefault("fp32", self.data["graphs"]["image"]["file"])
        if precision not in variants:
            raise SigrlError(
                f"{self.path}: no {precision} image graph in this export (has: {', '.join(sorted(variants))}); "
                f"re-run `sigrl export --precision {precision}` into {self.directory}"
            )
        return self._file(variants[precision])

    def engines(self) -> dict[str, Mapping[str, str]]:
        return dict(self.data.get("engines") or {})

    def engine(self, precision: str) -> tuple[Path, Path]:
        engines = self.engines()
        if precision not in engines:
            have = ", ".join(sorted(engines)) or "none"
            raise SigrlError(
                f"{self.path}: no {precision} TensorRT engine in this export (has: {have}); "
                f"run `sigrl export --format trt --precision {precision}` into {self.directory}"
            )
        entry = engines[precision]
        return self._file(entry["file"]), self._file(entry["sidecar"])

    def _file(self, name: str) -> Path:
        path = self.directory / name
        if not path.is_file():
            raise SigrlError(f"{path}: listed in {self.path} but missing; re-export into {self.directory}")
        return path


def is_export_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(directory: str | Path) -> ExportManifest:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise SigrlError(f"{directory}: not an export directory (no {MANIFEST}); create one with `sigrl export`")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SigrlError(f"{path}: not valid JSON ({err}); re-export the model") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SigrlError(f"{path}: not a sigrl export manifest (format {data.get('format')!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise SigrlError(
            f"{path}: export format version {data.get('format_version')} is not supported by this sigrl "
            f"(reads version {FORMAT_VERSION}); re-export with this sigrl version"
        )
    missing = [k for k in ("model", "preprocess", "prompt", "tokenizer", "graphs") if k not in data]
    if missing:
        raise SigrlError(f"{path}: manifest lacks {missing}; re-export the model")
    _check_parity(directory, data)
    return ExportManifest(directory=directory, data=data)


def _check_parity(directory: Path, data: Mapping[str, Any]) -> None:
    """Refuse an export whose own verification failed (the exporter leaves it in place to redo)."""
    report = directory / str(data.get("parity") or "parity.json")
    if not report.is_file():
        return
    try:
        passed = json.loads(report.read_text()).get("passed", True)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise SigrlError(f"{report}: unreadable parity report; re-export into {directory}") from None
    if passed is False:
        raise SigrlError(
            f"{directory}: this export failed its parity check against PyTorch (see {report}); "
            "fix the cause and re-export before using it"
        )

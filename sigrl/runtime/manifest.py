"""Reading an export directory's manifest.json (written by `sigrl export`), without torch.

The manifest says everything a runner needs: the model config and architecture, preprocessing,
the prompt template, tokenizer settings, the graph files, their precision variants and engines.
Each ONNX file carries the same facts in its own metadata_props, so a graph is checked against the
manifest when it is opened: a manifest edited by hand, or graph files swapped or copied from
another export, is refused before any inference (reading the metadata skips the weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError

MANIFEST = "manifest.json"
FORMAT = "sigrl-export"
FORMAT_VERSION = 1


def image_feed(inputs: Sequence[str], images: Any, embeddings: Any, context: Any) -> dict[str, Any]:
    """The image graph's inputs by name, only those it declares (a head that reads no label context,
    CLIP or MKT, has no `context`: the tracer drops it)."""
    arrays = {"images": images, "embeddings": embeddings, "context": context}
    return {name: arrays[name] for name in inputs}


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
    def compose(self) -> str:
        """How labels become text: "prompt", or "words" (sigrl.config.TextConfig; older exports: prompt)."""
        return str(((self.data["model"].get("config") or {}).get("text") or {}).get("compose", "prompt"))

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

    @property
    def image_inputs(self) -> tuple[str, ...]:
        """The image graph's inputs: a head that reads no label context (CLIP, MKT) has no `context`."""
        return tuple(self.data["graphs"]["image"]["inputs"])

    def text_graph(self) -> Path:
        return self._graph(self.data["graphs"]["text"]["file"], "text")

    def image_graph(self, precision: str) -> Path:
        variants = dict((self.data.get("variants") or {}).get("image") or {})
        variants.setdefault("fp32", self.data["graphs"]["image"]["file"])
        if precision not in variants:
            raise SigrlError(
                f"{self.path}: no {precision} image graph in this export (has: {', '.join(sorted(variants))}); "
                f"re-run `sigrl export --precision {precision}` into {self.directory}"
            )
        return self._graph(variants[precision], "image")

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

    def _graph(self, name: str, role: str) -> Path:
        path = self._file(name)
        check_graph_metadata(self, path, role)
        return path

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


# metadata_props key -> what the manifest holds for it (compared as parsed JSON where JSON).
_CHECKED = {
    "sigrl.model_name": lambda d, role: d["model"].get("name"),
    "sigrl.model_config": lambda d, role: d["model"].get("config"),
    "sigrl.arch": lambda d, role: d["model"].get("arch"),
    "sigrl.preprocess": lambda d, role: d.get("preprocess"),
    "sigrl.prompt": lambda d, role: d.get("prompt"),
    "sigrl.tokenizer": lambda d, role: d.get("tokenizer"),
    "sigrl.graph_io": lambda d, role: d["graphs"].get(role),
}
_JSON_PROPS = {"sigrl.model_config", "sigrl.arch", "sigrl.preprocess", "sigrl.tokenizer", "sigrl.graph_io"}


def check_graph_metadata(manifest: ExportManifest, path: Path, role: str) -> None:
    """Refuse a graph whose own metadata disagrees with the manifest (edited, swapped, mixed)."""
    fix = f"the manifest was edited or the files come from different exports; re-export into {manifest.directory}"
    try:
        props = read_onnx_metadata(path)
    except (OSError, ValueError) as err:
        raise SigrlError(f"{path}: not a readable ONNX file ({err}); re-export into {manifest.directory}") from None
    if props.get("sigrl.format") != FORMAT:
        raise SigrlError(f"{path}: not a graph written by `sigrl export` (no sigrl metadata); {fix}")
    if props.get("sigrl.graph") != role:
        raise SigrlError(f"{path}: is the {props.get('sigrl.graph')} graph, but {manifest.path} lists it as the "
                         f"{role} graph; {fix}")
    for key, wanted in _CHECKED.items():
        if key not in props:  # older exports lack some keys; what is there must agree
            continue
        try:
            have = json.loads(props[key]) if key in _JSON_PROPS else props[key]
            expected = json.loads(json.dumps(wanted(manifest.data, role)))
        except (json.JSONDecodeError, TypeError, AttributeError, KeyError):
            raise SigrlError(f"{path}: unreadable {key} in the manifest or the graph; {fix}") from None
        if have != expected:
            field = key.removeprefix("sigrl.")
            raise SigrlError(f"{manifest.path}: {field} does not match {path.name}'s own metadata; {fix}")


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """metadata_props of an ONNX file, read without onnx and without loading the graph.

    A ModelProto is a sequence of protobuf fields; metadata_props is field 14, a repeated
    {key = 1, value = 2} message. Every other field is skipped by its length (the graph with its
    weights is one such field), so this reads a few bytes of a large file.
    """
    props: dict[str, str] = {}
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        while fh.tell() < size:
            field, wire = divmod(_varint(fh), 8)
            if wire == 0:
                _varint(fh)
            elif wire == 1:
                fh.seek(8, 1)
            elif wire == 5:
                fh.seek(4, 1)
            elif wire == 2:
                length = _varint(fh)
                if fh.tell() + length > size:
                    raise ValueError("truncated")
                if field == 14:
                    key, value = _entry(fh.read(length))
                    props[key] = value
                else:
                    fh.seek(length, 1)
            else:
                raise ValueError(f"unexpected protobuf wire type {wire}")
    return props


def _varint(fh: Any) -> int:
    result = shift = 0
    while True:
        byte = fh.read(1)
        if not byte:
            raise ValueError("truncated")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _entry(blob: bytes) -> tuple[str, str]:
    import io

    fh, out = io.BytesIO(blob), {1: "", 2: ""}
    while fh.tell() < len(blob):
        field, wire = divmod(_varint(fh), 8)
        if wire != 2:
            raise ValueError("bad metadata entry")
        out[field] = fh.read(_varint(fh)).decode("utf-8")
    return out[1], out[2]

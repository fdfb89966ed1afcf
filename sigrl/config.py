"""Model configuration: small JSON files parsed once into frozen dataclasses.

A config names everything needed to rebuild a model: the open_clip backbone, how its labels are
prompted, which head variant runs, and the image preprocessing. Checkpoints and exports embed the
resolved config, so loading an artifact needs nothing but the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from sigrl.errors import SigrlError

VARIANTS = ("clip", "patch", "mkt", "sigrl")
COMPOSITIONS = ("prompt", "words")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes a model input: resize the shorter side, center-crop, normalise."""

    image_size: int = 224
    resize_size: int = 224  # shorter side before the center crop; 256 for the reference recipe
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise SigrlError(f"preprocess.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.resize_size < self.image_size:
            raise SigrlError("preprocess.resize_size must be >= image_size (the crop is taken from the resized image)")


@dataclass(frozen=True)
class BackboneConfig:
    """The open_clip model underneath.

    `arch` is an open_clip model name ("ViT-B-16"), the name of a CLIP architecture shipped in
    sigrl/model_configs/clip/, or an inline open_clip model config (embed_dim, vision_cfg, text_cfg).
    `pretrained` is an open_clip pretrained tag, a local checkpoint file, or None for random init.
    """

    arch: str | Mapping[str, Any] = "ViT-B-16"
    pretrained: str | None = None


@dataclass(frozen=True)
class TextConfig:
    """How a label becomes its embedding H[i].

    compose: "prompt" encodes the label's prompt ("There is a red star in the scene"); "words"
    encodes one prompt per word and averages the L2-normalised word embeddings ("red star" from
    "red" and "star"), so a label is never encoded as a string: an unseen pairing of known words
    gets the same treatment as a seen one (the form the world CLIP's patch loss trains).
    """

    prompt: str = "There is a {label} in the scene"
    batch_size: int = 256  # prompts per text-encoder call
    compose: str = "prompt"

    def __post_init__(self) -> None:
        if "{label}" not in self.prompt:
            raise SigrlError(f"text.prompt must contain '{{label}}', got {self.prompt!r}")
        if self.compose not in COMPOSITIONS:
            raise SigrlError(f"text.compose must be one of {COMPOSITIONS}, got {self.compose!r}")


@dataclass(frozen=True)
class HeadConfig:
    """Which scoring head runs on top of the backbone.

    variant: "clip" (global score only), "patch" (the best patch's cosine only), "mkt" (top-k local +
    global on raw patches), "sigrl" (full).
    gmc / svfr switch the two SigRL modules for ablations; both off is exactly the mkt head.
    gmc_residual: GMC returns H + gate * GAT(H) (gate 0 at initialisation) instead of the
    reference's GAT(H), which collapses every label to one vector (see sigrl.model.gmc).
    label_chunk bounds the head's memory: the SVFR head is computed exactly over label chunks of
    this size (None: all labels at once).
    """

    variant: str = "sigrl"
    gmc: bool = True
    svfr: bool = True
    topk: int = 16
    gmc_heads: int = 4
    gmc_head_dim: int = 32
    gmc_dropout: float = 0.3
    gmc_residual: bool = True
    leaky_slope: float = 0.2
    label_chunk: int | None = 64

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise SigrlError(f"head.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.topk < 1:
            raise SigrlError("head.topk must be >= 1")
        if self.label_chunk is not None and self.label_chunk < 1:
            raise SigrlError("head.label_chunk must be >= 1 or null")

    @property
    def uses_gmc(self) -> bool:
        return self.variant == "sigrl" and self.gmc

    @property
    def uses_svfr(self) -> bool:
        return self.variant == "sigrl" and self.svfr


@dataclass(frozen=True)
class ModelConfig:
    name: str
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    text: TextConfig = field(default_factory=TextConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    # None: taken from the backbone when the model is created (the resolved config is what
    # checkpoints and exports store).
    preprocess: PreprocessConfig | None = None

    def __post_init__(self) -> None:
        # The exported text graph runs the label side right after the text encoder, so runtimes
        # compose words from its outputs; that equals composing before the label side only where
        # the label side is the identity (no GMC, which mixes labels; no SVFR label constant).
        if self.text.compose == "words" and (self.head.uses_gmc or self.head.uses_svfr):
            raise SigrlError("text.compose 'words' needs a head without GMC and SVFR (variant clip, patch or mkt, "
                             "or sigrl with --no-gmc --no-svfr); set text.compose to 'prompt' or change the head")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **sections: Any) -> "ModelConfig":
        """A copy with some fields of sections changed: `cfg.replace(head={"variant": "mkt"})`."""
        updated = {}
        for key, changes in sections.items():
            current = getattr(self, key)
            if dataclasses.is_dataclass(current) and isinstance(changes, Mapping):
                updated[key] = dataclasses.replace(current, **changes)
            else:
                updated[key] = changes
        return dataclasses.replace(self, **updated)


_SECTIONS = {"backbone": BackboneConfig, "text": TextConfig, "head": HeadConfig, "preprocess": PreprocessConfig}


def _section(cls: type, data: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise SigrlError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    values = dict(data)
    for key in ("mean", "std"):
        if key in values:
            values[key] = tuple(float(v) for v in values[key])
    return cls(**values)


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> ModelConfig:
    """Parse a config mapping (as found in a JSON file or a checkpoint's metadata)."""
    unknown = set(data) - {"name", *_SECTIONS}
    if unknown:
        raise SigrlError(f"{where}: unknown top-level keys {sorted(unknown)}")
    if "name" not in data:
        raise SigrlError(f"{where}: missing 'name'")
    try:
        sections = {
            key: _section(cls, data.get(key, {}), f"{where}: {key}")
            for key, cls in _SECTIONS.items()
            if data.get(key) is not None or key != "preprocess"
        }
    except TypeError as err:
        raise SigrlError(f"{where}: {err}") from err
    return ModelConfig(name=data["name"], **sections)


def _builtin_dir() -> Path:
    return Path(str(resources.files("sigrl") / "model_configs"))


def list_configs() -> list[str]:
    """Names of the model configs shipped with the package."""
    return sorted(p.stem for p in _builtin_dir().glob("*.json"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A shipped config by name ("sigrl-tiny") or a JSON file path."""
    path = Path(name_or_path)
    if not path.suffix == ".json":
        path = _builtin_dir() / f"{name_or_path}.json"
        if not path.is_file():
            raise SigrlError(f"unknown model config {name_or_path!r}; shipped configs: {', '.join(list_configs())}")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SigrlError(f"{path}: no such config file") from None
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}: not valid JSON ({err})") from None
    return config_from_dict(data, where=str(path))

"""The open_clip backbone: building, loading and saving CLIP models, and the two image features.

SigRL needs, from one pass of the vision tower, the projected global feature `g` [B, D] (the CLS
token, as in CLIP) and the projected patch features `F` [B, P, D] (every patch token through the
same ln_post + projection). open_clip's `VisionTransformer.forward` only returns the pooled one, so
`encode_image_features` runs its stages itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import open_clip
import torch
from open_clip.transformer import VisionTransformer

from sigrl import __version__
from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError
from sigrl.model.conv_stem import STEM_KEY, install_conv_stem

log = logging.getLogger(__name__)

CLIP_FORMAT = "sigrl-clip"
# Preprocessing of the published open_clip ViTs (OpenAI statistics, 224 px, bicubic).
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LoadedClip:
    clip: open_clip.CLIP
    arch: dict[str, Any]  # the open_clip model config it was built from
    preprocess: PreprocessConfig
    source: str  # where the weights came from, for metadata and logs


def resolve_arch(arch: str | Mapping[str, Any]) -> dict[str, Any]:
    """An open_clip model config dict from a name or an inline dict."""
    if isinstance(arch, Mapping):
        return json.loads(json.dumps(arch))
    shipped = resources.files("sigrl") / "model_configs" / "clip" / f"{arch}.json"
    if shipped.is_file():
        return json.loads(shipped.read_text())
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise SigrlError(
            f"unknown CLIP architecture {arch!r}: not an open_clip model name (see open_clip.list_models()) "
            "and not a file in sigrl/model_configs/clip/"
        )
    return cfg


def build_clip(arch: Mapping[str, Any]) -> open_clip.CLIP:
    """A randomly initialised CLIP of this architecture (deterministic under torch.manual_seed)."""
    cfg = dict(arch)
    if cfg.get("custom_text") or "hf_model_name" in cfg.get("text_cfg", {}):
        raise SigrlError("only CLIP models with open_clip's own text transformer are supported")
    extra = {k: cfg.pop(k) for k in ("quick_gelu",) if k in cfg}
    stem = cfg.pop(STEM_KEY, None)
    clip = open_clip.model.CLIP(**cfg, **extra)
    if stem is not None:
        install_conv_stem(clip.visual, stem)
    return clip


def default_preprocess(arch: Mapping[str, Any]) -> PreprocessConfig:
    size = arch["vision_cfg"]["image_size"]
    size = size if isinstance(size, int) else size[0]
    return PreprocessConfig(image_size=size, resize_size=size, mean=_OPENAI_MEAN, std=_OPENAI_STD)


def _check_vision(clip: open_clip.CLIP) -> None:
    visual = clip.visual
    if not isinstance(visual, VisionTransformer):
        raise SigrlError("SigRL needs a ViT backbone (patch tokens); this open_clip model's vision tower is not a ViT")
    if visual.attn_pool is not None or visual.pool_type != "tok":
        raise SigrlError("SigRL needs a CLS-token ViT without attentional pooling (open_clip pool_type 'tok')")


def load_clip(arch: str | Mapping[str, Any] | None, pretrained: str | None) -> LoadedClip:
    """Build a CLIP: random init, an open_clip pretrained tag, or a local checkpoint file.

    A sigrl CLIP checkpoint carries its architecture, so `arch` may be None for one. Pretrained tags
    are resolved by open_clip itself (which downloads on a machine with network access).
    """
    if pretrained and Path(pretrained).suffix == ".safetensors" and _is_sigrl_clip(Path(pretrained)):
        return _load_sigrl_clip(Path(pretrained), arch)
    if arch is None:
        raise SigrlError(f"{pretrained}: not a sigrl CLIP checkpoint, so an architecture name is needed too")
    arch_cfg = resolve_arch(arch)
    clip = build_clip(arch_cfg)
    preprocess = default_preprocess(arch_cfg)
    source = "random-init"
    if pretrained:
        if Path(pretrained).exists():
            _load_open_clip_file(clip, Path(pretrained))
            source = str(pretrained)
        elif isinstance(arch, str) and "/" not in pretrained and "." not in Path(pretrained).name:
            clip, preprocess = _load_open_clip_tag(arch, pretrained)
            source = f"open_clip:{arch}:{pretrained}"
        else:
            raise SigrlError(f"{pretrained}: no such file (and not an open_clip pretrained tag)")
    _check_vision(clip)
    return LoadedClip(clip=clip, arch=arch_cfg, preprocess=preprocess, source=source)


def _load_open_clip_file(clip: open_clip.CLIP, path: Path) -> None:
    try:
        # weights_only=True: a .pt file is never unpickled beyond plain tensors.
        open_clip.load_checkpoint(clip, str(path), strict=True, weights_only=True)
    except Exception as err:
        raise SigrlError(f"{path}: could not load as an open_clip checkpoint for this architecture ({err})") from err


def _load_open_clip_tag(arch: str, tag: str) -> tuple[open_clip.CLIP, PreprocessConfig]:
    try:
        clip = open_clip.create_model(arch, pretrained=tag)
    except Exception as err:
        raise SigrlError(
            f"open_clip could not provide {arch} with pretrained={tag!r} ({err}); on a machine without network "
            "access pass a local checkpoint file instead"
        ) from err
    cfg = clip.visual.preprocess_cfg if hasattr(clip.visual, "preprocess_cfg") else {}
    size = clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple) else clip.visual.image_size
    preprocess = PreprocessConfig(
        image_size=size,
        resize_size=size,
        mean=tuple(cfg.get("mean", _OPENAI_MEAN)),
        std=tuple(cfg.get("std", _OPENAI_STD)),
        interpolation=cfg.get("interpolation", "bicubic"),
    )
    return clip, preprocess


def _is_sigrl_clip(path: Path) -> bool:
    from sigrl.checkpoint import read_metadata

    return read_metadata(path).get("format") == CLIP_FORMAT


def _load_sigrl_clip(path: Path, arch: str | Mapping[str, Any] | None) -> LoadedClip:
    from sigrl.checkpoint import load_tensors, read_metadata

    meta = read_metadata(path)
    arch_cfg = meta["arch"]
    if arch is not None and resolve_arch(arch) != arch_cfg:
        raise SigrlError(f"{path}: its architecture differs from the requested {arch!r}; omit the architecture")
    clip = build_clip(arch_cfg)
    try:
        clip.load_state_dict(load_tensors(path), strict=True)
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise SigrlError(f"{path}: weights do not match the architecture ({first})") from None
    _check_vision(clip)
    preprocess = PreprocessConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["preprocess"].items()})
    return LoadedClip(clip=clip, arch=arch_cfg, preprocess=preprocess, source=str(path))


def save_clip_checkpoint(
    path: str | Path,
    clip: open_clip.CLIP,
    arch: Mapping[str, Any],
    preprocess: PreprocessConfig,
    summary: Mapping[str, Any],
) -> None:
    """Write a CLIP as safetensors with its architecture and preprocessing, loadable by `load_clip`."""
    from dataclasses import asdict

    from sigrl.checkpoint import save_tensors

    meta = {
        "format": CLIP_FORMAT,
        "sigrl_version": __version__,
        "arch": dict(arch),
        "preprocess": asdict(preprocess),
        "summary": dict(summary),
    }
    save_tensors(Path(path), clip.state_dict(), meta)


def build_tokenizer(arch: Mapping[str, Any]) -> Callable[[list[str]], torch.Tensor]:
    """open_clip's BPE tokenizer at the architecture's context length (ships with open_clip, no hub)."""
    text_cfg = arch.get("text_cfg", {})
    if "hf_tokenizer_name" in text_cfg:
        raise SigrlError("Hugging Face tokenizers are not supported; use a CLIP with open_clip's BPE tokenizer")
    return open_clip.tokenizer.SimpleTokenizer(context_length=text_cfg.get("context_length", 77))


def encode_image_features(visual: VisionTransformer, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected global feature g [B, D] and projected patch features F [B, P, D] from one pass."""
    x = visual._embeds(images)  # [B, 1+P, W]
    x = visual.transformer(x)
    x = visual.ln_post(x)  # CLS and patches share the final norm, as in CLIP's own pooling
    x = x @ visual.proj  # [B, 1+P, D]
    return x[:, 0], x[:, 1:]

"""Training recipes: one frozen config for both settings, with the reference defaults per setting.

Fields left as None take the setting's reference default when the config is resolved, so the
resolved config written to a run folder states every value that was used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sigrl.errors import SigrlError

# The single-positive losses of sigrl.train.losses (named here so that parsing a recipe, and so
# the CLI, never needs torch).
SPML_LOSSES = ("an", "em", "em_pl")

SETTINGS = ("ov", "spml")

RANK_SCALES = ("sqrt_n", "none")

# DESIGN.md section 3. OV: AdamW 1e-4, wd 0.05, 2 warm-up epochs then cosine to 1e-7, 20 epochs,
# batch 32, last 2 blocks + heads with layer-wise decay 0.65. SPML: full fine-tune, Adam 1e-5,
# 10 epochs.
# The freshly initialised heads (GMC, SVFR, the SPML logit scale) are not the reference's: at the
# backbone's rate they stay where they started (36 steps at 1e-4 move a weight by ~1e-3), so they
# get their own rate and a head-only phase on cached backbone features first (head_steps).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "ov": {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.05, "warmup_epochs": 2.0, "epochs": 20,
           "trainable_blocks": 2, "layer_decay": 0.65, "head_lr": 1e-3, "head_steps": 1000},
    "spml": {"optimizer": "adam", "lr": 1e-5, "weight_decay": 0.0, "warmup_epochs": 0.0, "epochs": 10,
             "trainable_blocks": -1, "layer_decay": 1.0, "head_lr": 1e-3, "head_steps": 1000},
}


@dataclass(frozen=True)
class TrainConfig:
    setting: str
    data: str  # training manifest
    init: str  # sigrl model config name/JSON, sigrl CLIP checkpoint, or open_clip:ARCH[:TAG]
    out: str  # run folder
    val: str | None = None  # validation manifest (model selection); none: select the last epoch
    # head of the trained model
    variant: str = "sigrl"
    gmc: bool = True
    gmc_residual: bool = True  # False: the reference GMC (collapses; see sigrl.model.gmc)
    svfr: bool = True
    topk: int | None = None  # None: the model config's
    compose: str | None = None  # label embeddings from prompts or words (TextConfig); None: the model config's
    # optimisation (None: the setting's reference default)
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    min_lr: float = 1e-7
    epochs: int | None = None
    batch_size: int = 32
    trainable_blocks: int | None = None  # last K ViT blocks; -1: all of the image tower
    layer_decay: float | None = None
    # the fresh heads: their own peak rate; a head-only phase of head_steps steps on cached frozen
    # backbone features (linear warm-up over head_warmup_steps, cosine to min_lr) before the
    # end-to-end epochs, in which they follow the backbone's schedule scaled to head_lr
    head_lr: float | None = None
    head_steps: int | None = None
    head_warmup_steps: int = 50
    # torch.compile the head-only step. Off by default: on a 2-core CPU the compiled step ran at half
    # the eager rate (scripts/bench/train_step.py: 0.45 vs 0.95 steps/s), after 15-150 s of compiling.
    compile: bool = False
    # OV
    margin: float = 1.0
    rank_scale: str = "sqrt_n"  # scores ranked as sqrt(N) * score; "none": raw (the reference)
    distill_weight: float = 1.0
    # SPML
    loss: str = "em"
    alpha: float = 0.1
    beta: float = 0.7
    pl_threshold: float = 0.3
    pl_temperature: float | None = None  # None: the initial CLIP's own logit scale
    logit_init_scale: float = 4.0
    spml_seed: int = 0  # which positive each image keeps when the data is fully annotated
    # data and run
    limit: int | None = None  # use a seeded random subset of this many training images
    val_limit: int | None = None
    flip: bool = True
    crop_scale: float = 0.7  # random-resized-crop keeps this fraction of the area or more; 1: off
    seed: int = 0
    device: str = "auto"
    # auto: bf16 (fp16 where bf16 is missing) autocast on CUDA, fp32 on CPU; bf16: autocast on any
    # device (about 1.5-2x faster on CPUs with bf16 units); fp32: no autocast.
    precision: str = "auto"
    threads: int = 0
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise SigrlError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if self.loss not in SPML_LOSSES:
            raise SigrlError(f"SPML loss must be one of {SPML_LOSSES}, got {self.loss!r}")
        if self.optimizer not in (None, "adam", "adamw"):
            raise SigrlError(f"optimizer must be adam or adamw, got {self.optimizer!r}")
        if self.batch_size < 1 or any(v is not None and v < 0 for v in (self.epochs, self.head_steps)):
            raise SigrlError("batch size must be >= 1, epochs and head steps >= 0")
        if self.epochs == 0 and self.head_steps == 0:
            raise SigrlError("nothing to train: give --epochs >= 1 or --head-steps >= 1")
        if self.rank_scale not in RANK_SCALES:
            raise SigrlError(f"rank scale must be one of {RANK_SCALES}, got {self.rank_scale!r}")
        for name in ("lr", "head_lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise SigrlError(f"{name} must be a finite number >= 0, got {value}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise SigrlError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not 0.0 < self.crop_scale <= 1.0:
            raise SigrlError("crop_scale must be in (0, 1]")

    def resolved(self) -> "TrainConfig":
        """Every None optimisation field replaced by the setting's default."""
        fill = {k: v for k, v in _DEFAULTS[self.setting].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fill)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path, model_config: Mapping[str, Any]) -> None:
        path.write_text(json.dumps({"train": self.to_dict(), "model": dict(model_config)}, indent=2, sort_keys=True))


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig a run folder was started with (for --resume)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise SigrlError(f"{path}: no run config; --resume needs a run folder written by `sigrl train`")
    data = json.loads(path.read_text())["train"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in data.items() if k in known})

"""Every export verifies itself: ONNX Runtime (CPU) against PyTorch on fixed inputs.

The reference is the PyTorch model exactly as configured (chunked head, trimmed tokens); the
candidate is the exported pair of graphs end to end (text graph on the tokenizer's full output,
then the image graph on its outputs). Cases cover B = 1, an odd N, N = 1, and batch sizes and label
counts different from the traced ones, so a size baked into the graph cannot pass.

Bars:
- fp32: max |score difference| <= 1e-4 in every case, else the export fails (SigrlError).
- int8 (dynamic quantization changes the numbers on purpose): judged on ranking, since scores are
  used to rank and threshold labels: mean top-5 overlap >= 0.6 and mean Spearman rank correlation
  >= 0.9 over the images of the cases with N >= 5. The drift (max/mean abs diff) is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sigrl.errors import SigrlError
from sigrl.model.graphs import ImageGraph, TextGraph, tokenize_labels
from sigrl.model.sigrl import SigRL
from sigrl.model.text import make_prompts
from sigrl.export.manifest import write_json
from sigrl.runtime.manifest import image_feed

log = logging.getLogger(__name__)

PARITY_FILE = "parity.json"
# (B, N), traced at (2, 6); N = 33 exceeds the shipped label chunks (16, 32), so the chunked
# PyTorch head is compared with the whole-N graph.
CASES: tuple[tuple[int, int], ...] = ((1, 1), (1, 5), (2, 7), (3, 12), (2, 33))
FP32_TOL = 1e-4
INT8_MIN_TOP5, INT8_MIN_SPEARMAN = 0.6, 0.9
_WORDS = (
    "cat", "dog", "car", "tree", "person", "boat", "sky", "road", "flower", "bird",
    "chair", "water", "building", "mountain", "bicycle", "window",
)


@dataclass
class CaseResult:
    variant: str
    batch: int
    labels: int
    max_abs_diff: float
    mean_abs_diff: float
    top5_agreement: float
    spearman: float | None
    passed: bool


@dataclass
class ParityReport:
    cases: list[CaseResult] = field(default_factory=list)
    text: list[dict[str, Any]] = field(default_factory=list)
    bars: dict[str, Any] = field(default_factory=dict)

    def variant_passed(self, variant: str) -> bool:
        return all(c.passed for c in self.cases if c.variant == variant)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def summary(self, variant: str) -> dict[str, float]:
        rows = [c for c in self.cases if c.variant == variant]
        return {
            "max_abs_diff": max(c.max_abs_diff for c in rows),
            "mean_abs_diff": float(np.mean([c.mean_abs_diff for c in rows])),
            "top5_agreement": float(np.mean([c.top5_agreement for c in rows])),
        }

    def to_dict(self) -> dict[str, Any]:
        variants = sorted({c.variant for c in self.cases})
        return {
            "passed": self.passed,
            "bars": self.bars,
            "variants": {v: {"passed": self.variant_passed(v), **self.summary(v)} for v in variants},
            "cases": [asdict(c) for c in self.cases],
            "text": self.text,
        }


def top_k_agreement(ref: np.ndarray, got: np.ndarray, k: int = 5) -> float:
    """Mean over rows of |top-k(ref) & top-k(got)| / k, with k capped at the label count."""
    k = min(k, ref.shape[1])
    a, b = np.argsort(-ref, axis=1)[:, :k], np.argsort(-got, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


def spearman(ref: np.ndarray, got: np.ndarray) -> float:
    """Mean over rows of the Spearman rank correlation (rows need at least two labels)."""
    ranks = lambda x: np.argsort(np.argsort(x, axis=1), axis=1).astype(np.float64)  # noqa: E731
    ra, rb = ranks(ref), ranks(got)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    return float(np.mean((ra * rb).sum(axis=1) / denom))


def fixed_images(batch: int, size: int, seed: int) -> np.ndarray:
    """uint8 [B, S, S, 3]: smooth gradients plus noise, so patches differ the way photos do."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = (ramp[None, :, None, None] * rng.uniform(0, 1, (batch, 1, 1, 3))
            + ramp[None, None, :, None] * rng.uniform(0, 1, (batch, 1, 1, 3))) / 2
    noisy = base + rng.normal(0, 40, (batch, size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise SigrlError("export verification needs ONNX Runtime: pip install 'sigrl[onnx]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # quantized graphs warn about every un-fused node otherwise
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _case(variant: str, ref: np.ndarray, got: np.ndarray) -> CaseResult:
    diff = np.abs(ref - got)
    top5 = top_k_agreement(ref, got)
    rho = spearman(ref, got) if ref.shape[1] >= 2 else None
    if variant == "fp32":
        passed = bool(diff.max() <= FP32_TOL)
    else:  # ranking bars apply where a ranking means something
        passed = ref.shape[1] < 5 or (top5 >= INT8_MIN_TOP5 and (rho or 0.0) >= INT8_MIN_SPEARMAN)
    return CaseResult(variant, ref.shape[0], ref.shape[1], float(diff.max()), float(diff.mean()), top5, rho, passed)


def check_parity(
    model: SigRL, out_dir: Path, manifest: dict[str, Any], cases: Sequence[tuple[int, int]] = CASES
) -> ParityReport:
    """Compare every ONNX variant of the image graph (and the text graph) with PyTorch; write parity.json.

    Raises SigrlError when the fp32 graphs exceed their tolerance (after writing the report).
    """
    model = model.eval()
    text = _session(out_dir / manifest["graphs"]["text"]["file"])
    images_by_variant = {v: _session(out_dir / f) for v, f in manifest["variants"]["image"].items()}
    image_inputs = list(manifest["graphs"]["image"]["inputs"])
    size = manifest["preprocess"]["image_size"]
    report = ParityReport(bars={
        "fp32": {"max_abs_diff": FP32_TOL},
        "int8": {"top5_agreement": INT8_MIN_TOP5, "spearman": INT8_MIN_SPEARMAN, "applies_from_labels": 5},
    })
    for i, (batch, n) in enumerate(cases):
        labels = [_WORDS[j % len(_WORDS)] + ("" if j < len(_WORDS) else f" {j}") for j in range(n)]
        full_tokens = model.tokenizer(make_prompts(labels, model.config.text.prompt)).numpy()  # [N, C]
        pixels = fixed_images(batch, size, seed=i)
        with torch.no_grad():
            h, ctx = TextGraph(model)(tokenize_labels(model, labels))  # the PyTorch path trims tokens
            ref = ImageGraph(model)(torch.from_numpy(pixels), h, ctx).numpy()  # [B, N]
        oh, octx = text.run(None, {"tokens": full_tokens.astype(np.int64)})
        report.text.append({
            "labels": n,
            "embeddings_max_abs_diff": float(np.abs(oh - h.numpy()).max()),
            "context_max_abs_diff": float(np.abs(octx - ctx.numpy()).max()),
        })
        for variant, session in images_by_variant.items():
            (got,) = session.run(None, image_feed(image_inputs, pixels, oh, octx))
            report.cases.append(_case(variant, ref, got))
    write_json(out_dir / PARITY_FILE, report.to_dict())
    for variant in images_by_variant:
        log.info("parity %s: %s", variant, report.summary(variant))
    if not report.variant_passed("fp32"):
        worst = report.summary("fp32")["max_abs_diff"]
        raise SigrlError(
            f"{out_dir / PARITY_FILE}: exported fp32 graphs disagree with PyTorch (max |diff| {worst:.2e} > "
            f"{FP32_TOL:.0e}); the export is not usable, see the report for the failing cases"
        )
    return report

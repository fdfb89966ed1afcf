"""The export formats and the options each accepts, validated before any work starts.

One declarative table says what every format takes; `plan_export` checks a request against it and
returns the ordered steps to run. Nothing is loaded, traced or built before this passes, so a typo
in an option costs nothing.

    format  precisions       options                 writes
    onnx    fp32, int8       opset                   text.onnx, image.onnx (+ image.int8.onnx)
    trt     fp32, fp16       batch, labels           image.<precision>.engine + sidecar JSON
    all     = onnx (fp32 base graphs) then trt at the requested precision

fp16 is a TensorRT precision only: ONNX Runtime on CPU gains nothing from fp16 and a converted
fp16 ONNX graph would be a second, separately verified artifact; TensorRT takes the fp32 graph and
chooses fp16 kernels itself while keeping the numerically sensitive layers in fp32 (tensorrt.py).
int8 is ONNX Runtime dynamic quantization (CPU); TensorRT int8 needs a calibration set and is not
offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from sigrl.errors import SigrlError

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OPSET = 17  # LayerNormalization is a single op from 17 on (TensorRT maps it to one layer)
MIN_OPSET, MAX_OPSET = 17, 20
DEFAULT_BATCH = (1, 8, 64)
DEFAULT_LABELS = (1, 81, 1024)


@dataclass(frozen=True)
class FormatSpec:
    name: str
    precisions: tuple[str, ...]
    options: tuple[str, ...]  # the optional settings this format accepts
    summary: str


FORMATS: dict[str, FormatSpec] = {
    "onnx": FormatSpec("onnx", ("fp32", "int8"), ("opset",), "ONNX graphs run by ONNX Runtime"),
    "trt": FormatSpec("trt", ("fp32", "fp16"), ("batch", "labels"), "TensorRT engines built from the ONNX graphs"),
}
ALL = ("onnx", "trt")  # `--format all`, in this order: TensorRT builds from the ONNX files


@dataclass(frozen=True)
class Step:
    """One exporter run: a format at one precision with its options."""

    format: str
    precision: str
    opset: int = DEFAULT_OPSET
    batch: tuple[int, int, int] = DEFAULT_BATCH
    labels: tuple[int, int, int] = DEFAULT_LABELS


@dataclass(frozen=True)
class ExportPlan:
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(s.format for s in self.steps)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.format == name), None)


def parse_range(text: str | Sequence[int] | None, option: str) -> tuple[int, int, int] | None:
    """"min,opt,max" (or three ints) -> a checked triple with 1 <= min <= opt <= max."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        raise SigrlError(f"--{option} {text!r}: expected three integers min,opt,max (e.g. 1,8,64)") from None
    if len(values) != 3:
        raise SigrlError(f"--{option} {text!r}: expected exactly three integers min,opt,max, got {len(values)}")
    lo, opt, hi = values
    if not 1 <= lo <= opt <= hi:
        raise SigrlError(f"--{option} {text!r}: needs 1 <= min <= opt <= max")
    return values  # type: ignore[return-value]


def plan_export(
    format: str,
    precision: str | None = None,
    opset: int | None = None,
    batch: str | Sequence[int] | None = None,
    labels: str | Sequence[int] | None = None,
) -> ExportPlan:
    """Check a request against the format table; raise SigrlError naming the fix on any mistake."""
    names = ALL if format == "all" else (format,)
    if format != "all" and format not in FORMATS:
        raise SigrlError(f"unknown export format {format!r}; choose one of: {', '.join([*FORMATS, 'all'])}")
    if precision is not None and precision not in PRECISIONS:
        raise SigrlError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    given = {"opset": opset, "batch": batch, "labels": labels}
    accepted = {opt for n in names for opt in FORMATS[n].options}
    for option, value in given.items():
        if value is not None and option not in accepted:
            owner = next(n for n, spec in FORMATS.items() if option in spec.options)
            raise SigrlError(f"--{option} does not apply to --format {format}; it is a {owner} option")
    if opset is not None and not MIN_OPSET <= opset <= MAX_OPSET:
        raise SigrlError(f"--opset {opset}: supported ONNX opsets are {MIN_OPSET}..{MAX_OPSET}")
    batch_range = parse_range(batch, "batch") or DEFAULT_BATCH
    label_range = parse_range(labels, "labels") or DEFAULT_LABELS
    steps = []
    for name in names:
        # With `all` the ONNX step writes the fp32 base graphs the engines are built from; the
        # requested precision belongs to the last format of the chain.
        wanted = precision or "fp32"
        if format == "all" and name == "onnx":
            wanted = "fp32"
        spec = FORMATS[name]
        if wanted not in spec.precisions:
            hint = {"fp16": "fp16 is built as a TensorRT engine: use --format trt or all",
                    "int8": "int8 is ONNX Runtime dynamic quantization: use --format onnx"}[wanted]
            raise SigrlError(f"--precision {wanted} is not available for --format {format} ({hint})")
        steps.append(Step(name, wanted, opset or DEFAULT_OPSET, batch_range, label_range))
    return ExportPlan(tuple(steps))

"""Option validation against the format table: every mistake is caught before any work."""

from __future__ import annotations

import pytest

from sigrl.errors import SigrlError
from sigrl.export.formats import DEFAULT_BATCH, DEFAULT_LABELS, parse_range, plan_export


def test_all_is_onnx_fp32_then_trt_at_the_requested_precision():
    plan = plan_export("all", precision="fp16", batch="1,4,16", labels="2,10,100")
    assert [(s.format, s.precision) for s in plan.steps] == [("onnx", "fp32"), ("trt", "fp16")]
    assert plan.step("trt").batch == (1, 4, 16) and plan.step("trt").labels == (2, 10, 100)


def test_defaults():
    (step,) = plan_export("onnx").steps
    assert (step.format, step.precision, step.opset) == ("onnx", "fp32", 17)
    trt = plan_export("trt").step("trt")
    assert (trt.precision, trt.batch, trt.labels) == ("fp32", DEFAULT_BATCH, DEFAULT_LABELS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"format": "tflite"}, "unknown export format 'tflite'"),
        ({"format": "onnx", "precision": "fp8"}, "unknown precision 'fp8'"),
        ({"format": "onnx", "precision": "fp16"}, "fp16 is built as a TensorRT engine"),
        ({"format": "trt", "precision": "int8"}, "int8 is ONNX Runtime dynamic quantization"),
        ({"format": "all", "precision": "int8"}, "not available for --format all"),
        ({"format": "onnx", "batch": "1,2,4"}, "--batch does not apply to --format onnx; it is a trt option"),
        ({"format": "trt", "opset": 17}, "--opset does not apply to --format trt; it is a onnx option"),
        ({"format": "onnx", "opset": 11}, "supported ONNX opsets are 17..20"),
        ({"format": "trt", "batch": "8,4,16"}, "1 <= min <= opt <= max"),
        ({"format": "trt", "labels": "1,2"}, "exactly three integers"),
        ({"format": "trt", "labels": "a,b,c"}, "expected three integers"),
    ],
)
def test_invalid_options_name_the_fix(kwargs, message):
    with pytest.raises(SigrlError, match=message.replace("(", r"\(").replace("+", r"\+")):
        plan_export(**kwargs)


def test_parse_range_accepts_spaces_and_sequences():
    assert parse_range(" 1, 8 ,64", "batch") == (1, 8, 64)
    assert parse_range([2, 2, 2], "labels") == (2, 2, 2)
    assert parse_range(None, "batch") is None
    with pytest.raises(SigrlError):
        parse_range("0,1,2", "batch")

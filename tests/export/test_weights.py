"""Lossless fp16 storage of exported weights (export/weights.py)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sigrl.export.weights import SUFFIX, narrow_exact_fp16  # noqa: E402


def _graph(exact: np.ndarray, inexact: np.ndarray) -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", "w_exact"], ["y1"]), helper.make_node("MatMul", ["y1", "w_inexact"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 64])],
        initializer=[numpy_helper.from_array(exact, "w_exact"), numpy_helper.from_array(inexact, "w_inexact")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_only_exactly_representable_weights_are_narrowed_and_results_are_identical() -> None:
    rng = np.random.default_rng(0)
    exact = rng.standard_normal((64, 64)).astype(np.float16).astype(np.float32)  # as a fp16 checkpoint gives
    inexact = rng.standard_normal((64, 64)).astype(np.float32) + np.float32(1e-5)  # fp32 detail: must stay fp32
    model = _graph(exact, inexact)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    before, size = _run(model, x), model.ByteSize()
    saved = narrow_exact_fp16(model)
    onnx.checker.check_model(model)
    kinds = {init.name: init.data_type for init in model.graph.initializer}
    assert kinds == {"w_exact" + SUFFIX: TensorProto.FLOAT16, "w_inexact": TensorProto.FLOAT}
    assert saved == 64 * 64 * 2 and model.ByteSize() < size - 8000
    assert model.graph.node[0].op_type == "Cast"
    np.testing.assert_array_equal(_run(model, x), before)

"""Lossless fp16 storage of an ONNX graph's weights.

A checkpoint stored in fp16 (the embedded default model is) exports fp32 weights that are all
exactly representable in fp16, so half of every weight's bytes carries nothing. Each such
initializer is stored as fp16 and widened by a Cast at the top of the graph; ONNX Runtime folds
the Cast into an fp32 constant when the session is created (constant folding, on at every
optimisation level above "disabled"), so inference computes on the very same fp32 values.
Initializers that are not exactly representable stay fp32: nothing is ever rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SUFFIX = "__fp16"
MIN_ELEMENTS = 1024  # smaller tensors save too little to be worth a node


def narrow_exact_fp16(proto: Any) -> int:
    """Store each exactly-fp16 float initializer of `proto` (an onnx ModelProto) in fp16, in place.
    Returns the bytes saved."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    initializers, casts, saved = [], [], 0
    for init in graph.initializer:
        array = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if array is None or array.size < MIN_ELEMENTS or not _exact_in_fp16(array):
            initializers.append(init)
            continue
        initializers.append(numpy_helper.from_array(array.astype(np.float16), init.name + SUFFIX))
        casts.append(helper.make_node("Cast", [init.name + SUFFIX], [init.name], to=TensorProto.FLOAT,
                                      name=f"widen/{init.name}"))
        saved += array.size * 2
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # casts first: the graph stays topologically sorted
    return saved


def _exact_in_fp16(array: np.ndarray) -> bool:
    finite = np.isfinite(array).all()
    return bool(finite and np.array_equal(array.astype(np.float16).astype(np.float32), array))

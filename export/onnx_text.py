"""The exported text graph in bounded memory: a loop over label blocks, then GMC's own row loop.

A plain trace of the text graph is one pass over all N labels: the text encoder's activations
([N, C, width] per layer, four times that in the MLP) and, before GMC chunked inside the graph,
its [N, N, heads, dim] pair term (51 GB at N = 10,000) grow with N. The graph written here keeps
the interface of the traced one (tokens [N, C] -> embeddings [N, D], context [N, D]) and computes
exactly the same values, in pieces:

- the text encoder, traced once (TokenEncoder), becomes the body of an ONNX Loop over blocks of
  `TEXT_BLOCK` labels; each block's embeddings are appended to a sequence and concatenated;
- the label side (LabelSideGraph: GMC and the head's label constant) is traced with GMC's row loop
  kept as an ONNX Loop (sigrl.model.gmc scripts it when traced), so it holds one block of query
  rows of the pair term at a time.

Memory is then linear in N (a few [N, D] tensors), and ONNX Runtime frees each block's
intermediates before the next. The text encoder is per label, so the blocks change nothing.
"""

from __future__ import annotations

from pathlib import Path
import numpy as np

TEXT_BLOCK = 256  # labels per text-encoder pass inside the graph (ViT-B text at C = 77: ~0.3 GB)
_ENC = "enc/"  # prefix of the encoder's names inside the loop body


def compose_text_graph(encoder_path: Path, side_path: Path, out_path: Path, block: int = TEXT_BLOCK) -> None:
    """Write the looped text graph to out_path from the traced encoder (tokens -> embeddings) and
    the traced label side (embeddings -> context)."""
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    encoder = compose.add_prefix(onnx.load(str(encoder_path)), _ENC)
    side = onnx.load(str(side_path))
    (enc_in,), (enc_out,) = encoder.graph.input, encoder.graph.output

    # Body: (i, cond, seq) -> (cond, seq + [encoder(tokens[i*block : (i+1)*block])])
    body_nodes = [
        helper.make_node("Mul", ["loop/i", "loop/block"], ["loop/start0"]),
        helper.make_node("Unsqueeze", ["loop/start0", "loop/axis0"], ["loop/start"]),
        helper.make_node("Add", ["loop/start", "loop/block1"], ["loop/end"]),
        helper.make_node("Slice", ["tokens", "loop/start", "loop/end", "loop/axis0"], [enc_in.name]),
        *encoder.graph.node,
        helper.make_node("SequenceInsert", ["loop/seq_in", enc_out.name], ["loop/seq_out"]),
        helper.make_node("Identity", ["loop/cond_in"], ["loop/cond_out"]),
    ]
    body = helper.make_graph(
        body_nodes, "text_block",
        inputs=[
            helper.make_tensor_value_info("loop/i", TensorProto.INT64, []),
            helper.make_tensor_value_info("loop/cond_in", TensorProto.BOOL, []),
            helper.make_tensor_sequence_value_info("loop/seq_in", TensorProto.FLOAT, None),
        ],
        outputs=[
            helper.make_tensor_value_info("loop/cond_out", TensorProto.BOOL, []),
            helper.make_tensor_sequence_value_info("loop/seq_out", TensorProto.FLOAT, None),
        ],
    )
    nodes = [
        # trips = ceil(N / block)
        helper.make_node("Shape", ["tokens"], ["loop/shape"]),
        helper.make_node("Gather", ["loop/shape", "loop/zero"], ["loop/n"], axis=0),
        helper.make_node("Add", ["loop/n", "loop/block_minus_1"], ["loop/n_up"]),
        helper.make_node("Div", ["loop/n_up", "loop/block"], ["loop/trips"]),
        helper.make_node("SequenceEmpty", [], ["loop/seq0"], dtype=TensorProto.FLOAT),
        helper.make_node("Loop", ["loop/trips", "loop/true", "loop/seq0"], ["loop/seq"], body=body),
        helper.make_node("ConcatFromSequence", ["loop/seq"], ["embeddings"], axis=0),
        *side.graph.node,
    ]
    constants = [
        numpy_helper.from_array(np.array(block, np.int64), "loop/block"),
        numpy_helper.from_array(np.array([block], np.int64), "loop/block1"),
        numpy_helper.from_array(np.array(block - 1, np.int64), "loop/block_minus_1"),
        numpy_helper.from_array(np.array(0, np.int64), "loop/zero"),
        numpy_helper.from_array(np.array([0], np.int64), "loop/axis0"),
        numpy_helper.from_array(np.array(True), "loop/true"),
    ]
    graph = helper.make_graph(
        nodes, "sigrl_text",
        inputs=[_renamed(enc_in, "tokens")],
        outputs=[_renamed(enc_out, "embeddings"), *side.graph.output],
        initializer=[*constants, *encoder.graph.initializer, *side.graph.initializer],
    )
    model = helper.make_model(graph, opset_imports=list(encoder.opset_import), ir_version=encoder.ir_version,
                              producer_name="sigrl")
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


def _renamed(value_info, name: str):
    from onnx import ValueInfoProto

    out = ValueInfoProto()
    out.CopyFrom(value_info)
    out.name = name
    return out

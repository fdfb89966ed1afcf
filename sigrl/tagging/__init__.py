"""Batch tagging of image collections: discovery, decoding, batching, decisions and output.

Data flows one way: paths -> decoded uint8 -> (a runner) scores -> decisions -> records -> writer.
Nothing here imports torch: the decode path and the writers must stay cheap to import so that an
ONNX Runtime run starts fast.
"""

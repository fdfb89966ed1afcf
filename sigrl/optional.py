"""Heavy optional dependencies (ONNX Runtime, TensorRT, pyarrow, Ray), imported where they are used.

    ort = require("onnxruntime", "the onnx backend needs onnxruntime ({err}); install it with: ...")

One way to import such a module, for every caller: the module itself, or a SigrlError whose
message says which extra to install. `{err}` in the message is replaced by the ImportError's text.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sigrl.errors import SigrlError


def require(module: str, message: str, *submodules: str) -> ModuleType:
    """`module` (after importing `submodules` of it too, e.g. "parquet" of pyarrow), or a SigrlError
    with `message`, in which `{err}` stands for the import error."""
    try:
        found = importlib.import_module(module)
        for name in submodules:
            importlib.import_module(f"{module}.{name}")
    except ImportError as err:
        raise SigrlError(message.replace("{err}", str(err))) from None
    return found

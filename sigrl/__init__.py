"""sigrl: SigRL multi-label image tagging (model library, checkpoints, metrics).

Importing this package stays light: no onnxruntime, tensorrt or typer, and torch only where a
submodule needs it.
"""

__version__ = "0.1.0"

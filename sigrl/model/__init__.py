"""The SigRL model tree: backbone, text side, GMC, SVFR, scoring, and the model factory."""

from sigrl.model.factory import create_model, load_model, save_model
from sigrl.model.sigrl import LabelSide, SigRL

__all__ = ["LabelSide", "SigRL", "create_model", "load_model", "save_model"]

"""One tiny ONNX export shared by the export tests (about a second to build and verify)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    from sigrl.export.exporter import export_model

    out = tmp_path_factory.mktemp("export") / "tiny"
    return export_model("sigrl-tiny", out, format="onnx", precision="int8")

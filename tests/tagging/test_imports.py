import subprocess
import sys
from pathlib import Path

MODULES = ["inputs", "decode", "scoring", "decisions", "records", "outputs", "runs", "spec", "engines.local", "api",
           "calibrate"]


def test_tagging_library_does_not_import_heavy_packages():
    # The ONNX Runtime tagging path must start fast: none of these may come in through tagging.
    code = (
        "import sys\n"
        + "".join(f"import sigrl.tagging.{m}\n" for m in MODULES)
        + "print(sorted(m for m in ('torch', 'torchvision', 'open_clip', 'pyarrow', 'typer') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"

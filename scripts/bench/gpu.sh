#!/usr/bin/env bash
# The GPU rows of the bench: the same `sigrl bench` command, run once on a machine with an NVIDIA
# GPU (and TensorRT for the trt row). The results folder is named after the CPU and the GPU, e.g.
# bench/results/amd-epyc-16c-nvidia-h100-80gb-hbm3/, and its JSON names the card and driver.
#
#   pip install -e ".[onnx,trt,bench]"      # onnxruntime-gpu, tensorrt<11, matplotlib
#   bash scripts/bench/gpu.sh                        # then commit bench/results/<machine-id>/
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible to torch: the GPU rows would all be 'unavailable'"
print("GPU:", torch.cuda.get_device_name(0))
PY
exec sigrl bench --reference "$@"  # the committed folder; a plain `sigrl bench` writes to sigrl-bench/

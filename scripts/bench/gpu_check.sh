#!/usr/bin/env bash
# One pass of the GPU checks on a fresh CUDA machine that has torch but no network, in about five
# minutes: install what is missing from carried wheels, record the GPU, run the tests that use CUDA,
# the bench's torch rows on the GPU, and `sigrl tag` throughput on the GPU at fp32/fp16/bf16.
#
#   OUT=/some/folder bash scripts/bench/gpu_check.sh
#
# Wheels: pure-Python packages missing there (open_clip_torch and what it needs) go in .whl/ at the
# repository root; sigrl itself is installed editable with no dependencies and no network. Fetch them
# on a machine with PyPI (the versions installed next to this checkout):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.7.0
# Every step has a time limit drawn from one overall budget; a step that fails or times out is
# recorded and the next one still runs. What lands in $OUT (flat, at most a handful of files):
#   gpu_check.log   everything printed, step by step, with each step's exit code and seconds
#   summary.txt     one line per step
#   results.tar.gz  bench/results/<machine-id>/ (bench.{json,csv,md,png}, head.*, gpu_tag.{json,md})
#   bench.md, gpu_tag.md (, gpu_decode.md)   the reports, for reading without unpacking
#
# Knobs (environment): PYTHON (python3), GPU_CHECK_BUDGET_S (330), GPU_CHECK_SITE (/tmp/site: where
# the wheels go), GPU_CHECK_ALLOW_CPU=1 (no GPU: CPU rows and small sizes, to try the script
# anywhere), GPU_CHECK_STEPS (a subset of "install env tests bench tag cputag gpudecode"; the default
# leaves out cputag and gpudecode; env is needed by every step after it), GPU_CHECK_FORCE_INSTALL=1 (install sigrl even
# where it already imports), GPU_CHECK_BENCH_ARGS / GPU_CHECK_TAG_ARGS / GPU_CHECK_CPUTAG_ARGS /
# GPU_CHECK_DECODE_ARGS (replace the default arguments).
#
# cputag runs `scripts/bench/tagging.py --only photos-12mp` on the machine's CPU cores (limit 300 s, not yet
# run there; the GPU is not used): `sigrl tag` against the naive loop on 12 MP photos where the decode
# pool has more than 2 cores. Run it alone: GPU_CHECK_STEPS="install env cputag".
set -uo pipefail
cd "$(dirname "$0")/../.."

export OUT=${OUT:-/tmp/gpu_check_out}
export PY=${PYTHON:-python3}
export WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}
export SITE=${GPU_CHECK_SITE:-/tmp/site}
export SIGRL_CACHE=$WORK/cache
export PYTHONUNBUFFERED=1
export ALLOW_CPU=${GPU_CHECK_ALLOW_CPU:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-330}
STEPS=${GPU_CHECK_STEPS:-install env tests bench tag}
mkdir -p "$OUT" "$WORK"
rm -f "$WORK/machine_id" "$WORK/safepath"

# --- the steps (each runs in its own bash under `timeout`) ---------------------------------------
step_install() {
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
            || return 1
    else
        echo "no .whl/ folder: nothing carried to install"
    fi
    local here
    here=$("$PY" -c "import pathlib, sigrl, sigrl.cli, sigrl.export, sigrl.bench; print(pathlib.Path(sigrl.bench.__file__).resolve().parent)" 2>/dev/null)
    if [[ "$here" == "$PWD/bench" && "${GPU_CHECK_FORCE_INSTALL:-0}" != 1 ]]; then
        echo "sigrl already imports from this checkout"
    else
        # Editable, as CI installs it: the package-dir mapping then resolves to these folders. Where
        # that fails (an old setuptools), a plain install next to the wheels, and Python told not to
        # put the working directory first on sys.path, where the checkout's sigrl/ would shadow it.
        if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .; then
            echo "editable install failed; installing sigrl into $SITE instead"
            "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target "$SITE" . || return 1
            touch "$WORK/safepath"
        fi
    fi
    "$PY" -P -c "import open_clip, sigrl, sigrl.cli, sigrl.export, sigrl.bench; print('open_clip', open_clip.__version__, 'sigrl', sigrl.__version__, 'from', sigrl.__file__)" \
        && sigrl --version || return 1
    "$PY" -m pip list 2>/dev/null | grep -iE "^(torch|torchvision|timm|huggingface.hub|regex|numpy|pillow|onnx|onnxruntime|setuptools|pytest|pytest-xdist|scikit-image|matplotlib) " || true
}

step_env() {
    nvidia-smi || echo "nvidia-smi: not available"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    "$PY" -P - <<'PY'
import os, sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version())
ok = torch.cuda.is_available()
print("cuda available:", ok)
if ok:
    p = torch.cuda.get_device_properties(0)
    print("device:", torch.cuda.get_device_name(0), f"sm_{p.major}{p.minor}", f"{p.total_memory / 2**30:.1f} GiB",
          p.multi_processor_count, "SMs")
    a = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
    print("bf16 matmul sanity:", float((a @ a).float().abs().mean()))
if not ok and os.environ.get("ALLOW_CPU") != "1":
    sys.exit("torch sees no CUDA GPU (set GPU_CHECK_ALLOW_CPU=1 to go on without one)")
from sigrl.environment import machine_id
open(os.path.join(os.environ["WORK"], "machine_id"), "w").write(machine_id())
print("machine id:", machine_id())
PY
    local rc=$?
    sigrl info
    return $rc
}

step_tests() {
    # The gpu/trt-marked tests, and the runtime, tagging and CLI tests, whose device "auto" picks the
    # GPU where there is one. -P: sigrl resolves through its install, not the checkout's folder.
    # With pytest-xdist, one worker per file group and few threads each (about 90 s on 2 cores serially).
    local par=()
    if "$PY" -c "import xdist" 2>/dev/null && (($(nproc) >= 8)); then
        par=(-n 8 --dist loadfile)
        export OMP_NUM_THREADS=2
    fi
    "$PY" -P -m pytest -q -rsfE -p no:cacheprovider -m "not slow" "${par[@]}" \
        tests/runtime tests/tagging tests/export/test_tensorrt.py tests/test_cli.py
}

step_bench() {
    # The torch rows: fp32 on the CPU (the reference) and fp32/fp16 on the GPU; head scaling at small N.
    # Written where every step writes, $RESULTS (bench/results/<machine-id>/ on a GPU run): named
    # explicitly, since a plain `sigrl bench` never writes into bench/results/.
    # shellcheck disable=SC2086
    sigrl bench ${GPU_CHECK_BENCH_ARGS:---backends torch --precisions fp32,fp16 --batch-sizes 1,8,32,128 --labels-sweep 20,81} --out "$RESULTS"
}

step_tag() {
    # shellcheck disable=SC2086
    "$PY" -P scripts/bench/gpu_tag.py --out "$RESULTS" --work "$WORK/gpu_tag" \
        ${GPU_CHECK_TAG_ARGS:---timeout 60}
}
step_cputag() {
    # Not a GPU step: scripts/bench/tagging.py's 12 MP case on this machine's CPU cores (the GPU unused), where
    # sigrl's decode pool has many cores and the naive loop still decodes on one thread.
    # shellcheck disable=SC2086
    "$PY" -P scripts/bench/tagging.py --out "$RESULTS" --work "$WORK/tagging" \
        ${GPU_CHECK_CPUTAG_ARGS:---only photos-12mp --photos-12mp 200}
}
step_gpudecode() {
    # Issue 16: GPU decoding against CPU decoding, model-only against end to end (about 6 minutes on an
    # H200; most of it makes the 22,000 JPEGs, kept in $WORK between runs). Run it alone:
    #   GPU_CHECK_STEPS="install env gpudecode" GPU_CHECK_BUDGET_S=560 bash scripts/bench/gpu_check.sh
    # shellcheck disable=SC2086
    "$PY" -P scripts/bench/gpu_decode.py --out "$RESULTS" --work "$WORK/gpu_decode" ${GPU_CHECK_DECODE_ARGS:-}
}
export -f step_install step_env step_tests step_bench step_tag step_cputag step_gpudecode

# --- the driver ----------------------------------------------------------------------------------
SUMMARY=()
FAILED=0

run_step() {  # name, its own limit in seconds
    local name=$1 cap=$2 left limit start rc
    if [[ " $STEPS " != *" $name "* ]]; then
        echo "=== [$name] not asked for (GPU_CHECK_STEPS)"
        return
    fi
    left=$((BUDGET - SECONDS - 10))  # keep a few seconds to pack the results
    limit=$((cap < left ? cap : left))
    if ((limit < 15)); then
        echo "=== [$name] skipped: the budget is spent"
        SUMMARY+=("$name: skipped (budget)")
        FAILED=1
        return
    fi
    echo "=== [$name] start $(date +%T), limit ${limit}s"
    start=$SECONDS
    timeout -k 5 "$limit" bash -c "step_$name"
    rc=$?
    local how="rc=$rc"
    ((rc == 124 || rc == 137)) && how="TIMED OUT after ${limit}s (rc=$rc)"
    echo "=== [$name] $how in $((SECONDS - start))s"
    SUMMARY+=("$name: $how, $((SECONDS - start))s")
    ((rc == 0)) || FAILED=1
}

collect() {  # results.tar.gz holds <machine-id>/...: unpack it with -C bench/results
    [[ -d "$RESULTS" ]] || return 0
    tar czf "$OUT/results.tar.gz" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")" \
        && echo "packed $RESULTS into results.tar.gz"
    for f in bench.md gpu_tag.md tagging.md gpu_decode.md; do
        if [[ -f "$RESULTS/$f" ]]; then cp "$RESULTS/$f" "$OUT/$f"; fi
    done
    return 0
}

main() {
    echo "gpu_check: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores, budget ${BUDGET}s, OUT=$OUT"
    echo "python: $(command -v "$PY"), allow cpu: $ALLOW_CPU"
    if [[ "$ALLOW_CPU" == 1 ]]; then  # a dry run without a GPU: CPU rows and small sizes
        : "${GPU_CHECK_BENCH_ARGS:=--quick --backends torch --precisions fp32 --labels-sweep 20}"
        : "${GPU_CHECK_DECODE_ARGS:=--small}"
        : "${GPU_CHECK_TAG_ARGS:=--device cpu --precisions fp32,bf16 --unique 8 --copies 2 --batch-size 8 --model sigrl-tiny}"
        export GPU_CHECK_BENCH_ARGS GPU_CHECK_TAG_ARGS GPU_CHECK_DECODE_ARGS
    fi
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$SITE/bin:$(dirname "$(command -v "$PY")"):$PATH"

    run_step install 60
    run_step env 40
    if [[ ! -s "$WORK/machine_id" ]]; then
        echo "no GPU (or no torch): the GPU steps cannot run"
        SUMMARY+=("tests, bench, tag: not run")
        FAILED=1
    else
        RESULTS=bench/results/$(cat "$WORK/machine_id")
        [[ "$ALLOW_CPU" == 1 ]] && RESULTS=$WORK/results/$(cat "$WORK/machine_id")  # never over a committed folder
        export RESULTS
        [[ -e "$WORK/safepath" ]] && export PYTHONSAFEPATH=1
        run_step tests 100
        run_step bench 180
        collect
        run_step tag 90
        collect
        run_step cputag 300
        collect
        run_step gpudecode 480
        collect
    fi
    printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
    echo "gpu_check: done in ${SECONDS}s, $([[ $FAILED == 0 ]] && echo 'every step passed' || echo 'some step failed')"
    return $FAILED
}

main 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"

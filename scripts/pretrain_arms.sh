#!/usr/bin/env bash
# Side-by-side pretraining arms on one world: each arm the same steps, batch, seed and precision,
# two at a time on one thread each, then the shape probe on the test split.
#   bash scripts/pretrain_arms.sh WORLD_DIR OUT_DIR [STEPS [WAVES]]
# WAVES (default "1 2 3") picks the pairs run: 1 patch vs stem, 2 + label loss (+ negatives),
# 3 the isolating pair (the patch convolution with label loss and negatives, the stem with negatives alone),
# 4 the word loss (the stem with label loss and negatives, without and with --word-loss).
set -euo pipefail
world=$1; out=$2; steps=${3:-120}; waves=${4:-1 2 3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
arm() {  # name, then extra sigrl pretrain options
  local name=$1; shift
  sigrl pretrain --data "$world/train.jsonl" --out "$out/$name.safetensors" --steps "$steps" --seed 0 \
    --precision bf16 --threads 1 "$@" > "$out/$name.log" 2>&1
  python "$here/shape_probe.py" --clip "$out/$name.safetensors" --data "$world/test.jsonl" --out "$out/$name.probe.json" > /dev/null
}
for wave in $waves; do
  case $wave in
    1) arm patch-caption --arch clip-world-tiny &
       arm stem-caption --arch clip-world-stem & ;;
    2) arm stem-label --arch clip-world-stem --label-loss 1 &
       arm stem-label-negatives --arch clip-world-stem --label-loss 1 --hard-negatives 3 & ;;
    3) arm patch-label-negatives --arch clip-world-tiny --label-loss 1 --hard-negatives 3 &
       arm stem-negatives --arch clip-world-stem --hard-negatives 3 & ;;
    4) arm stem-label-negatives --arch clip-world-stem --label-loss 1 --hard-negatives 3 &
       arm stem-label-negatives-words --arch clip-world-stem --label-loss 1 --hard-negatives 3 --word-loss 1 & ;;
  esac
  wait
done
python - "$out" <<'PY'
import json, sys, pathlib
rows = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.probe.json")):
    r = json.loads(p.read_text()); name = p.name[:-len(".probe.json")]
    log = (p.parent / f"{name}.log").read_text().strip().splitlines()
    run = next((json.loads(l) for l in log if l.startswith('{"steps"')), {})
    rows.append(f"| {name} | {run.get('steps')} | {run.get('images_per_second')} | {r['linear_probe']['shape']:.3f} | "
                f"{r['linear_probe']['colour']:.3f} | {r['same_colour_shape_top1']:.3f} | {r['zero_shot_map']['all']:.3f} | "
                f"{r['zero_shot_map']['seen']:.3f} | {r['zero_shot_map']['unseen']:.3f} |")
print("| arm | steps | img/s | shape probe | colour probe | same-colour top-1 | zero-shot mAP | seen | unseen |")
print("|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
PY

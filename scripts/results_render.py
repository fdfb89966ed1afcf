"""Rendering of docs/results.md from the ledger that scripts/results.py writes (no computation here)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from results_jobs import CLIP, OV_BASE, OV_JOBS, OV_ROWS, SPML_BASE, SPML_ROWS, UNSEEN_WORLD

REPO = Path(__file__).resolve().parents[1]


# -------------------------------------------------------------------------------------
def _values(ledger: dict, run: str | None, variant: str, base: str, metric) -> list[float]:
    keys = [base] if run is None else [f"{run}-s{s}" for s in ledger["seeds"]]
    found = [ledger["evals"][k]["results"][variant] for k in keys
             if k in ledger["evals"] and variant in ledger["evals"][k]["results"]]
    return [100 * metric(f) for f in found]


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _difference(a: list[float], b: list[float]) -> str:
    """Mean difference a - b, starred where it exceeds 2 standard errors (Welch; a single value is
    a deterministic figure with no seed variance)."""
    if not a or not b:
        return "-"
    var = lambda v: statistics.variance(v) / len(v) if len(v) > 1 else 0.0  # noqa: E731
    diff, se = statistics.mean(a) - statistics.mean(b), math.sqrt(var(a) + var(b))
    if se == 0:
        return f"{diff:+.1f} (n/a)" if len(a) == len(b) == 1 else f"{diff:+.1f}"
    return f"{diff:+.1f}{' *' if abs(diff) > 2 * se else ''}"


def _table(ledger: dict, rows, base_row: str, base_key: str, metrics: dict) -> list[str]:
    values = {row: {m: _values(ledger, run, variant, base_key, f) for m, f in metrics.items()}
              for row, run, variant in rows}
    first = next(iter(metrics))
    lines = ["| model | " + " | ".join(metrics) + f" | {' / '.join(k for k in metrics if 'mAP' in k)} minus "
             f"{base_row} | seeds | train wall s |", "|---" * (len(metrics) + 4) + "|"]
    for row, run, _ in rows:
        if not values[row][first]:
            continue  # a row not run (the diagnostic runs only when named)
        cells = [_cell(values[row][m]) for m in metrics]
        diffs = " / ".join(_difference(values[row][m], values[base_row][m]) for m in metrics if "mAP" in m)
        walls = [ledger["steps"][f"train {run} s{s}"]["wall_seconds"] for s in ledger["seeds"]
                 if run and f"train {run} s{s}" in ledger["steps"]]
        diffs = "-" if row == base_row else diffs
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {diffs} | {len(values[row][first])} | "
                     + (" / ".join(f"{w:.0f}" for w in walls) or "-") + " |")
    return lines


def clip_facts(out: Path) -> dict:
    from sigrl.checkpoint import file_sha256, read_metadata

    summary = read_metadata(out / CLIP).get("summary", {})
    return {"sha256": file_sha256(out / CLIP), "steps": summary.get("steps"),
            "train_seconds": summary.get("train_seconds"), "images_per_second": summary.get("images_per_second"),
            "zero_shot": summary.get("zero_shot", {})}


def _probe_line(ledger: dict) -> list[str]:
    probe = ledger.get("probe")
    if not probe:
        return []
    lp = probe["linear_probe"]
    return [f"- Does its image tower see shape (`scripts/shape_probe.py`, {probe['single_object_scenes']} single-object "
            f"test scenes)? A linear probe of the frozen image embedding names the shape {100 * lp['shape']:.1f} % and the "
            f"colour {100 * lp['colour']:.1f} % of the time (chance 12.5 %); ranking the 8 shapes of the object's own "
            f"colour with the text side puts the true one first {100 * probe['same_colour_shape_top1']:.1f} % of the time.",
            *_patch_words_line(probe)]


def _patch_words_line(probe: dict) -> list[str]:
    words, prompts = probe.get("zero_shot_map_patch_words"), probe["zero_shot_map"]
    if not words:
        return []
    ratio = lambda m: m["unseen"] / m["seen"]  # noqa: E731
    return [f"- Zero-shot by patch words (each label the mean of its words' prompts, scored on the best patch; "
            f"`sigrl.train.zeroshot`): mAP **{words['all']:.3f}** (seen {words['seen']:.3f} / unseen "
            f"{words['unseen']:.3f}, {ratio(words):.2f}x), against {prompts['all']:.3f} ({prompts['seen']:.3f} / "
            f"{prompts['unseen']:.3f}, {ratio(prompts):.2f}x) by label prompts on the global embedding. The patch-words rows "
            "below score labels this way (`--variant patch --compose words`); every other head scores label prompts."]


def _unseen_world(ledger: dict, cfg: dict) -> list[str]:
    """GZSL / ZSL on a world of another seed: the initial backbone's heads and every OV candidate."""
    lines = ["", f"## On a world the models never saw (`{UNSEEN_WORLD}`: seed 1, first {cfg['test_limit']} test images)",
             "", "| model | GZSL mAP | ZSL mAP |", "|---|---|---|"]
    rows = [(row, None, variant) for row, run, variant in OV_ROWS if run is None]
    rows += [(row, run, "own") for row, run, _ in OV_ROWS if run in OV_JOBS]
    for row, run, variant in rows:
        keys = ["clip-ov-unseen-world"] if run is None else [f"{run}-s{s}-unseen-world" for s in ledger["seeds"]]
        found = [ledger["evals"][k]["results"][variant] for k in keys
                 if k in ledger["evals"] and variant in ledger["evals"][k]["results"]]
        lines.append(f"| {row} | {_cell([100 * f['gzsl']['mAP'] for f in found])} | "
                     f"{_cell([100 * f['zsl']['mAP'] for f in found])} |")
    return lines


def render(ledger: dict) -> str:
    cfg, clip = ledger["config"], ledger["clip"]
    zs = clip.get("zero_shot", {})
    ov = {f"{part.upper()} {m}": (lambda r, part=part, m=m: r[part][m])
          for part in ("zsl", "gzsl") for m in ("mAP", "F1@3", "F1@5")}
    lines = ["# Results on the procedural world", "",
             f"Generated by `{ledger.get('driver', 'python scripts/results.py')}` (paths below are inside its "
             "--out folder); do not edit by hand. The reading at the end comes from `docs/results-reading.md`.", "",
             "## Setup", "",
             "- World: `sigrl data synth --out world --seed 0` (20,000 train / 1,000 val / 5,000 test scenes at "
             "64 px; 8 colours x 8 shapes = 64 labels, 16 of them unseen and compositional; training scenes "
             "contain seen labels only).",
             f"- Backbone: `{CLIP}` (sha256 `{clip['sha256'][:16]}...`) from `{ledger['steps'].get('pretrain', {}).get('command', 'sigrl pretrain')}`: "
             f"{clip['steps']} steps of batch 128 in {clip['train_seconds']} s ({clip['images_per_second']} img/s). "
             f"Its zero-shot mAP on the 5,000 test images: **{zs.get('map_all', float('nan')):.3f}** over all 64 labels "
             f"(seen {zs.get('map_seen', float('nan')):.3f}, unseen {zs.get('map_unseen', float('nan')):.3f}; chance "
             f"{zs.get('chance_map_all', float('nan')):.3f}).",
             *_probe_line(ledger),
             f"- Every training run: a seeded random {cfg['train_limit']} training images; {cfg['head_steps']} "
             f"head-only steps of batch 32 on cached backbone features (head lr 1e-3, 50 warm-up steps, "
             f"cosine), then {cfg['epochs']} end-to-end epoch(s); the MKT, CLIP and patch-words heads, which have no "
             f"weights of their own, train the backbone end to end for {cfg['mkt_epochs']} epoch(s) instead (backbone lr as "
             f"the recipe, warm-up {cfg['warmup_epochs']} epoch). Validation mAP over the seen labels on {cfg['val_limit']} val "
             f"images picks the checkpoint; `--precision {cfg['precision']}`; local score over the top "
             f"{cfg['topk']} of 64 patches. Seeds {', '.join(map(str, ledger['seeds']))} (initialisation, image "
             "subset, order, augmentation). Test: the first "
             f"{cfg['test_limit']} test images.",
             "- OV recipe: ranking hinge on sqrt(N)-scaled scores (margin 1) + L1 distillation; last 2 blocks + "
             "ln_post + proj train with layer decay 0.65 (AdamW 1e-4, wd 0.05). SPML: full fine-tune (Adam 1e-5) "
             "with a learnable logit scale; EM alpha 0.1, EM+PL beta 0.7 / threshold 0.3.",
             "- Metrics: mAP over classes with a positive; ZSL = the 16 unseen labels scored as a set, on images "
             "with an unseen positive; GZSL = all 64 labels on all images; F1@3 and F1@5 micro-averaged. Cells are "
             "mean ± sample standard deviation over seeds, in percent. The difference column is the row's mean "
             "minus the reference row's, marked * where it exceeds 2 standard errors (Welch, from the seed "
             "spreads; rows without training are deterministic).", "",
             "## Open vocabulary (trained on the 48 seen labels)", ""]
    lines += _table(ledger, OV_ROWS, OV_BASE, "clip-ov", ov)
    lines += ["", "## Single positive (SigRL head, 48 seen labels, one observed positive per training image)", ""]
    lines += _table(ledger, SPML_ROWS, SPML_BASE, "clip-spml", {"mAP": lambda r: r["mAP"]})
    lines += _unseen_world(ledger, cfg)
    lines += ["", "## What the trained heads do (first 64 test images, all 64 labels)", "",
              "Mean pairwise cosine of the label embeddings H and of GMC's output Hg (the reference GMC's "
              "collapse shows as Hg near 1), GMC's residual gate, and the mean cosine between SVFR's "
              "reconstructed patches R and the raw patches F (1 = SVFR changes nothing).", "",
              "| run | H | Hg | gate | cos(R, F) |", "|---|---|---|---|---|"]
    for key, diag in sorted(ledger.get("diagnostics", {}).items()):
        cells = [diag.get(k) for k in ("pairwise_cosine_H", "pairwise_cosine_Hg", "gmc_gate", "svfr_cosine_R_F")]
        lines.append(f"| {key} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    if ledger.get("default_model"):
        dm = ledger["default_model"]
        lines += ["", f"The embedded default model is `{dm['from']}` ({dm.get('job', 'ov-sigrl')}, seed {dm['seed']}: the best "
                  f"validation mAP, {100 * dm['val_mAP']:.1f} over seen labels, among the trained OV runs), weights in fp16, "
                  f"{dm['bytes'] / 1e6:.1f} MB."]
    lines += ["", "## Commands and wall times", "",
              f"Machine: {ledger['machine']['cpus']} CPUs, {ledger['machine']['platform']}; "
              f"{cfg['parallel']} commands at a time, {cfg['threads']} thread(s) each. Run inside the --out folder:",
              "", "```"]
    for key, step in sorted(ledger["steps"].items()):
        lines += [f"# {key}: {step['wall_seconds']} s (load average after: {step['loadavg_after']})", step["command"]]
    lines += ["```", ""]
    notes = REPO / "docs" / "results-reading.md"
    if notes.exists():
        lines += ["## Reading", "", notes.read_text()]
    return "\n".join(lines)



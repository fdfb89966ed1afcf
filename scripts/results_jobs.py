"""What scripts/results.py runs and how docs/results.md lays it out: the backbone recipe, the
training jobs and the table rows."""

from __future__ import annotations

from dataclasses import dataclass

CLIP = "clip-world.safetensors"
UNSEEN_WORLD = "world-seed1"  # a world the models never saw: the default model's check
# The world CLIP's recipe (docs/world.md): conv stem, caption loss with hard negatives, the
# multi-positive sigmoid losses over the 48 seen label prompts and over their 16 words, and the same
# labels scored on patch tokens as the mean of their words; the step count is the driver's --pretrain-steps.
PRETRAIN_ARGS = ("--arch", "clip-world-stem", "--label-loss", "1", "--word-loss", "1", "--patch-loss", "1",
                 "--hard-negatives", "3", "--precision", "bf16", "--threads", "2", "--seed", "0")


@dataclass(frozen=True)
class Job:
    name: str  # run folder prefix; the seed is appended
    setting: str
    args: tuple[str, ...] = ()
    variants: str = "own"  # heads evaluated on the trained backbone


JOBS = [
    Job("ov-mkt", "ov", ("--variant", "mkt")),
    Job("ov-clip", "ov", ("--variant", "clip")),
    # labels as the mean of their words' prompts, scored by the best patch: the form the world
    # CLIP's patch loss trains (sigrl.config.TextConfig.compose)
    Job("ov-patch-words", "ov", ("--variant", "patch", "--compose", "words")),
    Job("ov-sigrl", "ov", ()),
    Job("ov-sigrl-refgmc", "ov", ("--reference-gmc",)),
    Job("ov-no-gmc", "ov", ("--no-gmc",)),
    Job("ov-no-svfr", "ov", ("--no-svfr",)),
    Job("spml-an", "spml", ("--loss", "an")),
    Job("spml-em", "spml", ("--loss", "em")),
    Job("spml-em_pl", "spml", ("--loss", "em_pl")),
]
# Heads without weights of their own: only end-to-end epochs can train them.
WEIGHTLESS = ("ov-mkt", "ov-clip", "ov-patch-words")
# Candidates for the embedded default model (the best validation mAP among them is packed); each
# is also evaluated on a world of another seed.
OV_JOBS = ("ov-mkt", "ov-clip", "ov-patch-words", "ov-sigrl", "ov-sigrl-refgmc", "ov-no-gmc", "ov-no-svfr")
# Run for the first seed only: does SVFR gain from a longer head phase?
DIAGNOSTIC_JOBS = [Job("ov-sigrl-long", "ov", ("--head-steps", "1500"))]
# (row, run or None for the initial backbone, variant)
OV_ROWS = [
    ("CLIP zero-shot (initial backbone)", None, "clip"),
    ("MKT-style head, untrained (initial backbone)", None, "mkt"),
    ("Patch words, zero-shot (initial backbone)", None, "patch-words"),
    ("MKT-style head, trained", "ov-mkt", "own"),
    ("CLIP head (global score only), trained", "ov-clip", "own"),
    ("Patch words (best patch, labels from words), trained", "ov-patch-words", "own"),
    ("SigRL, reference GMC", "ov-sigrl-refgmc", "own"),
    ("SigRL (residual GMC, the default)", "ov-sigrl", "own"),
    ("SigRL w/o GMC", "ov-no-gmc", "own"),
    ("SigRL w/o SVFR", "ov-no-svfr", "own"),
    ("SigRL, 5x the head steps (diagnostic, first seed)", "ov-sigrl-long", "own"),
]
OV_BASE = "MKT-style head, trained"
SPML_ROWS = [("CLIP zero-shot (initial backbone)", None, "clip"), ("AN", "spml-an", "own"),
             ("EM", "spml-em", "own"), ("EM+PL", "spml-em_pl", "own")]
SPML_BASE = "CLIP zero-shot (initial backbone)"

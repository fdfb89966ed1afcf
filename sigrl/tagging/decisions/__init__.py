"""Decisions: from a score matrix to tags, and what decides them.

    rule.py        DecisionRule, make_rule, decide (thresholds and top-k), near_ties
    thresholds.py  per-label thresholds: read, write, fit, the model's stored ones
    choose.py      choose_rule: the rule a run uses, from the options or the stored thresholds
    labels.py      read_labels: a label file

Imports nothing else of sigrl.tagging; everything above it may import it.
"""

from sigrl.tagging.decisions.choose import choose_rule
from sigrl.tagging.decisions.labels import label_key, read_labels
from sigrl.tagging.decisions.rule import SCORES_MODES, DecisionRule, decide, make_rule, near_ties, select
from sigrl.tagging.decisions.thresholds import (
    fit_thresholds, read_thresholds, stored_thresholds, thresholds_path_for, write_thresholds,
)

__all__ = [
    "SCORES_MODES", "DecisionRule", "choose_rule", "decide", "fit_thresholds", "label_key", "make_rule", "near_ties",
    "read_labels", "read_thresholds", "select", "stored_thresholds", "thresholds_path_for", "write_thresholds",
]

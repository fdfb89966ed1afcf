"""Composition-aware hard-negative captions for world scenes (NegCLIP's idea, Yuksekgonul et al. 2023).

A random batch of world scenes can be told apart by which colours are present and how many objects
there are, so a caption loss is minimised without ever looking at shape (docs/world.md). A hard
negative is the scene's own caption with one fact changed that only shape or binding can reveal:
- one object's shape swapped ("a red circle" -> "a red star"), or
- the colours of two objects of different shapes exchanged ("a red circle and a blue star" ->
  "a blue circle and a red star").
Each swap must produce a label that is absent from the scene, so the caption is really false, and
every label of the changed scene must be a *training* label (one that occurs as a positive in the
training data), so an unseen label never appears as text in training.

The negative is rendered by the world's own caption grammar from the changed object list, so true
and false captions come from one distribution and differ only in the swapped fact.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from sigrl.data.world_vocab import SHAPES, WorldObject, caption, label_of


def objects_from_meta(meta: Mapping[str, Any]) -> list[WorldObject] | None:
    """The scene's objects from a world manifest record's `meta` (None when it has no layout)."""
    layout = meta.get("objects")
    if not layout:
        return None
    out = []
    for o in layout:
        colour, shape = o["label"].split(" ", 1)
        out.append(WorldObject(colour=colour, shape=shape, size=o["size"], texture=o["texture"], cx=o["cx"],
                               cy=o["cy"], radius=o["radius"], angle=o["angle"], visible=o.get("visible", 1.0)))
    return out


def _shape_swaps(objects: Sequence[WorldObject], allowed: Collection[str]) -> list[list[WorldObject]]:
    present = {o.label for o in objects}
    out = []
    for i, obj in enumerate(objects):
        for shape in SHAPES:
            new = label_of(obj.colour, shape)
            if shape != obj.shape and new in allowed and new not in present:
                out.append([*objects[:i], replace(obj, shape=shape), *objects[i + 1:]])
    return out


def _colour_swaps(objects: Sequence[WorldObject], allowed: Collection[str]) -> list[list[WorldObject]]:
    present = {o.label for o in objects}
    out = []
    for i, a in enumerate(objects):
        for j in range(i + 1, len(objects)):
            b = objects[j]
            if a.colour == b.colour or a.shape == b.shape:
                continue
            new_a, new_b = label_of(b.colour, a.shape), label_of(a.colour, b.shape)
            if new_a in allowed and new_b in allowed and (new_a not in present or new_b not in present):
                changed = list(objects)
                changed[i], changed[j] = replace(a, colour=b.colour), replace(b, colour=a.colour)
                out.append(changed)
    return out


def negative_scenes(objects: Sequence[WorldObject], allowed: Collection[str]) -> list[list[WorldObject]]:
    """Every changed scene one swap away: all its labels allowed, at least one absent from the original."""
    return _shape_swaps(objects, allowed) + _colour_swaps(objects, allowed)


def negative_captions(objects: Sequence[WorldObject], allowed: Collection[str], count: int,
                      rng: np.random.Generator) -> tuple[str, ...]:
    """Up to `count` false captions of the scene (fewer when no allowed swap exists)."""
    candidates = negative_scenes(objects, allowed)
    if not candidates:
        return ()
    picks = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return tuple(caption(candidates[int(k)], rng) for k in picks)

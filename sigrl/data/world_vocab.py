"""The vocabulary of the procedural world: attributes, labels, the compositional split, captions.

A label is a colour + shape phrase ("red circle"); 8 colours x 8 shapes give 64 labels. Size
(small/medium/large) and texture (plain/striped) vary per object and appear in captions but are
not labels. A quarter of the labels are unseen: for colour index c and shape index s the label is
unseen when (s - c) mod 8 is 0 or 3. That is a Latin pattern: every colour and every shape is part
of exactly 2 unseen and 6 seen labels, so each unseen label is a new combination of attributes
that training shows in other combinations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 35),
    "green": (40, 160, 55),
    "blue": (35, 75, 215),
    "purple": (135, 50, 185),
    "pink": (245, 125, 190),
    "white": (245, 245, 245),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart")
PLURALS = {"cross": "crosses"}
SIZES: dict[str, tuple[float, float]] = {  # object radius as a fraction of the image side
    "small": (0.085, 0.12),
    "medium": (0.13, 0.18),
    "large": (0.19, 0.25),
}
TEXTURES = ("plain", "striped")
_UNSEEN_OFFSETS = (0, 3)


def label_of(colour: str, shape: str) -> str:
    return f"{colour} {shape}"


def all_labels() -> tuple[str, ...]:
    """Labels in a fixed order: colour-major over COLOURS, then SHAPES."""
    return tuple(label_of(c, s) for c in COLOURS for s in SHAPES)


def unseen_labels() -> tuple[str, ...]:
    n = len(SHAPES)
    return tuple(
        label_of(c, s)
        for ci, c in enumerate(COLOURS)
        for si, s in enumerate(SHAPES)
        if (si - ci) % n in _UNSEEN_OFFSETS
    )


def seen_labels() -> tuple[str, ...]:
    unseen = set(unseen_labels())
    return tuple(lab for lab in all_labels() if lab not in unseen)


@dataclass(frozen=True)
class WorldObject:
    colour: str
    shape: str
    size: str
    texture: str
    cx: float  # centre, pixels
    cy: float
    radius: float  # pixels
    angle: float  # degrees
    visible: float = 1.0  # fraction of the object's area not covered by later objects

    @property
    def label(self) -> str:
        return label_of(self.colour, self.shape)


_SCENE_TEMPLATES = (
    "{}.",
    "a picture of {}.",
    "there is {} in the scene.",
    "{} on a cluttered background.",
    "an image showing {}.",
    "this scene contains {}.",
    "i can see {}.",
    "a noisy photo with {}.",
)
_NUMBERS = ("", "a", "two", "three", "four", "five")


def _noun(shape: str, count: int) -> str:
    return shape if count == 1 else PLURALS.get(shape, shape + "s")


def _phrase(group: list[WorldObject], rng: np.random.Generator, terse: bool) -> str:
    """One noun phrase for all objects sharing a label: 'two red circles', 'a star that is blue'."""
    obj, count = group[0], len(group)
    noun = _noun(obj.shape, count)
    adjectives = []
    if not terse and count == 1 and rng.random() < 0.35:
        adjectives.append(obj.size)
    if not terse and obj.texture == "striped" and rng.random() < 0.5:
        adjectives.append("striped")
    if not terse and rng.random() < 0.25:
        verb = "is" if count == 1 else "are"
        return f"{_NUMBERS[count]} {' '.join(adjectives + [noun])} that {verb} {obj.colour}"
    return f"{_NUMBERS[count]} {' '.join(adjectives + [obj.colour, noun])}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def caption(objects: list[WorldObject], rng: np.random.Generator) -> str:
    """A caption listing every object in varied phrasing and order."""
    groups: dict[str, list[WorldObject]] = {}
    for obj in objects:
        groups.setdefault(obj.label, []).append(obj)
    terse = len(groups) >= 4  # keeps long scenes inside a short text context
    phrases = [_phrase(g, rng, terse) for g in groups.values()]
    order = rng.permutation(len(phrases))
    body = _join([phrases[i] for i in order])
    return _SCENE_TEMPLATES[int(rng.integers(len(_SCENE_TEMPLATES)))].format(body)

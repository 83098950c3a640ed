"""Example before maps: a few real Dubai val crops (image + map, shipped under `assets/examples/` with their
attribution), and procedural town maps drawn by code for any class set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .classes import ClassSet
from .runtime import EXAMPLES_DIR


@dataclass(frozen=True)
class RealExample:
    """A real aerial image and its land-cover map (same size), as listed in `assets/examples/examples.json`."""

    name: str
    image: Path
    map: Path
    class_set: str
    attribution: str


def real_examples(folder: str | Path = EXAMPLES_DIR) -> list[RealExample]:
    """The real examples listed in `folder`/examples.json ([] when the folder is absent)."""
    index = Path(folder) / "examples.json"
    if not index.is_file():
        return []
    entries = json.loads(index.read_text(encoding="utf-8"))["examples"]
    return [RealExample(e["name"], index.parent / e["image"], index.parent / e["map"], e["class_set"],
                        e["attribution"]) for e in entries]


def make_example_map(class_set: ClassSet, size: int = 256, seed: int = 0) -> np.ndarray:
    """A plausible town map: land, a road grid, building blocks, a water body and vegetation patches.

    Uses the class names of `dubai-landcover` (land, water, building, vegetation, road); other class sets
    map missing names to class 0.
    """
    idx = {name: i for i, name in enumerate(class_set.names)}

    def cls(name: str) -> int:
        return idx.get(name, 0)

    rng = np.random.default_rng(seed)
    m = np.full((size, size), cls("land"), np.uint8)
    # water: an ellipse near one corner
    cx, cy = int(rng.integers(size // 8, size // 3)), int(rng.integers(size * 2 // 3, size - size // 8))
    cv2.ellipse(m, (cx, cy), (size // 5, size // 8), float(rng.uniform(0, 180)), 0, 360, cls("water"), -1)
    # vegetation patches
    for _ in range(4):
        c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        cv2.circle(m, c, int(rng.integers(size // 24, size // 10)), cls("vegetation"), -1)
    # roads: two horizontal and two vertical
    width = max(3, size // 40)
    for pos in rng.choice(np.arange(size // 6, size - size // 6), 2, replace=False):
        cv2.line(m, (0, int(pos)), (size - 1, int(pos)), cls("road"), width)
    for pos in rng.choice(np.arange(size // 6, size - size // 6), 2, replace=False):
        cv2.line(m, (int(pos), 0), (int(pos), size - 1), cls("road"), width)
    # buildings: rectangles placed on land only
    land = cls("land")
    for _ in range(60):
        w, h = (int(v) for v in rng.integers(size // 32, size // 10, 2))
        x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        if (m[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] == land).all():
            m[y : y + h, x : x + w] = cls("building")
    return m

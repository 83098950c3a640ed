"""STAR pairs (Zheng et al., ICCV 2021): change pairs with no generator, the floor a generator must beat.

Two unrelated real images of the same size form a pair: A is one generated pair's before image, B the before
image of another pair cut from a different source tile, and the label is where their land-cover maps differ
(with `--change-classes`, `train-cd` counts only changes to or from those classes: the XOR of their masks).
Built from a `changeanywhere generate` folder, so STAR and the generator's pairs share tiles and crops.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..cd.data import donor_indices
from ..change_classes import counted_target
from ..classes import ClassSet
from ..errors import ChangeAnywhereError
from ..io import atomic_copy, atomic_write_png, atomic_write_text
from ..labels import encode_change_label
from ..maps import read_map


def star_partner(i: int, tiles: list[str], rng: np.random.Generator) -> int | None:
    """The pair whose before image becomes pair `i`'s B: a donor (`cd.data.donor_indices`, so prefixes of a set
    are stable) cut from another source tile; None when every donor shares `i`'s tile."""
    others = [j for j in donor_indices(i, len(tiles)) if tiles[j] != tiles[i]]
    return int(others[int(rng.integers(len(others)))]) if others else None


def read_manifest(generated: Path) -> list[dict]:
    """The records of a `generate` folder's `manifest.jsonl`, in pair order."""
    path = generated / "manifest.jsonl"
    if not path.is_file():
        raise ChangeAnywhereError(f"{generated} has no manifest.jsonl: expected the output of `changeanywhere "
                                  "generate`")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(records, key=lambda r: int(r["index"]))


def build_star_set(generated: str | Path, out: str | Path, seed: int = 0, progress: bool = True) -> int:
    """Build `out/{A,B,label,label_A,label_B}` from a `generate` folder: pair i keeps its A and before map;
    B and the after map are those of its partner (`star_partner`); the label marks every pixel where the two
    maps differ. Writes `star.json` (each pair's partner and tiles) and copies `generation.json` (the class
    set, for `--change-classes`). Returns the number of pairs."""
    generated, out = Path(generated), Path(out)
    records = read_manifest(generated)
    settings = generated / "generation.json"
    if not settings.is_file():
        raise ChangeAnywhereError(f"{generated} has no generation.json: expected the output of `changeanywhere "
                                  "generate`")
    class_set = ClassSet.from_dict(json.loads(settings.read_text(encoding="utf-8"))["class_set"])
    tiles = [str(r["source"]["image"]) for r in records]
    for d in ("A", "B", "label", "label_A", "label_B"):
        (out / d).mkdir(parents=True, exist_ok=True)
    pairs = []
    for i, rec in enumerate(tqdm(records, desc="STAR pairs", disable=not progress)):
        j = star_partner(i, tiles, np.random.default_rng([seed, i]))
        if j is None:
            continue
        mine, theirs = rec["files"], records[j]["files"]
        before = read_map(generated / mine["label_A"], class_set)
        after = read_map(generated / theirs["label_A"], class_set)
        if before.shape != after.shape:
            raise ChangeAnywhereError(f"pairs {rec['id']} and {records[j]['id']} differ in size: STAR pairs "
                                      "need tiles of one size")
        stem = Path(mine["A"]).stem
        atomic_copy(generated / mine["A"], out / "A" / Path(mine["A"]).name)
        atomic_copy(generated / theirs["A"], out / "B" / f"{stem}{Path(theirs['A']).suffix}")
        atomic_copy(generated / mine["label_A"], out / "label_A" / Path(mine["label_A"]).name)
        atomic_copy(generated / theirs["label_A"], out / "label_B" / f"{stem}{Path(theirs['label_A']).suffix}")
        atomic_write_png(out / "label" / f"{stem}.png", encode_change_label(counted_target(before, after, None)))
        pairs.append({"id": rec["id"], "partner": records[j]["id"], "tile_A": tiles[i], "tile_B": tiles[j]})
    atomic_copy(settings, out / "generation.json")
    info = {"source": str(generated), "pairs": len(pairs), "seed": seed, "class_set": class_set.name,
            "method": "STAR: two unrelated real images, label = where their maps differ", "partners": pairs}
    atomic_write_text(out / "star.json", json.dumps(info, indent=2) + "\n")
    return len(pairs)

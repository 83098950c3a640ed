"""Make the app's real examples: 256² crops of Dubai val tiles (`*_008`, `*_009`), image + colour map, under
`assets/examples/`, with `examples.json` (names, files, where each crop comes from, attribution).

    python scripts/make_example_assets.py [--data ../shared/data/dubai-landcover] [--out assets/examples]

Each tile's crop is the 256² window (on a 64 px grid) with the most even class mix and almost no unlabeled
pixels, so the example shows every class there is to paint. Deterministic: rerunning writes the same files.
The dataset's terms allow at most 4 such crops in the repository (see assets/README.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from changeanywhere.classes import ClassSet
from changeanywhere.io import atomic_write_png, atomic_write_text
from changeanywhere.labels import IGNORE_INDEX
from changeanywhere.maps import read_map, write_map

ROOT = Path(__file__).resolve().parents[1]
TILES = ("tile1_008", "tile4_008", "tile5_008", "tile8_009")
SIZE, STEP = 256, 64
ATTRIBUTION = ("Dubai aerial imagery: MBRSC; labels: Humans in the Loop (open-access 'Semantic segmentation of "
               "aerial imagery' dataset)")


def best_window(label: np.ndarray, k: int) -> tuple[int, int]:
    """(x, y) of the 256² window with the highest class entropy among those under 1 % unlabeled."""
    best, where = -1.0, (0, 0)
    h, w = label.shape
    for y in range(0, h - SIZE + 1, STEP):
        for x in range(0, w - SIZE + 1, STEP):
            win = label[y : y + SIZE, x : x + SIZE]
            if (win == IGNORE_INDEX).mean() > 0.01:
                continue
            p = np.bincount(win[win != IGNORE_INDEX], minlength=k) / win.size
            entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
            if entropy > best:
                best, where = entropy, (x, y)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dubai-landcover")
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "examples")
    args = ap.parse_args()
    cs = ClassSet.builtin("dubai-landcover")
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    for stem in TILES:
        label = read_map(args.data / "labels" / f"{stem}.png", cs)
        with Image.open(args.data / "images" / f"{stem}.jpg") as im:
            image = np.asarray(im.convert("RGB"))
        x, y = best_window(label, cs.num_classes)
        crop = (slice(y, y + SIZE), slice(x, x + SIZE))
        atomic_write_png(args.out / f"{stem}_image.png", image[crop])
        write_map(args.out / f"{stem}_map.png", label[crop], cs)
        entries.append({"name": f"Dubai {stem} (real image)", "image": f"{stem}_image.png",
                        "map": f"{stem}_map.png", "class_set": cs.name,
                        "source": {"image": f"images/{stem}.jpg", "label": f"labels/{stem}.png", "x": x, "y": y,
                                   "size": SIZE, "split": "val"},
                        "attribution": ATTRIBUTION})
        print(stem, x, y)
    atomic_write_text(args.out / "examples.json", json.dumps({"examples": entries}, indent=2) + "\n")


if __name__ == "__main__":
    main()

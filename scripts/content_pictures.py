"""Pictures of the change content: A | B | label with bank content and with diffusion content, side by side.

- `docs/images/v4_val_pairs.jpg`: 8 Dubai val tiles (the eval-generator tiles), each with the same events,
  content from the bank (left) and painted by the model (right);
- `docs/images/v4_foreign.jpg`: LoveDA and Potsdam tiles (class sets the model never saw: bank content, not
  refined) and a LEVIR-CD before image under a simple all-land map (new buildings from the Dubai bank).

Usage: python scripts/content_pictures.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def label_rgb(mask: np.ndarray) -> np.ndarray:
    return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2)


def row(pair, gap: int = 4) -> list[np.ndarray]:
    pad = np.full((pair.before_image.shape[0], gap, 3), 255, np.uint8)
    return [pair.after_image, pad, label_rgb(pair.label), pad]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    from changeanywhere.bank import ObjectBank
    from changeanywhere.classes import ClassSet
    from changeanywhere.data import find_pairs, load_pairs, tiles
    from changeanywhere.fidelity import select_tiles
    from changeanywhere.hub import load_pipeline
    from changeanywhere.image_utils import load_rgb
    from changeanywhere.pairs import PairSettings, build_pairs, simulate_events
    from changeanywhere.runtime import DEFAULT_BANK

    pipe = load_pipeline(None, device="cpu", dtype="fp32")
    pipe.set_backend("auto")
    dubai = ClassSet.builtin("dubai-landcover")
    bank = ObjectBank.load(DEFAULT_BANK)
    t = select_tiles(str(DATA / "dubai-landcover"), dubai, "val", 256, 32)
    picks = [1, 5, 9, 13, 17, 21, 25, 29]
    rows = []
    for i in picks:
        seed = 1000 + i
        cells = [t.images[i], np.full((256, 4, 3), 255, np.uint8)]
        for content in ("bank", "diffusion"):
            s = PairSettings(content=content)
            change, _ = simulate_events(t.maps[i], dubai, seed, s, bank, t.images[i])
            (pair,) = build_pairs(pipe, [t.images[i]], [change], [seed], dubai, s, bank=bank)
            cells += row(pair, 4) + ([np.full((256, 12, 3), 255, np.uint8)] if content == "bank" else [])
        rows.append(np.hstack(cells))
    args.out.mkdir(parents=True, exist_ok=True)
    grid = np.vstack([np.vstack([r, np.full((4, r.shape[1], 3), 255, np.uint8)]) for r in rows])
    cv2.imwrite(str(args.out / "v4_val_pairs.jpg"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])

    foreign = []
    for name in ("loveda", "potsdam"):
        cs = ClassSet.builtin(name)
        root = DATA / "landcover-extra" / name
        loaded = load_pairs(find_pairs(root), cs)
        own = ObjectBank.build(((f"{name}_{k}", im, m) for k, (im, m) in enumerate(loaded)), cs, origin=name)
        for k, (im, m) in enumerate(tiles(loaded, 256)[:6:2]):
            s = PairSettings()
            change, _ = simulate_events(m, cs, 7 + k, s, own, im)
            (pair,) = build_pairs(pipe, [im], [change], [7 + k], cs, s, bank=own)
            foreign.append(np.hstack([im, np.full((256, 4, 3), 255, np.uint8), *row(pair)]))
    levir = DATA / "cd-real" / "levir-test10" / "A"
    for k, path in enumerate(sorted(levir.glob("*.png"))[5:50:15]):
        im = load_rgb(path)
        m = np.zeros(im.shape[:2], np.uint8)  # a simple map: all land
        s = PairSettings(event_types=("add",), num_events=(3, 5))
        change, _ = simulate_events(m, dubai, 11 + k, s, bank, im)
        (pair,) = build_pairs(pipe, [im], [change], [11 + k], dubai, s, bank=bank)
        foreign.append(np.hstack([im, np.full((256, 4, 3), 255, np.uint8), *row(pair)]))
    grid = np.vstack([np.vstack([r, np.full((4, r.shape[1], 3), 255, np.uint8)]) for r in foreign])
    cv2.imwrite(str(args.out / "v4_foreign.jpg"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {args.out / 'v4_val_pairs.jpg'} and {args.out / 'v4_foreign.jpg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

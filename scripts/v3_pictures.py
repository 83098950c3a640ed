"""Pictures of generator v3 at full size, for the README and the model card.

    python scripts/v3_pictures.py --out docs/images

- `v3_val_pairs.jpg`: 8 Dubai val tiles, one per row: A | B (non-change on, the default) | B (non-change off) |
  label | label_B (colour map). Events simulated with seed = row.
- `v3_foreign_scenes.jpg`: real LEVIR-CD and DSIFN-CD before images (never seen in training) with a simple map:
  the judge segmenter's map of A, edited by hand-placed rectangles (a building on open land, vegetation, water).
  Rows: A | map A | map B | B. Does the painted content take the scene's light?
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from changeanywhere import simulate_changes
from changeanywhere.fidelity import select_tiles
from changeanywhere.generator.drift import colour_stats
from changeanywhere.hub import load_pipeline
from changeanywhere.image_utils import load_rgb, uint8_to_tensor
from changeanywhere.pairs import PairSettings
from changeanywhere.segmenter import load_segmenter

GAP = 4


def grid(rows: list[list[np.ndarray]]) -> Image.Image:
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + GAP) - GAP, cols * (w + GAP) - GAP, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            im = np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im
            canvas[i * (h + GAP): i * (h + GAP) + h, j * (w + GAP): j * (w + GAP) + w] = im
    return Image.fromarray(canvas)


def val_pairs(pipe, out: Path, data: Path, n: int) -> None:
    cs = pipe.class_set
    t = select_tiles(str(data), cs, "val", 256, n)
    afters = [simulate_changes(m, cs, seed=i).after for i, m in enumerate(t.maps)]
    refs = [colour_stats(t.images[(i + 1) % n], t.maps[(i + 1) % n], cs.num_classes) for i in range(n)]
    nonchange = PairSettings().nonchange  # the pipeline fits it to its UNet
    kw = dict(seed=list(range(n)), output_type="np")
    on = pipe.change(list(t.images), list(t.maps), afters, nonchange=nonchange, nonchange_reference=refs, **kw)
    off = pipe.change(list(t.images), list(t.maps), afters, nonchange=0, **kw)
    rows = []
    for i in range(n):
        label = (on.change_masks[i] * 255).astype(np.uint8)
        rows.append([t.images[i], (on.images[i] * 255).round().astype(np.uint8),
                     (off.images[i] * 255).round().astype(np.uint8), label, cs.indices_to_colors(afters[i])])
    grid(rows).save(out / "v3_val_pairs.jpg", quality=88)
    print("wrote", out / "v3_val_pairs.jpg")


def foreign_scenes(pipe, out: Path, cd_real: Path, segmenter_dir: str) -> None:
    cs = pipe.class_set
    seg = load_segmenter(segmenter_dir)
    names = {n: i for i, n in enumerate(cs.names)}
    picks = [cd_real / "levir-test10" / "A" / "test_10_r0256_c0256.png",
             cd_real / "levir-test10" / "A" / "test_10_r0512_c0000.png",
             cd_real / "dsifn-test10" / "A" / "0.png", cd_real / "dsifn-test10" / "A" / "3.png"]
    rows = []
    for k, path in enumerate(p for p in picks if p.is_file()):
        a = load_rgb(path)[:256, :256]
        with torch.no_grad():
            before = seg.predict(uint8_to_tensor(a[None])).numpy()[0].astype(np.uint8)
        after = before.copy()
        after[40:110, 130:220] = names["building"]  # a new building block
        after[160:230, 30:100] = names["vegetation"] if k % 2 else names["water"]  # a park or a pond
        o = pipe.change(a, before, after, seed=k, output_type="np",
                        nonchange=PairSettings().nonchange)
        rows.append([a, cs.indices_to_colors(before), cs.indices_to_colors(after),
                     (o.images[0] * 255).round().astype(np.uint8)])
    grid(rows).save(out / "v3_foreign_scenes.jpg", quality=88)
    print("wrote", out / "v3_foreign_scenes.jpg")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="pipeline folder or Hub id (default: the embedded model)")
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    p.add_argument("--data", type=Path, default=Path("../shared/data/dubai-landcover"))
    p.add_argument("--cd-real", type=Path, default=Path("../shared/data/cd-real"))
    p.add_argument("--segmenter", default="checkpoints/segmenter-dubai")
    p.add_argument("--tiles", type=int, default=8)
    args = p.parse_args()
    pipe = load_pipeline(args.model, device="cpu", dtype="fp32")
    pipe.set_backend("auto")
    pipe.set_progress_bar_config(disable=True)
    args.out.mkdir(parents=True, exist_ok=True)
    val_pairs(pipe, args.out, args.data, args.tiles)
    foreign_scenes(pipe, args.out, args.cd_real, args.segmenter)


if __name__ == "__main__":
    main()

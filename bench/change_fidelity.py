"""Does B keep the real before image, its colour, and do synthesized images have real colour? (generator v2)

Independent of `eval-generator`: on evenly spread 256² val tiles, simulated change events, the pipeline's
defaults (drift as `generate`'s default), it prints per tile and on average:

    fit error   mean |B - (a·A + b)| (0-255) on unchanged pixels ≥ 8 px from any change, a, b fitted per
                channel (a global drift is forgiven, repainting is not)          target ≤ 8
    spread B/A  colour spread (per-pixel std over R, G, B) of B ÷ A's on those pixels   target ≥ 0.8
    synth/real  colour spread of images synthesized from the maps ÷ the real tiles'     target ≥ 0.8

and writes a picture per tile (A | after map | B drift off | B drift on | synthesized | real map) to --out.

Usage:
    python bench/change_fidelity.py                      # embedded model, 8 val tiles
    python bench/change_fidelity.py --tiles 4 --steps 20 --model DIR --out /tmp/cf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import add_data_args, data_missing, load_cpu_pipeline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(p, tiles=8)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for the per-tile pictures (PNG)")
    args = p.parse_args(argv)
    if data_missing(args.data):
        return 2

    from PIL import Image

    from changeanywhere.events import simulate_changes
    from changeanywhere.fidelity import select_tiles
    from changeanywhere.image_metrics import colour_spread, distance_from, fit_residual
    from changeanywhere.pairs import PairSettings

    pipe = load_cpu_pipeline(args.model)
    cs = pipe.class_set
    t = select_tiles(str(args.data), cs, "val", 256, args.tiles)
    defaults = PairSettings()
    rows = []
    fits, spreads, synth_ratio = [], [], []
    for i, (img, m) in enumerate(zip(t.images, t.maps, strict=True)):
        seed = args.seed + i
        after = simulate_changes(m, cs, seed=seed, num_events=defaults.num_events).after
        kw = dict(num_inference_steps=args.steps, seed=seed, output_type="np", nonchange=0)  # the drift alone
        on = pipe.change(img, m, after, drift=defaults.drift, **kw)
        b_on = (on.images[0] * 255).round().astype(np.uint8)
        off = pipe.change(img, m, after, **kw)
        b_off = (off.images[0] * 255).round().astype(np.uint8)
        syn = (pipe.synthesize(m, num_inference_steps=args.steps, seed=seed, output_type="np").images[0] * 255)
        syn = syn.round().astype(np.uint8)
        far = distance_from(on.change_masks[0]) >= 8
        far &= (m != 255) & (after != 255)
        fit = fit_residual(img, b_on, far)
        spread = colour_spread(b_on, far) / max(colour_spread(img, far), 1e-6)
        sr = colour_spread(syn) / max(colour_spread(img), 1e-6)
        fits.append(fit)
        spreads.append(spread)
        synth_ratio.append(sr)
        print(f"tile {i}: changed {on.change_masks[0].mean() * 100:.1f} %  fit error {fit:.2f}/255  "
              f"spread B/A {spread:.3f}  synth/real {sr:.3f}  (drift off: fit {fit_residual(img, b_off, far):.2f})")
        if args.out:
            rows.append(np.concatenate([img, cs.indices_to_colors(after), b_off, b_on, syn, cs.indices_to_colors(m)],
                                       axis=1))
    print(f"mean over {len(fits)} tiles ({args.steps} steps, drift {defaults.drift}): fit error "
          f"{np.mean(fits):.2f}/255 (target ≤ 8), spread B/A {np.mean(spreads):.3f} (≥ 0.8), synth/real "
          f"{np.mean(synth_ratio):.3f} (≥ 0.8)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(rows):
            Image.fromarray(r).save(args.out / f"tile{i:02d}.png")
        print(f"wrote {len(rows)} pictures to {args.out} (A | after map | B drift off | B drift on | synthesized | "
              "before map)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

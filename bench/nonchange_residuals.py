"""What real and naive pairs score on eval-generator's non-change figures: the reference points of
`unchanged_residual` and `changed_unchanged_ratio`.

    python bench/nonchange_residuals.py

Prints, with `image_metrics.colour_fit_residuals` (mean |A − fit(B)|, 0–255, the per-channel linear colour map
of B to A fitted on the unchanged pixels; mean over pairs):
- every real CD set in ../shared/data/cd-real: unchanged and changed residual, and their ratio;
- naive copy-paste (real texture of the target class pasted into each change, no jitter) on eval-generator's
  32 Dubai val tiles with its simulated events: the changed residual that the events themselves set, overall
  and per from → to transition (pixel-weighted).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def real_sets() -> None:
    from changeanywhere.image_metrics import colour_fit_residuals

    for folder in sorted(p for p in (SHARED / "cd-real").iterdir() if (p / "A").is_dir()):
        un, ch = [], []
        for a_path in sorted((folder / "A").iterdir()):
            label = next((folder / "label").glob(a_path.stem + ".*"))
            a = np.asarray(Image.open(a_path).convert("RGB"))
            b = np.asarray(Image.open(folder / "B" / a_path.name).convert("RGB"))
            changed = np.asarray(Image.open(label).convert("L")) > 127
            u, c = colour_fit_residuals(a, b, ~changed, ~changed, changed)
            un.append(u)
            if c is not None:
                ch.append(c)
        print(f"{folder.name:<16} {len(un):>4} pairs  unchanged {np.mean(un):5.1f}  changed {np.mean(ch):5.1f}  "
              f"ratio {np.mean(ch) / np.mean(un):.2f}")


def naive_floor() -> None:
    from changeanywhere import ClassSet, simulate_changes
    from changeanywhere.derived.naive import naive_after_image
    from changeanywhere.fidelity import _residual_report, select_tiles

    cs = ClassSet.builtin("dubai-landcover")
    t = select_tiles(str(SHARED / "dubai-landcover"), cs, "val", 256, 32)
    afters = np.stack([simulate_changes(m, cs, seed=i).after for i, m in enumerate(t.maps)])
    rng = np.random.default_rng(0)
    naive = np.stack([naive_after_image(a, m, am, rng, jitter=0.0) for a, m, am in zip(t.images, t.maps, afters,
                                                                                         strict=True)])
    unchanged = [m == am for m, am in zip(t.maps, afters, strict=True)]
    print("naive copy-paste on the 32 eval tiles:", _residual_report("", t.images, naive, unchanged))
    err_sum, count = defaultdict(float), defaultdict(int)
    for a, b, m, am, u in zip(t.images, naive, t.maps, afters, unchanged, strict=True):
        fitted = np.empty(a.shape)
        for c in range(3):
            g, o = np.polyfit(b[..., c][u].astype(float), a[..., c][u].astype(float), 1)
            fitted[..., c] = g * b[..., c] + o
        err = np.abs(a - fitted).mean(2)
        for f in range(cs.num_classes):
            for to in range(cs.num_classes):
                mask = (m == f) & (am == to) & ~u
                if mask.any():
                    err_sum[(f, to)] += float(err[mask].sum())
                    count[(f, to)] += int(mask.sum())
    for key in sorted(count, key=lambda k: -count[k]):
        print(f"  {cs.names[key[0]]:>10} → {cs.names[key[1]]:<10} {count[key]:>7} px  {err_sum[key] / count[key]:6.1f}")


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    real_sets()
    naive_floor()

"""What real content scores on eval-generator's painted-content figures: the ceilings of `changed_accuracy` and
`changed_kid` on the same 32 Dubai val tiles and the same simulated change regions.

    python bench/generator_ceilings.py

Prints:
- the judge segmenter's accuracy on the *real* before image inside the changed regions, against the before map
  (real content in the same places and shapes: what a perfect painter could hope for), overall and per class,
  and the class mix the events paint, weighted by the judge's real accuracy per class there;
- `changed_kid` of the real before image's own crops at the changed-region locations (nothing painted: real
  content of the *old* class), of naive copy-paste, and of real vs real, with eval-generator's crops, features
  and reference draws (`fidelity.changed_kid_report`'s recipe).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DUBAI = ROOT.parent / "shared" / "data" / "dubai-landcover"


def main() -> int:
    from changeanywhere.classes import ClassSet
    from changeanywhere.derived.naive import naive_after_image
    from changeanywhere.events import simulate_changes
    from changeanywhere.features import load_imagenet_lite0
    from changeanywhere.fidelity import changed_crops, class_crops, crop_features, select_tiles
    from changeanywhere.image_metrics import kid
    from changeanywhere.image_utils import uint8_to_tensor
    from changeanywhere.runtime import DEFAULT_SEGMENTER
    from changeanywhere.segmenter import load_segmenter

    if not DUBAI.is_dir():
        print(f"needs the Dubai land-cover set at {DUBAI} (../shared/data beside the repository)")
        return 1
    cs = ClassSet.builtin("dubai-landcover")
    tiles = select_tiles(str(DUBAI), cs, "val")  # eval-generator's tiles and events (seed = tile index)
    real, maps = tiles.images, tiles.maps
    afters = np.stack([simulate_changes(m, cs, seed=i).after for i, m in enumerate(maps)])
    changed = maps != afters
    pred = load_segmenter(DEFAULT_SEGMENTER).predict(uint8_to_tensor(real)).numpy()
    print(f"judge accuracy on all real pixels: {(pred == maps).mean():.4f}")
    print(f"judge accuracy on real content inside the changed regions (before map): "
          f"{(pred[changed] == maps[changed]).mean():.4f}")
    weighted, total = 0.0, 0
    for c, name in enumerate(cs.names):
        here = changed & (maps == c)
        acc = float((pred[here] == c).mean()) if here.any() else float("nan")
        painted = int((changed & (afters == c)).sum())
        weighted += painted * (0.0 if np.isnan(acc) else acc)
        total += painted
        print(f"  {name:<11} real accuracy in changed regions {acc:.3f} ({int(here.sum())} px); "
              f"painted as target {painted} px")
    print(f"judge accuracy a perfect painter could expect on the painted class mix: {weighted / total:.4f}")

    net = load_imagenet_lite0()

    def features(crops: list[np.ndarray]) -> np.ndarray:
        return crop_features(net, crops)

    seed, draws = 0, 4
    rng = np.random.default_rng(seed)
    naive = np.stack([naive_after_image(a, m, am, rng, jitter=0.0) for a, m, am in zip(real, maps, afters,
                                                                                          strict=True)])
    unpainted, classes = changed_crops(real, maps, afters, np.random.default_rng(seed))
    naive_crops, _ = changed_crops(naive, maps, afters, np.random.default_rng(seed))
    refs = [features(class_crops(real, maps, classes, rng)) for _ in range(draws + 1)]

    def mean_kid(other: np.ndarray) -> float:
        return float(np.mean([kid(r, other, seed=seed + i) for i, r in enumerate(refs[:draws])]))

    print(f"changed_kid recipe, {len(unpainted)} crops:")
    print(f"  real before image at the change locations (nothing painted): {mean_kid(features(unpainted)):.5f}")
    print(f"  naive copy-paste (changed_kid_naive):                         {mean_kid(features(naive_crops)):.5f}")
    print(f"  real vs real (changed_kid_real):                              {mean_kid(refs[draws]):.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

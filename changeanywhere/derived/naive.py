"""Naive synthetic change pairs (the no-diffusion baseline of the zero-shot experiment).

Given a before image, its land-cover map and a simulated after map (the same change events the generator
used), the naive after image is built by copy-paste: every changed pixel gets texture of its *target* class
copied from another place (a random shift) of the same tile or of other source tiles where that class lies;
pixels no shifted copy can reach get the class's mean colour plus noise. The whole composite is then given a
global colour jitter, so the unchanged part is a colour-jittered copy of the before image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..cd.data import DONOR_POOL, donor_indices, image_files, read_image
from ..classes import ClassSet
from ..errors import ChangeAnywhereError, MapSizeError
from ..io import atomic_copy, atomic_write_png, atomic_write_text
from ..labels import change_mask
from ..maps import read_map

Source = tuple[np.ndarray, np.ndarray]  # (HxWx3 uint8 image, HxW index map)


def jitter_image(image: np.ndarray, rng: np.random.Generator, strength: float = 0.1) -> np.ndarray:
    """Global per-channel gain (1 ± strength), brightness (± strength·64) and a little noise (σ 2)."""
    x = image.astype(np.float32)
    gain = 1 + strength * rng.uniform(-1, 1, size=3)
    bias = strength * 64 * rng.uniform(-1, 1)
    x = x * gain + bias + rng.normal(0, 2.0, size=x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def naive_after_image(
    before: np.ndarray,
    before_map: np.ndarray,
    after_map: np.ndarray,
    rng: np.random.Generator,
    sources: Sequence[Source] = (),
    class_colors: dict[int, np.ndarray] | None = None,
    jitter: float = 0.1,
    tries: int = 16,
) -> np.ndarray:
    """The naive after image (HxWx3 uint8) of `before` for the change `before_map` -> `after_map`.

    `sources` are extra (image, map) tiles to copy texture from (only those of the same size are used);
    `class_colors` the fallback mean colour per class for pixels no copy reaches.
    """
    if before.shape[:2] != before_map.shape or before_map.shape != after_map.shape:
        raise MapSizeError(f"image {before.shape[:2]}, before map {before_map.shape} and after map "
                           f"{after_map.shape} must have the same size")
    h, w = before_map.shape
    pool: list[Source] = [(before, before_map)] + [s for s in sources if s[1].shape == (h, w)]
    out = before.copy()
    changed = change_mask(before_map, after_map)
    for c in np.unique(after_map[changed]):
        todo = changed & (after_map == c)
        holders = [(img, m, np.flatnonzero(m == c)) for img, m in pool]
        holders = [hd for hd in holders if hd[2].size]
        for _ in range(tries if holders else 0):
            if not todo.any():
                break
            img, m, where = holders[int(rng.integers(len(holders)))]
            sy, sx = divmod(int(where[int(rng.integers(where.size))]), w)
            todo_idx = np.flatnonzero(todo)
            py, px = divmod(int(todo_idx[int(rng.integers(todo_idx.size))]), w)
            shift = (py - sy, px - sx)  # rolled[p] = source[s]
            fill = todo & (np.roll(m, shift, axis=(0, 1)) == c)
            out[fill] = np.roll(img, shift, axis=(0, 1))[fill]
            todo &= ~fill
        if todo.any():
            color = (class_colors or {}).get(int(c))
            if color is None:
                px_c = [img[m == c] for img, m in pool if (m == c).any()]
                color = np.concatenate(px_c).mean(0) if px_c else before[todo].mean(0)
            noise = rng.normal(0, 8.0, size=(int(todo.sum()), 3))
            out[todo] = np.clip(np.asarray(color, np.float32) + noise, 0, 255).astype(np.uint8)
    return jitter_image(out, rng, jitter)


def _class_colors(items: Sequence[tuple[Path, Path]], class_set: ClassSet, limit: int = 64) -> dict[int, np.ndarray]:
    sums = np.zeros((class_set.num_classes, 3))
    counts = np.zeros(class_set.num_classes)
    for a_path, map_path in items[:limit]:
        img, m = read_image(a_path), read_map(map_path, class_set)
        for c in range(class_set.num_classes):
            sel = m == c
            if sel.any():
                sums[c] += img[sel].sum(0)
                counts[c] += sel.sum()
    return {c: sums[c] / counts[c] for c in range(class_set.num_classes) if counts[c]}


def build_naive_set(generated: str | Path, out: str | Path, classes: str | ClassSet, seed: int = 0,
                    num_sources: int = 3, jitter: float = 0.1, progress: bool = True) -> int:
    """Build `out/A, out/B, out/label` from a `changeanywhere generate` folder (A/, label/, label_A/, label_B/):
    same before images, same events and change labels; only B is made naively. Returns the number of pairs."""
    generated, out = Path(generated), Path(out)
    class_set = classes if isinstance(classes, ClassSet) else ClassSet.load(classes)
    dirs = {d: generated / d for d in ("A", "label", "label_A", "label_B")}
    missing = [d for d, p in dirs.items() if not p.is_dir()]
    if missing:
        raise ChangeAnywhereError(f"{generated} lacks {', '.join(m + '/' for m in missing)}: expected the output "
                                  "of `changeanywhere generate` (A/, B/, label/, label_A/, label_B/)")
    files = {d: image_files(p) for d, p in dirs.items()}
    stems = sorted(set(files["A"]).intersection(*(set(f) for f in files.values())))
    if not stems:
        raise ChangeAnywhereError(f"{generated}: no stem is present in all of A/, label/, label_A/, label_B/")
    for d in ("A", "B", "label"):
        (out / d).mkdir(parents=True, exist_ok=True)
    colors = _class_colors([(files["A"][s], files["label_A"][s]) for s in stems[:DONOR_POOL]], class_set)
    for i, stem in enumerate(tqdm(stems, desc="naive pairs", disable=not progress)):
        r = np.random.default_rng([seed, i])
        before = read_image(files["A"][stem])
        before_map = read_map(files["label_A"][stem], class_set)
        after_map = read_map(files["label_B"][stem], class_set)
        donors = donor_indices(i, len(stems))  # earlier pairs only: prefixes of the set are stable
        others = [stems[j] for j in r.choice(donors, size=min(num_sources, len(donors)), replace=False)]
        sources = [(read_image(files["A"][s]), read_map(files["label_A"][s], class_set)) for s in others]
        after = naive_after_image(before, before_map, after_map, r, sources, colors, jitter)
        atomic_write_png(out / "B" / f"{stem}.png", after)
        for d in ("A", "label"):
            src = files[d][stem]
            atomic_copy(src, out / d / src.name)
    info = {"source": str(generated), "pairs": len(stems), "seed": seed, "num_sources": num_sources,
            "jitter": jitter, "class_set": class_set.name, "method": "naive copy-paste (no diffusion)"}
    atomic_write_text(out / "naive.json", json.dumps(info, indent=2) + "\n")
    return len(stems)


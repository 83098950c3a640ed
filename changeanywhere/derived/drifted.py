"""The drift arm of the zero-shot experiment: a generated folder's pairs with the generator's radiometric drift.

The pipeline applies its drift to the decoded after image, in pixels, after sampling (`generator.drift`); so
applying the same drift to the B images of a folder generated with drift off gives the drift-on pairs of the
same diffusion samples, at no extra sampling cost. Each pair's drift is seeded by (seed, pair index) and pulls
towards the colour statistics of another pair's before image (an earlier one, `cd.data.donor_indices`), as
`generate` pulls towards another source tile.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..cd.data import donor_indices, find_cd_pairs, read_image
from ..errors import ChangeAnywhereError
from ..generator.drift import DriftSettings, apply_drift, colour_stats, draw_drift
from ..io import atomic_copy, atomic_write_png, atomic_write_text
from ..seeds import derive_seed


def build_drifted_set(generated: str | Path, out: str | Path, seed: int = 0, strength: float = 1.0,
                      progress: bool = True) -> int:
    """Write `out/A, out/B, out/label` (and `out/drift.jsonl`): A and label copied, B with a seeded drift.
    Returns the number of pairs."""
    generated, out = Path(generated), Path(out)
    items = find_cd_pairs(generated)
    if len(items) < 2:
        raise ChangeAnywhereError(f"{generated}: the drift needs at least 2 pairs (one lends its colours)")
    settings = DriftSettings(strength=strength)
    for d in ("A", "B", "label"):
        (out / d).mkdir(parents=True, exist_ok=True)
    records = []
    for i, item in enumerate(tqdm(items, desc="drifted pairs", disable=not progress)):
        rng = np.random.default_rng(derive_seed(seed, i))
        donors = donor_indices(i, len(items))
        other = items[donors[int(rng.integers(len(donors)))]]
        reference = colour_stats(read_image(other.a))
        params = draw_drift(torch.Generator().manual_seed(derive_seed(seed, i, 1)), settings, reference)
        atomic_write_png(out / "B" / f"{item.stem}.png", apply_drift(read_image(item.b), params))
        atomic_copy(item.a, out / "A" / item.a.name)
        atomic_copy(item.label, out / "label" / item.label.name)
        records.append(json.dumps({"stem": item.stem, "drift_source": other.stem, "drift": params}))
    atomic_write_text(out / "drift.jsonl", "\n".join(records) + "\n")
    return len(items)

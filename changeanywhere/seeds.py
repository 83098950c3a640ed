"""Seeds of generated pairs: every random draw of a pair derives from the pair's own seed.

Sample i of a dataset has the seed `sample_seed(global_seed, i)`; its source tile, change events, diffusion
noise and split each draw from an independent stream `derive_seed(pair_seed, STREAM)`, never from a process
rank or a batch position, so a pair is the same however a run is split, resumed or grown.
"""

from __future__ import annotations

import numpy as np

# the independent streams of one pair seed
TILE, EVENTS, DIFFUSION, SPLIT, DRIFT_REFERENCE, CONTENT = 0, 1, 2, 3, 4, 6  # 5: generator.nonchange's


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed from non-negative integers (a `SeedSequence` hash: independent streams per key)."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sample_seed(global_seed: int, index: int) -> int:
    """Seed of sample `index`: depends only on (global seed, index), never on ranks or batches."""
    return derive_seed(global_seed, index)

"""The app's warm-up: one small generation at start, so that the first user does not pay the first call's set-up."""

from __future__ import annotations

import time

from ..examples import make_example_map
from .editing import make_after_map
from .generation import generate_variants
from .models import Models


def warm_up(models: Models, size: int = 128) -> float:
    """One small generation (a procedural `size`² map with random events, the model's defaults), so that the
    first user's Generate does not pay the one-time set-up of the first call (PyTorch and ONNX Runtime: 3.4 s
    of a 27 s first call at 512² measured on a busy 2-core CPU; none after this warm-up). Returns its seconds;
    0 when no generator is loaded."""
    if models.pipe is None:
        return 0.0
    t0 = time.perf_counter()
    before_map = make_example_map(models.class_set, size=size, seed=0)
    for seed in range(10):
        change = make_after_map(before_map, models.class_set, num_events=3, seed=seed)
        if change.change_mask.any():
            generate_variants(models, before_map, change, seed=0)
            break
    return time.perf_counter() - t0

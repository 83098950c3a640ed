"""Named diffusers schedulers for `--scheduler` and the benchmarks: one place that says which solver a name means.

The stochastic ones (DDIM with eta 1, DPM-Solver++ 2M SDE, Euler ancestral) draw fresh noise each step, which
keeps the colour of images synthesized from a map; deterministic solvers lose some (see bench/steps_curve.py).
"""

from __future__ import annotations

from typing import Any

import diffusers

from ..errors import ChangeAnywhereError

# name -> (diffusers class, config overrides applied on top of the model's own scheduler config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++2m-sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
}


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler called `name`, built from a model's scheduler config (betas, prediction type)."""
    if name not in SCHEDULERS:
        raise ChangeAnywhereError(f"unknown scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}")
    cls, overrides = SCHEDULERS[name]
    return getattr(diffusers, cls).from_config(base_config, **overrides)


def use_scheduler(pipe: Any, name: str | None) -> None:
    """Swap `pipe`'s scheduler for the named one in place; None keeps the model's own (its measured default)."""
    if name is not None:
        pipe.scheduler = make_scheduler(name, pipe.scheduler.config)

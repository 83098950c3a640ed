"""Which batches each process makes. Batch k is always the samples [kB, (k+1)B) and is computed in full (a
partly finished batch, or the last one past `num`, is recomputed as the same full batch and only its missing
samples are written), so a sample's bytes do not depend on how a run was interrupted, resumed, grown or split.
Whole unfinished batches are dealt to ranks round-robin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Plan:
    """Which batches each rank makes. Batch k = samples [k·B, (k+1)·B), computed in full."""

    num: int
    batch_size: int
    world: int
    done: list[int]  # finished samples below num
    pending: list[int]  # batches with an unfinished sample
    shares: list[list[int]]  # batches of each rank

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num / self.batch_size)

    def to_make(self, batches: Sequence[int]) -> list[int]:
        done = set(self.done)
        b = self.batch_size
        return [i for k in batches for i in range(k * b, min((k + 1) * b, self.num)) if i not in done]


def make_plan(num: int, batch_size: int, done: Sequence[int], world: int = 1) -> Plan:
    """Unfinished batches, dealt round-robin to `world` ranks (no duplicates, no gaps)."""
    done = sorted(i for i in set(done) if i < num)
    finished = set(done)
    b = batch_size
    pending = [
        k for k in range(math.ceil(num / b)) if any(i not in finished for i in range(k * b, min((k + 1) * b, num)))
    ]
    return Plan(num, b, world, done, pending, [pending[r::world] for r in range(world)])

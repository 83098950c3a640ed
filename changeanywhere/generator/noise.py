"""The random draws of one sampler run, per sample: start noise, mixing noise and the scheduler's variance noise.

Each sample draws from its own generator, in a fixed order (its start noise, then at every step i its mixing
noise while i < its own `mix_steps`, then its variance noise), so a sample's result never depends on its batch.
Where the draws happen is the `source`:

- `"step"`: from the per-sample CPU generators at every step, copied to the device (the CPU default);
- `"predrawn"`: the same numbers, all drawn before the loop and moved once (a GPU run that matches the CPU's
  noise exactly, at the price of drawing it on the host: about 80 M normals/s on one core);
- `"device"`: from per-sample generators on the device itself, seeded by one draw from each CPU generator
  (the GPU default: no host work or transfer per step; other numbers than the CPU's, equally seeded);
- `"auto"`: `"step"` on a CPU, `"device"` elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from ..runtime import resolve_noise_source

NoiseSourceName = Literal["auto", "step", "predrawn", "device"]  # `runtime.NOISE_SOURCES`; "auto": `runtime`


def device_generators(generators: Sequence[torch.Generator], device: torch.device) -> list[torch.Generator]:
    """One generator per sample on `device`, seeded by one draw from that sample's CPU generator."""
    seeds = [int(torch.randint(0, 2**63 - 1, (1,), generator=g)) for g in generators]
    return [torch.Generator(device).manual_seed(s) for s in seeds]


class SamplerNoise:
    """Per-sample noise of one run over `steps` (indices into the schedule): `start()`, then per step `mix(i)`
    (zeros for samples past their `mix_steps`) and `variance(i)`; `step_generators` for schedulers that draw."""

    def __init__(
        self,
        source: str,
        generators: Sequence[torch.Generator],
        shape: tuple[int, ...],
        device: torch.device,
        steps: range,
        mix_steps: Sequence[int] | None,
        variance: bool,
    ):
        self.source = resolve_noise_source(source, device)
        self.shape, self.device, self.steps = tuple(shape), torch.device(device), steps
        self.mix_steps = list(mix_steps) if mix_steps is not None else None
        self.generators = list(generators)
        self.step_generators = self.generators
        if self.source == "device":
            self.generators = self.step_generators = device_generators(generators, self.device)
        self._start: torch.Tensor | None = None
        self._mix: torch.Tensor | None = None
        self._var: torch.Tensor | None = None
        if self.source == "predrawn":
            self._predraw(variance)

    def _draw(self, g: torch.Generator) -> torch.Tensor:
        return torch.randn((1, *self.shape), generator=g, device=g.device, dtype=torch.float32)

    def _zeros(self, device: torch.device) -> torch.Tensor:
        return torch.zeros((1, *self.shape), device=device)

    def _mixes(self, b: int, i: int) -> bool:
        return self.mix_steps is not None and i < self.mix_steps[b]

    def _now(self, draw: Sequence[bool]) -> torch.Tensor:
        """One draw per sample (zeros where `draw` is False), joined on the device."""
        parts = [self._draw(g) if d else self._zeros(g.device) for g, d in zip(self.generators, draw, strict=True)]
        return torch.cat(parts).to(self.device)

    def _predraw(self, variance: bool) -> None:
        """Every draw of the run, sample by sample in the order `"step"` makes them, moved once."""
        n, batch = len(self.steps), len(self.generators)
        start = torch.empty((batch, *self.shape))
        mix = torch.zeros((n, batch, *self.shape)) if self.mix_steps is not None else None
        var = torch.empty((n, batch, *self.shape)) if variance else None
        for b, g in enumerate(self.generators):
            start[b] = self._draw(g)[0]
            for k, i in enumerate(self.steps):
                if mix is not None and self._mixes(b, i):
                    mix[k, b] = self._draw(g)[0]
                if var is not None:
                    var[k, b] = self._draw(g)[0]
        pin = self.device.type == "cuda"
        self._start, self._mix, self._var = (
            None if t is None else (t.pin_memory() if pin else t).to(self.device, non_blocking=pin)
            for t in (start, mix, var)
        )

    def start(self) -> torch.Tensor:
        """(B, *shape) start noise."""
        if self._start is not None:
            return self._start
        return self._now([True] * len(self.generators))

    def mix(self, i: int) -> torch.Tensor:
        """(B, *shape) noise for the known region at step i; zeros for samples no longer mixing."""
        if self._mix is not None:
            return self._mix[i - self.steps.start]
        return self._now([self._mixes(b, i) for b in range(len(self.generators))])

    def variance(self, i: int) -> torch.Tensor:
        """(B, *shape) variance noise for the scheduler's step i."""
        if self._var is not None:
            return self._var[i - self.steps.start]
        return self._now([True] * len(self.generators))

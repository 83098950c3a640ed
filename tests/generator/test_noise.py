"""Where the sampler's noise comes from (`generator.noise`): every source keeps a sample independent of its
batch, "predrawn" is exactly the CPU's per-step noise, and the step loop moves nothing between host and device."""

import copy

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from changeanywhere.generator.noise import SamplerNoise
from changeanywhere.generator.schedulers import make_scheduler
from changeanywhere.runtime import resolve_noise_source

SCHEDULERS = ["ddim", "dpm++2m", "dpm++2m-sde", "unipc"]  # dpm++2m-sde: the embedded default's
# the sampler alone: non-change off
RANGE = dict(content_scale=(0.3, 1.0), blend="latent", num_inference_steps=8, output_type="pt", nonchange=0)


def _pipe(tiny_pipe, scheduler: str = "ddim", source: str = "auto"):
    pipe = copy.copy(tiny_pipe)
    pipe.scheduler = make_scheduler(scheduler, tiny_pipe.scheduler.config)
    pipe.noise_source = source
    return pipe


def _after(before_map):
    after = before_map.copy()
    after[4:14, 4:14] = 0
    return after


@pytest.mark.parametrize("source", ["step", "predrawn", "device"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_sample_is_the_same_alone_and_in_a_batch_of_4(tiny_pipe, before_pair, name, source):
    """Seed 7 alone and at position 1 of a batch of 4, whose other samples stay anchored longer (content scale
    drawn per sample): the same after latent, whatever the scheduler and noise source."""
    img, m = before_pair
    after = _after(m)
    pipe = _pipe(tiny_pipe, name, source)
    alone = pipe.change(img, m, after, seed=[7], **RANGE)
    batch = pipe.change([img] * 4, [m] * 4, [after] * 4, seed=[5, 7, 9, 11], **RANGE)
    assert batch.mix_steps[1] == alone.mix_steps[0] < max(batch.mix_steps)
    np.testing.assert_allclose(alone.images[0].numpy(), batch.images[1].numpy(), atol=1e-4)
    assert (batch.images[0] - batch.images[1]).abs().mean() > 1e-3


def test_predrawn_noise_is_the_per_step_noise(tiny_pipe, before_pair):
    """All draws made before the loop give the very same pairs as draws made step by step (drift included)."""
    img, m = before_pair
    after = _after(m)
    kw = dict(RANGE, eta=0.5, drift=True, guidance_scale=2.0)
    step = _pipe(tiny_pipe, source="step").change([img] * 3, [m] * 3, [after] * 3, seed=4, **kw)
    pre = _pipe(tiny_pipe, source="predrawn").change([img] * 3, [m] * 3, [after] * 3, seed=4, **kw)
    torch.testing.assert_close(step.images, pre.images, rtol=0, atol=0)
    assert step.drifts == pre.drifts and step.mix_steps == pre.mix_steps
    for name in ("dpm++2m", "dpm++2m-sde"):
        dpm = [_pipe(tiny_pipe, name, s).synthesize([m, m], seed=2, num_inference_steps=5, output_type="pt").images
               for s in ("step", "predrawn")]
        torch.testing.assert_close(dpm[0], dpm[1], rtol=0, atol=0)


def test_device_noise_is_seeded_and_its_own(tiny_pipe, before_pair):
    """Per-sample device generators: reproducible, and other numbers than the CPU's per-step noise."""
    _, m = before_pair
    runs = [_pipe(tiny_pipe, source=s).synthesize(m, seed=3, num_inference_steps=4, output_type="pt").images
            for s in ("device", "device", "step")]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert (runs[0] - runs[2]).abs().mean() > 1e-3


def test_noise_source_names():
    assert resolve_noise_source("auto", torch.device("cpu")) == "step"
    assert resolve_noise_source("auto", torch.device("meta")) == "device"
    with pytest.raises(ValueError, match="noise source"):
        SamplerNoise("gpu", [], (1,), torch.device("cpu"), range(2), None, False)


class _Transfers(TorchFunctionMode):
    """Records explicit host→device transfers (`to`, `tensor`, ...) made while `armed`."""

    NAMES = {"to", "cuda", "copy_", "tensor", "as_tensor", "from_numpy"}

    def __init__(self):
        super().__init__()
        self.armed, self.seen = False, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if self.armed and name in self.NAMES and isinstance(out, torch.Tensor) and out.device.type == "meta":
            if name in ("tensor", "as_tensor", "from_numpy") or any(
                isinstance(a, torch.Tensor) and a.device.type == "cpu" for a in args
            ):
                self.seen.append(name)
        return out


@pytest.mark.parametrize(("name", "source", "clean"), [
    ("ddim", "predrawn", True), ("dpm++2m", "predrawn", True), ("dpm++2m-sde", "predrawn", True),
    ("ddim", "step", False),  # the CPU path copies its noise every step: the check sees it
])
def test_step_loop_reads_nothing_back_and_copies_nothing_in(tiny_pipe, name, source, clean):
    """The loop on the meta device (tensors without data: any `.item()`, `bool()` or `.cpu()` of a device
    tensor raises), mixing and classifier-free guidance on: after the first step, no host→device copy."""
    meta = torch.device("meta")
    pipe = _pipe(tiny_pipe, name, source)
    pipe.unet = copy.deepcopy(tiny_pipe.unet).to(meta)
    latent = (2, 3, 8, 8)
    watch = _Transfers()

    def arm(*_):
        watch.armed = True

    with watch:
        x = pipe._denoise(cond=torch.zeros(latent, device=meta),
                          generators=[torch.Generator().manual_seed(s) for s in (1, 2)], num_inference_steps=5,
                          eta=1.0, guidance_scale=2.0, device=meta, known_latents=torch.zeros(latent, device=meta),
                          keep_mask=torch.ones((2, 1, 8, 8), device=meta), mix_steps=[3, 5],
                          callback_on_step_end=arm)
    assert x.device == meta and x.shape == latent
    assert (watch.seen == []) == clean, watch.seen

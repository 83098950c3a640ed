"""Swapped schedulers (`generator.schedulers` and diffusers' own) in both entry points."""


import numpy as np
import pytest
import torch

from tests.helpers import encode_before, keep_cells, remove_building


@pytest.mark.parametrize("name", ["DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
                                  "EulerDiscreteScheduler", "DDIMScheduler", "dpm++2m-sde", "euler-a"])
def test_any_diffusers_scheduler(tiny_pipe, before_pair, name):
    """Swapped schedulers (diffusers classes, or the named ones of `generator.schedulers`, SDE and ancestral
    included) run both entry points, keep the anchored latents, and are recorded."""
    import copy

    import diffusers

    from changeanywhere.generator.schedulers import make_scheduler

    img, m = before_pair
    after = remove_building(m)
    pipe = copy.copy(tiny_pipe)
    if hasattr(diffusers, name):
        pipe.scheduler = getattr(diffusers, name).from_config(tiny_pipe.scheduler.config)
    else:
        pipe.scheduler = make_scheduler(name, tiny_pipe.scheduler.config)
    name = type(pipe.scheduler).__name__
    syn = pipe.synthesize(m, num_inference_steps=4, seed=0, output_type="np")
    assert np.isfinite(syn.images).all() and syn.sampler["scheduler"] == name
    out = pipe.change(img, m, after, num_inference_steps=4, seed=0, output_type="latent")
    known, keep = encode_before(pipe, img)[0], keep_cells(pipe, m, after)
    np.testing.assert_allclose(out.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    assert torch.isfinite(out.images).all() and out.sampler["scheduler"] == name
    again = pipe.change(img, m, after, num_inference_steps=4, seed=0, output_type="latent")
    torch.testing.assert_close(out.images, again.images)  # seeded, whatever the scheduler

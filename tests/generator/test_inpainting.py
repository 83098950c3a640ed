"""The inpainting denoiser's extra inputs (`generator.inpainting`): a widened UNet computes what the plain one did, the
condition hides the painted cells."""


import torch

from changeanywhere.generator.inpainting import inpaint_condition, widen_for_inpainting


def test_widened_unet_computes_what_the_plain_one_did(tiny_pipe):
    """New input channels start at zero: whatever the masked latent and mask, the output is unchanged."""
    latent = tiny_pipe.vae.config.latent_channels
    wide = widen_for_inpainting(tiny_pipe.unet, latent)
    assert wide.config.in_channels == tiny_pipe.unet.config.in_channels + latent + 1
    x = torch.randn(2, tiny_pipe.unet.config.in_channels, 8, 8)
    extra = inpaint_condition(torch.randn(2, latent, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float())
    t = torch.tensor([10, 500])
    with torch.no_grad():
        ref = tiny_pipe.unet(x, t).sample
        out = wide(torch.cat([x, extra], 1), t).sample
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_inpaint_condition_hides_the_painted_cells():
    z = torch.ones(1, 3, 4, 4)
    paint = torch.zeros(1, 1, 4, 4)
    paint[..., :2, :] = 1
    c = inpaint_condition(z, paint)
    assert c.shape == (1, 4, 4, 4)
    assert c[:, :3, :2].abs().sum() == 0 and (c[:, :3, 2:] == 1).all() and torch.equal(c[:, 3:], paint)

"""The colour autoencoder (`generator.autoencoder`): its first channels are the block means, save/load."""


import torch

from changeanywhere.generator.autoencoder import ColorAutoencoder


def test_colour_autoencoder_carries_colour(tmp_path):
    torch.manual_seed(0)
    ae = ColorAutoencoder(detail_channels=2, block_out_channels=(8, 8, 8), norm_num_groups=4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = ae.encode(x).latents
    assert z.shape == (2, 5, 8, 8) and ae.latent_channels == 5
    torch.testing.assert_close(z[:, :3], torch.nn.functional.avg_pool2d(x, 4))
    ae.register_to_config(latents_mean=[0.0] * 5, latents_std=[0.5] * 5)
    ae.save_pretrained(tmp_path / "ae")
    loaded = ColorAutoencoder.from_pretrained(tmp_path / "ae")
    torch.testing.assert_close(loaded.decode(z).sample, ae.decode(z).sample)
    assert loaded.config.latents_std == [0.5] * 5

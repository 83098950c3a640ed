"""`generator.compositing`: feathering, the latent keep mask, texture init from the same image."""


import numpy as np
import torch

from changeanywhere.generator.compositing import feather_weights, latent_keep_mask


def test_feather_and_keep_mask():
    changed = np.zeros((32, 32), bool)
    changed[10:14, 10:14] = True
    w = feather_weights(changed, 6)
    assert (w[changed] == 0).all() and w[0, 0] == 1 and 0 < w[10, 16] < 1
    keep = latent_keep_mask(torch.from_numpy(changed)[None], 4, free_band=1)[0, 0]
    assert keep[2:4, 2:4].eq(0).all() and keep[0, 0] == 1 and keep[1, 1] == 0 and keep[4, 4] == 0 and keep[5, 5] == 1


def test_texture_init_copies_the_new_class_from_elsewhere():
    """Free cells whose new class is water get latents of pure water cells of the same image."""
    from changeanywhere.generator.compositing import texture_init

    before = torch.zeros(1, 32, 32, dtype=torch.long)
    before[0, 24:, :] = 1  # a water strip
    after = before.clone()
    after[0, 4:12, 4:12] = 1  # land -> water
    known = torch.randn(1, 4, 8, 8)
    free = latent_keep_mask(after != before, 4, 1)[:, 0] < 0.5
    init = texture_init(known, before, after, free, 5, 4, [torch.Generator().manual_seed(0)])
    water_cells = {tuple(known[0, :, 6 + i // 8, i % 8].tolist()) for i in range(16)}
    for y in range(1, 3):
        for x in range(1, 3):
            assert tuple(init[0, :, y, x].tolist()) in water_cells  # changed cells: real water texture
    torch.testing.assert_close(init[0, :, 0, 5], known[0, :, 0, 5])  # band cells staying land keep theirs
    torch.testing.assert_close(init[:, :, 5:], known[:, :, 5:])

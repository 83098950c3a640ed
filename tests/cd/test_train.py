"""`cd.train`: the losses (OHEM cross-entropy, dice)."""


import pytest
import torch

from changeanywhere.cd.train import ohem_cross_entropy


def test_ohem_keeps_hardest():
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 1, 0] = torch.tensor([5.0, -5.0, 0.0, 2.0])
    target = torch.tensor([[[1, 1, 1, 255]]])
    per_pixel = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="none")[0, 0, :3]
    assert ohem_cross_entropy(logits, target, 1.0, 0) == pytest.approx(per_pixel.mean().item())
    # keep 1 of 3: the hardest (logit -5 on the change class)
    assert ohem_cross_entropy(logits, target, 0.3, 1) == pytest.approx(per_pixel.max().item())


def test_dice_loss_punishes_predicting_no_change_on_sparse_change():
    from changeanywhere.cd.train import dice_loss

    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, :4, :4] = 1  # 1.6 % change
    target[0, -1] = 255  # ignore
    none = torch.zeros(1, 2, 32, 32)
    none[:, 0] = 8.0  # confident "no change" everywhere
    right = torch.where(target == 1, 8.0, -8.0).float().unsqueeze(1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    assert dice_loss(none, target) > 0.9  # plain cross-entropy of this prediction is small: ~1.6 % of pixels wrong
    assert dice_loss(right, target) < 0.01

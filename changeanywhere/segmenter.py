"""A small land-cover segmenter: the semantic-fidelity judge of the generator evaluator.

Trained on real image/map crops only; it then scores real validation tiles (the ceiling) and images the
generator synthesized from the same maps. A plain `nn.Module` with `PyTorchModelHubMixin` (config +
safetensors, Hub I/O).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from tqdm.auto import tqdm

from .data import LandCoverCrops
from .labels import IGNORE_INDEX


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LandCoverSegmenter(
    nn.Module, PyTorchModelHubMixin, library_name="changeanywhere", tags=["segmentation"]
):
    """A compact U-Net: RGB in [-1, 1] (B,3,H,W) -> class logits (B,K,H,W); H, W multiples of 2^levels."""

    def __init__(
        self, num_classes: int = 5, widths: tuple[int, ...] = (16, 32, 64, 128), class_set: dict | None = None
    ):
        super().__init__()
        self.num_classes = num_classes
        self.class_set = class_set
        widths = tuple(widths)
        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for w_skip, w in zip(reversed(widths[:-1]), reversed(widths[1:]), strict=True):
            self.up.append(nn.ConvTranspose2d(w, w_skip, 2, stride=2))
            self.fuse.append(_block(2 * w_skip, w_skip))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips = []
        x = images
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1]), strict=True):
            x = fuse(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        """(B,3,H,W) in [-1,1] -> (B,H,W) class indices."""
        self.eval()
        device = next(self.parameters()).device
        return torch.cat(
            [
                self(images[i : i + batch_size].to(device)).argmax(1).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )


def confusion_matrix(
    pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, k: int
) -> np.ndarray:
    """K×K counts (rows = truth, columns = prediction), ignore pixels (≥ K) left out."""
    pred, target = np.asarray(pred).ravel().astype(np.int64), np.asarray(target).ravel().astype(np.int64)
    valid = target < k
    return np.bincount(target[valid] * k + pred[valid], minlength=k * k).reshape(k, k)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix (NaN for a class absent from truth and prediction)."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


@dataclass
class SegmenterTrainConfig:
    crop_size: int = 128
    batch_size: int = 16
    max_steps: int = 1500
    lr: float = 3e-3
    seed: int = 0
    color_jitter: float = 0.1


def _jitter(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Per-image brightness/contrast/colour jitter so the judge does not key on exact colours."""
    b = images.shape[0]
    gain = 1 + strength * (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1)
    bias = strength * (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1)
    return (images * gain + bias).clamp(-1, 1)


def train_segmenter(
    pairs_loaded: list,
    num_classes: int,
    cfg: SegmenterTrainConfig,
    class_set: dict | None = None,
    log_every: int = 100,
) -> tuple[LandCoverSegmenter, dict]:
    """Train on random real crops with cross-entropy (ignore excluded), AdamW + cosine decay, on the CPU/GPU."""
    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = LandCoverSegmenter(num_classes=num_classes, class_set=class_set).to(device)
    data = LandCoverCrops(
        pairs_loaded,
        crop_size=cfg.crop_size,
        length=cfg.max_steps * cfg.batch_size,
        augment=True,
        seed=cfg.seed,
    )
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=False, num_workers=0)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.max_steps) / cfg.max_steps))
        ),
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    start, losses = time.time(), []
    for step, batch in enumerate(tqdm(loader, total=cfg.max_steps, desc="train-segmenter")):
        images = _jitter(batch["image"], cfg.color_jitter, gen).to(device)
        loss = F.cross_entropy(model(images), batch["label"].to(device), ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % log_every == 0:
            tqdm.write(f"step {step + 1}: loss {np.mean(losses[-log_every:]):.4f}")
    model.eval()
    return model.cpu(), {
        "steps": cfg.max_steps,
        "wall_s": round(time.time() - start, 1),
        "final_loss": float(np.mean(losses[-50:])),
    }


def load_segmenter(path: str | Path) -> LandCoverSegmenter:
    """Load a segmenter folder (or Hub repo id) strictly: every weight must match the config."""
    return LandCoverSegmenter.from_pretrained(str(path), strict=True)

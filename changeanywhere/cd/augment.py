"""Bi-temporal augmentations for CD training: what differs between two real acquisition dates and what does not.

Geometry shared by both dates (crop, scale, dihedral), a small misregistration of B against A, a random A/B
swap, and radiometry drawn independently per date (colour jitter, gamma, cast shadows, haze, tone curves, blur,
sensor noise). Every draw comes from the caller's generators, so a batch is a pure function of its seed; the
radiometry never sees the label, which always follows A's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..image_utils import uint8_to_tensor
from ..labels import IGNORE_INDEX


@dataclass(frozen=True)
class BitemporalAugment:
    """Augmentation strengths (0 turns one off); defaults measured against the real bi-temporal variation."""

    jitter: float = 0.2  # colour jitter per date: brightness, contrast, saturation, per-channel gain
    gamma: float = 0.25  # per-date gamma exp(U(-g, g))
    blur: float = 1.0  # per-date Gaussian blur, sigma U(0, blur) px, on half of the images
    noise: float = 0.02  # per-date Gaussian noise, std U(0, noise) on the [0, 1] scale
    # what the published synthetic-data methods add per date (off by default; see `cast_shadows` and below)
    shadow: float = 0.0  # cast shadows: soft dark blobs on half of the images, darkening up to `shadow`
    tone: float = 0.0  # a random monotone tone curve per image (its control points move up to ±tone / 4)
    haze: float = 0.0  # fog / haze on half of the images: a smooth blend towards a bright airlight, up to `haze`
    shift: int = 2  # misregistration: B is cropped up to `shift` px off A's window
    scale: float = 0.2  # the crop covers s·exp(U(-scale, scale)) source pixels, resized to s
    swap_prob: float = 0.5  # probability of swapping A and B


DEFAULT_AUGMENT = BitemporalAugment()


def crop_pair(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, label: np.ndarray, size: int,
              aug: BitemporalAugment | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random `size`² window of (A, B, label) as tensors: A, B (3,S,S) in [-1, 1], label (S,S) int64.
    With `aug`: a random scale (resized back to `size`) and B taken up to `aug.shift` px off A's window."""
    c = size
    if aug is not None and aug.scale > 0:
        c = max(8, round(size * math.exp(rng.uniform(-aug.scale, aug.scale))))
    shift = aug.shift if aug is not None else 0
    h, w = label.shape
    need_h, need_w = c + 2 * shift, c + 2 * shift
    if h < need_h or w < need_w:
        ph, pw = max(0, need_h - h), max(0, need_w - w)
        mode = "reflect" if ph < h and pw < w else "edge"
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode=mode)
        b = np.pad(b, ((0, ph), (0, pw), (0, 0)), mode=mode)
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
        h, w = label.shape
    y = int(rng.integers(shift, h - c - shift + 1))
    x = int(rng.integers(shift, w - c - shift + 1))
    dy, dx = (int(rng.integers(-shift, shift + 1)) for _ in range(2)) if shift else (0, 0)
    ta = uint8_to_tensor(a[y : y + c, x : x + c])
    tb = uint8_to_tensor(b[y + dy : y + dy + c, x + dx : x + dx + c])
    tl = torch.from_numpy(np.ascontiguousarray(label[y : y + c, x : x + c]).astype(np.int64))
    if c != size:
        ta, tb = (F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=c > size,
                                align_corners=False)[0].clamp(-1, 1) for t in (ta, tb))
        tl = F.interpolate(tl[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    return ta, tb, tl


def color_jitter(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Per-image brightness, contrast, saturation and per-channel gain jitter of (B,3,H,W) in [0, 1]."""
    if strength <= 0:
        return images
    n = images.shape[0]
    x = images
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + strength * _u(gen, n, 1, 1, 1)) + mean  # contrast
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * (1 + strength * _u(gen, n, 1, 1, 1)) + grey  # saturation
    x = x * (1 + 0.5 * strength * _u(gen, n, 3, 1, 1)) + 0.5 * strength * _u(gen, n, 1, 1, 1)  # gains
    return x.clamp(0, 1)


def radiometry(images: torch.Tensor, aug: BitemporalAugment, gen: torch.Generator) -> torch.Tensor:
    """One date's radiometric variation of (B,3,H,W) in [-1, 1]: jitter, gamma, shadows, haze, tone, blur, noise
    (each per image; one that is off draws nothing, so the others' draws stay as they were)."""
    n = images.shape[0]
    x = color_jitter((images + 1) / 2, aug.jitter, gen)
    if aug.gamma > 0:
        x = x.clamp_min(1e-4) ** torch.exp(aug.gamma * _u(gen, n, 1, 1, 1))
    if aug.shadow > 0:
        x = cast_shadows(x, aug.shadow, gen)
    if aug.haze > 0:
        x = haze(x, aug.haze, gen)
    if aug.tone > 0:
        x = tone_curve(x, aug.tone, gen)
    if aug.blur > 0:
        sigmas = torch.rand(n, generator=gen) * aug.blur
        on = torch.rand(n, generator=gen) < 0.5
        x = torch.stack([gaussian_blur(img, float(s)) if o and s > 0.2 else img
                         for img, s, o in zip(x, sigmas, on, strict=True)])
    if aug.noise > 0:
        std = torch.rand(n, 1, 1, 1, generator=gen) * aug.noise
        x = x + std * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1) * 2 - 1


def cast_shadows(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Soft cast shadows on half of (B,3,H,W) in [0, 1]: 1-3 rotated ellipses per image, edges blurred,
    darkened by up to `strength` (blue a little less, as skylight fills shadows)."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=images.dtype), torch.arange(w, dtype=images.dtype), indexing="ij")
    out = []
    for img in images:
        on = bool(torch.rand(1, generator=gen) < 0.5)
        shapes = int(torch.randint(1, 4, (1,), generator=gen))
        params = torch.rand(shapes, 5, generator=gen)  # centre y, x; radii; angle
        edge, depth = torch.rand(2, generator=gen)
        if not on:
            out.append(img)
            continue
        mask = torch.zeros(h, w, dtype=images.dtype)
        for cy, cx, ry, rx, angle in params:
            c, s_ = torch.cos(angle * math.pi), torch.sin(angle * math.pi)
            dy, dx = ys - cy * h, xs - cx * w
            u, v = (dx * c + dy * s_) / (w * (0.05 + 0.25 * rx)), (-dx * s_ + dy * c) / (h * (0.05 + 0.25 * ry))
            mask = torch.maximum(mask, ((u**2 + v**2) <= 1).to(images.dtype))
        mask = gaussian_blur(mask[None], 0.5 + 2.0 * float(edge))[0]
        dark = strength * (0.3 + 0.7 * depth) * torch.tensor([1.0, 0.95, 0.8], dtype=images.dtype).view(3, 1, 1)
        out.append(img * (1 - dark.clamp(max=0.9) * mask))
    return torch.stack(out)


def haze(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Fog or haze on half of (B,3,H,W) in [0, 1]: a blend towards a bright, slightly blue airlight with a
    smooth random density (a 3×3 field upsampled) of up to `strength`."""
    n, _, h, w = images.shape
    on = (torch.rand(n, 1, 1, 1, generator=gen) < 0.5).to(images.dtype)
    field = F.interpolate(torch.rand(n, 1, 3, 3, generator=gen), size=(h, w), mode="bicubic", align_corners=True)
    density = strength * torch.rand(n, 1, 1, 1, generator=gen) * field.clamp(0, 1) * on
    airlight = (0.7 + 0.3 * torch.rand(n, 1, 1, 1, generator=gen)) * torch.tensor([0.96, 0.98, 1.0]).view(1, 3, 1, 1)
    return images * (1 - density) + airlight * density


def tone_curve(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """A random monotone tone curve per image of (B,3,H,W) in [0, 1]: piecewise linear through 0, 1 and three
    inner points whose spacing varies by up to ±`strength` (the same curve for the three channels)."""
    n = images.shape[0]
    steps = (1 + strength * _u(gen, n, 4)).clamp_min(0.05)
    knots = torch.cat([torch.zeros(n, 1), torch.cumsum(steps, dim=1)], dim=1)
    knots = knots / knots[:, -1:]  # (B, 5): monotone from 0 to 1
    pos = images.clamp(0, 1) * 4
    idx = pos.floor().clamp(max=3).long()
    frac = pos - idx
    k = knots.view(n, 5, 1, 1, 1).expand(n, 5, *images.shape[1:])
    lo, hi = torch.gather(k, 1, idx[:, None])[:, 0], torch.gather(k, 1, idx[:, None] + 1)[:, 0]
    return lo + (hi - lo) * frac


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of one (C,H,W) image, reflect-padded."""
    r = max(1, math.ceil(2.5 * sigma))
    k = torch.exp(-((torch.arange(-r, r + 1, dtype=image.dtype) / sigma) ** 2) / 2)
    k = k / k.sum()
    c = image.shape[0]
    x = F.pad(image[None], (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


def _u(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Uniform in [-1, 1)."""
    return torch.rand(*shape, generator=gen) * 2 - 1

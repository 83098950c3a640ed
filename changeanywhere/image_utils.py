"""Conversions between user inputs (PIL, numpy, torch, paths) and the models' tensors, with clear errors.

Images are HxWx3 uint8 arrays outside the models and (B,3,H,W) float tensors in [-1, 1] inside them:
`uint8_to_tensor` and `tensor_to_uint8` are the two directions, and the only place they are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import geo
from .errors import ChangeAnywhereError, MapSizeError, ParameterError
from .labels import IGNORE_INDEX
from .maps import read_map


def load_rgb(image: Any, bands: Sequence[int] | None = None) -> np.ndarray:
    """One image (path, PIL, HxWx3/4 uint8 array, or 3xHxW float tensor in [-1, 1]) -> HxWx3 uint8.

    TIFF paths are read with rasterio when installed (`bands`: which bands are R, G, B; see `geo.read_image`)."""
    if isinstance(image, str | Path):
        if geo.reads_with_rasterio(image):
            return geo.read_image(image, bands)[0]
        if bands is not None:
            geo.rasterio_module("choosing image bands (`bands`)")
            raise ParameterError(f"`bands` chooses bands of TIFF images; {Path(image).name} is not one", "bands")
        try:
            with Image.open(image) as im:
                geo.check_pillow_tiff(im, image)
                image = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise ChangeAnywhereError(f"cannot read image {image}: {err}") from err
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu()
        if t.ndim != 3 or t.shape[0] != 3:
            raise ChangeAnywhereError(f"image tensor must be 3×H×W in [-1, 1], got shape {tuple(t.shape)}")
        return tensor_to_uint8(t[None])[0]
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ChangeAnywhereError(
            f"image must be RGB (H×W×3), got an array of shape {arr.shape}; "
            "convert grey or multispectral images to 3-band RGB first"
        )
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max() <= 1.0:
            arr = (arr * 255).round()
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def images_to_tensor(images: Any) -> torch.Tensor:
    """A single image or a list of images -> (B, 3, H, W) float tensor in [-1, 1]."""
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        if images.shape[1] != 3:
            raise ChangeAnywhereError(f"image batch must be B×3×H×W, got shape {tuple(images.shape)}")
        return images.float()
    items = list(images) if isinstance(images, list | tuple) else [images]
    arrays = [load_rgb(x) for x in items]
    _check_same_size([a.shape[:2] for a in arrays], "images")
    return uint8_to_tensor(np.stack(arrays)).contiguous()


def maps_to_tensor(maps: Any, num_classes: int, class_set: Any = None) -> torch.Tensor:
    """A single index map or a list of them (arrays, or paths/PIL read with `class_set`) -> (B, H, W) long."""
    if isinstance(maps, torch.Tensor):
        t = maps.long()
        t = t[None] if t.ndim == 2 else t
    else:
        if isinstance(maps, np.ndarray) and maps.ndim == 3 and maps.shape[-1] not in (3, 4):
            items = list(maps)
        else:
            items = list(maps) if isinstance(maps, list | tuple) else [maps]
        arrays = []
        for m in items:
            if isinstance(m, str | Path | Image.Image) or (isinstance(m, np.ndarray) and m.ndim == 3):
                if class_set is None:
                    raise ChangeAnywhereError("colour maps need a class set to be converted to class indices")
                m = read_map(m, class_set)
            arrays.append(np.asarray(m))
        _check_same_size([a.shape[:2] for a in arrays], "land-cover maps")
        t = torch.from_numpy(np.stack(arrays).astype(np.int64))
    if t.ndim != 3:
        raise ChangeAnywhereError(f"land-cover map must be H×W class indices, got shape {tuple(t.shape)}")
    bad = torch.unique(t[((t < 0) | (t >= num_classes)) & (t != IGNORE_INDEX)])
    if bad.numel():
        raise ChangeAnywhereError(
            f"land-cover map holds values {bad.tolist()[:10]} outside the {num_classes} classes "
            f"(0..{num_classes - 1}, {IGNORE_INDEX} = ignore); is it the right class set?"
        )
    return t


def _check_same_size(shapes: Sequence[tuple[int, ...]], what: str) -> None:
    if len(set(shapes)) > 1:
        raise MapSizeError(f"all {what} in a batch must have one size, got {sorted(set(shapes))}")


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """HxWx3 -> 3xHxW, or BxHxWx3 -> Bx3xHxW: uint8 images as float32 in [-1, 1]."""
    t = torch.from_numpy(np.require(images, requirements=("C", "W")))  # a copy only when it must
    return (t.float() / 127.5 - 1.0).movedim(-1, -3)


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()

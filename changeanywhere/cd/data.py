"""Change-detection folders: `A/` (before), `B/` (after), `label/` (change mask), paired by file stem.

This is the layout of `changeanywhere generate` output and of LEVIR-CD style datasets. Images may have any
size (A, B and label of one pair must match); labels follow `labels.decode_change_label` (ours: 0 / 255 with
127 = ignore; LEVIR-style 0/255; 0/1 with 255 = ignore), read from the first channel when stored as RGB.
Training batches are random crops (padded with the ignore label when an image is smaller than the crop) with
the bi-temporal augmentations of `augment.py` (dihedral, scale, misregistration, A/B swap, per-date
radiometry); every batch is a pure function of (seed, rank, micro-step), so a resumed run replays the same data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..change_classes import change_class_ids, counted_target
from ..classes import ClassSet
from ..data import IMAGE_SUFFIXES, dihedral, files_by_stem, listing, read_split_file
from ..errors import ChangeAnywhereError, MapSizeError, ParameterError
from ..labels import decode_change_label
from ..maps import read_map
from .augment import DEFAULT_AUGMENT, BitemporalAugment, crop_pair, radiometry

LABEL_DIRS = ("label", "labels")


@dataclass(frozen=True)
class CDItem:
    """One pair of a CD folder: its stem and the three files."""

    stem: str
    a: Path
    b: Path
    label: Path


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of a folder keyed by stem."""
    return files_by_stem(folder, IMAGE_SUFFIXES)


def find_cd_pairs(root: str | Path, require_labels: bool = True) -> list[CDItem]:
    """The pairs of a CD folder, sorted by stem; clear errors for missing folders and unpaired files."""
    root = Path(root)
    if not root.is_dir():
        raise ChangeAnywhereError(f"CD data folder {root} not found")
    a_dir, b_dir = root / "A", root / "B"
    label_dir = next((root / d for d in LABEL_DIRS if (root / d).is_dir()), root / "label")
    missing = [d.name for d in (a_dir, b_dir) if not d.is_dir()]
    if require_labels and not label_dir.is_dir():
        missing.append("label")
    if missing:
        raise ChangeAnywhereError(
            f"{root} is not a change-detection folder: missing {', '.join(m + '/' for m in missing)} "
            "(expected A/ (before), B/ (after) and label/ (0/255 change masks), files paired by stem)"
        )
    a, b = image_files(a_dir), image_files(b_dir)
    labels = image_files(label_dir) if label_dir.is_dir() else {}
    problems = []
    for name, files in (("B/", b), ("label/", labels)):
        if name == "label/" and not require_labels and not labels:
            continue
        lacking = set(a) - set(files)
        if lacking:
            problems.append(f"{len(lacking)} stem(s) of A/ have no file in {name}: {listing(list(lacking))}")
    extra = (set(b) | set(labels)) - set(a)
    if extra:
        problems.append(f"{len(extra)} stem(s) in B/ or label/ have no file in A/: {listing(list(extra))}")
    if problems:
        raise ChangeAnywhereError(f"{root}: unpaired files: " + "; ".join(problems))
    if not a:
        raise ChangeAnywhereError(f"{root}: A/ holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [CDItem(s, a[s], b[s], labels.get(s, Path())) for s in sorted(a)]


def read_image(path: Path) -> np.ndarray:
    """HxWx3 uint8."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ChangeAnywhereError(f"cannot read image {path}: {err}") from None


def read_label(path: Path) -> np.ndarray:
    """HxW uint8 change target 1 / 0 / `IGNORE_INDEX` of a label file (`labels.decode_change_label`)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L") if im.mode in ("RGB", "RGBA", "P", "LA") else im)
    except (OSError, UnidentifiedImageError) as err:
        raise ChangeAnywhereError(f"cannot read label {path}: {err}") from None
    return decode_change_label(arr[..., 0] if arr.ndim == 3 else arr)


def read_cd_item(item: CDItem) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(A, B, label) arrays of one pair; label None when the folder has none; sizes checked."""
    a, b = read_image(item.a), read_image(item.b)
    if a.shape != b.shape:
        raise MapSizeError(f"{item.stem}: A is {a.shape[1]}×{a.shape[0]} but B is {b.shape[1]}×{b.shape[0]}")
    label = None
    if item.label != Path():
        label = read_label(item.label)
        if label.shape != a.shape[:2]:
            raise MapSizeError(
                f"{item.stem}: label is {label.shape[1]}×{label.shape[0]} but the images are "
                f"{a.shape[1]}×{a.shape[0]}"
            )
    return a, b, label


class ChangeFolderDataset(Dataset):
    """A change-detection folder (`A/`, `B/`, `label/`: the output of `changeanywhere generate`, or LEVIR-CD
    style data) as a torch `Dataset`, with torchgeo's sample dict (its `LEVIRCD`, torchgeo ≥ 0.8).

    Sample i (pairs sorted by stem): `image` (2x3xHxW float, the two dates, values 0-255), `mask` (1xHxW long:
    1 change, 0 no change, 255 ignore, `labels.IGNORE_INDEX`) and `stem`; with a `class_set`, also `maps` (2xHxW
    long land-cover maps of both dates, from `label_A/`, `label_B/`). Files are read when a sample is asked for.

    Args:
        root (`str` or `Path`):
            The folder: `A/`, `B/` and `label/` (or `labels/`), files paired by stem (`find_cd_pairs`; missing
            folders and unpaired files raise `ChangeAnywhereError`). Labels are decoded by
            `labels.decode_change_label` (0/255 with 127 ignore, or 0/1 with 255 ignore).
        class_set (`ClassSet`, *optional*):
            The classes of the folder's land-cover maps: samples then hold `maps`, read from `label_A/` and
            `label_B/` (which must exist). None: no maps.
        split (`str`, *optional*):
            Only the pairs whose stems `list/<split>.txt` lists (written by `generate --splits`: "train", "val",
            "test"); a missing list raises `ChangeAnywhereError`. None: every pair of the folder.
        transforms (`Callable[[dict], dict]`, *optional*):
            Applied to each sample dict (e.g. `Normalize()`: image values in [-1, 1]). None: samples as read.
    """

    def __init__(self, root: str | Path, class_set: ClassSet | None = None, split: str | None = None,
                 transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.root = Path(root)
        self.items = find_cd_pairs(self.root)
        if split is not None:
            listed = self.root / "list" / f"{split}.txt"
            if not listed.is_file():
                raise ChangeAnywhereError(f"{self.root} has no split list {listed.relative_to(self.root)} "
                                          "(made by `changeanywhere generate --splits`)")
            stems = read_split_file(listed)
            self.items = [it for it in self.items if it.stem in stems]
        self.class_set = class_set
        self.transforms = transforms
        if class_set is not None:
            missing = [d for d in ("label_A", "label_B") if not (self.root / d).is_dir()]
            if missing:
                raise ChangeAnywhereError(f"{self.root} has no {' or '.join(missing)}/: land-cover maps need them")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        a, b, label = read_cd_item(item)
        sample: dict[str, Any] = {"image": torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float(),
                                  "mask": torch.from_numpy(label.astype(np.int64))[None], "stem": item.stem}
        if self.class_set is not None:
            sample["maps"] = torch.from_numpy(np.stack([
                read_map(self.root / folder / item.label.name, self.class_set) for folder in ("label_A", "label_B")
            ]).astype(np.int64))
        return self.transforms(sample) if self.transforms is not None else sample


class Normalize:
    """The sample transform to the model's range: `image` values 0-255 -> [-1, 1] (`image_utils.uint8_to_tensor`'s
    scale); the rest of the sample is kept."""

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        return {**sample, "image": sample["image"] / 127.5 - 1.0}


# ----------------------------------------------------------------------------------------------- training


def map_label_classes(root: Path, change_classes: Sequence[str]) -> tuple[ClassSet, tuple[int, ...]]:
    """(class set, class ids) for deriving building-only (etc.) labels from a generated folder's maps: its
    `generation.json` names the class set, `label_A/` and `label_B/` hold the maps."""
    settings = root / "generation.json"
    missing = [d + "/" for d in ("label_A", "label_B") if not (root / d).is_dir()]
    if not settings.is_file() or missing:
        raise ParameterError(f"`change_classes` derives labels from the land-cover maps of a `changeanywhere "
                             f"generate` folder; {root} lacks {', '.join([*missing, 'generation.json'][:3])}",
                             "change_classes")
    class_set = ClassSet.from_dict(json.loads(settings.read_text(encoding="utf-8"))["class_set"])
    return class_set, change_class_ids(change_classes, class_set)


class CDTrainData:
    """Deterministic random training batches from one or more CD folders (files read on demand). With
    `change_classes`, labels are derived from each (generated) folder's maps: only changes to or from them."""

    def __init__(self, roots: Sequence[str | Path], crop_size: int = 256,
                 augment: BitemporalAugment | None = DEFAULT_AUGMENT, seed: int = 0,
                 cache: bool | None = None, cache_limit_bytes: float = 1.5e9,
                 change_classes: Sequence[str] | None = None):
        found = [(Path(r), it) for r in roots for it in find_cd_pairs(r)]
        self.items = [it for _, it in found]
        self.item_roots = [r for r, _ in found]
        self.label_maps: dict[Path, tuple[ClassSet, tuple[int, ...]]] = {}
        if change_classes is not None:
            self.label_maps = {Path(r): map_label_classes(Path(r), change_classes) for r in roots}
        self.crop_size = crop_size
        self.augment = augment
        self.seed = seed
        # None: keep decoded pairs in memory when the whole set (estimated from the first pair) fits the limit
        # (2,000 pairs of 256² take about 0.9 GB); else every batch reads its files
        self.cache = cache
        self.cache_limit_bytes = cache_limit_bytes
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if index in self._cache:
            return self._cache[index]
        item = self.items[index]
        a, b, label = read_cd_item(item)
        assert label is not None
        if self.label_maps:
            root = self.item_roots[index]
            class_set, ids = self.label_maps[root]
            maps = [read_map(root / d / item.label.name, class_set) for d in ("label_A", "label_B")]
            label = counted_target(*maps, ids)
        if self.cache is None:
            self.cache = (2 * a.nbytes + label.nbytes) * len(self.items) <= self.cache_limit_bytes
        if self.cache:
            self._cache[index] = (a, b, label)
        return a, b, label

    def batch(self, micro_step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        """Micro-batch number `micro_step` of process `rank`: {'a', 'b': (B,3,S,S) in [-1,1], 'label': (B,S,S)}."""
        rng = np.random.default_rng([self.seed, rank, micro_step])
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        aug = self.augment
        a_list, b_list, l_list = [], [], []
        for _ in range(batch_size):
            a, b, label = self.load(int(rng.integers(0, len(self.items))))
            if aug is not None:
                k = int(rng.integers(0, 8))
                a, b, label = dihedral(a, k), dihedral(b, k), dihedral(label, k)
                if rng.random() < aug.swap_prob:
                    a, b = b, a
            ta, tb, tl = crop_pair(rng, a, b, label, self.crop_size, aug)
            a_list.append(ta)
            b_list.append(tb)
            l_list.append(tl)
        ta, tb = torch.stack(a_list), torch.stack(b_list)
        if aug is not None:
            ta, tb = radiometry(ta, aug, gen), radiometry(tb, aug, gen)
        return {"a": ta, "b": tb, "label": torch.stack(l_list)}


DONOR_POOL = 64  # pairs a derived pair may borrow from, besides the ones before it (see `donor_indices`)


def donor_indices(i: int, n: int) -> list[int]:
    """Pairs that pair `i` of `n` may borrow colours or texture from: the first max(i, DONOR_POOL) but `i`.
    A pair's donors never depend on later pairs, so the first N pairs of a derived set (the experiment's
    pair-count subsets) are the same whether it was built from N pairs or from more (once n ≥ DONOR_POOL)."""
    return [k for k in range(min(n, max(i, DONOR_POOL))) if k != i]

"""A change-detection folder (the output of `changeanywhere generate`, or LEVIR-CD style `A/ B/ label/` data)
served the way torchgeo's change-detection datasets serve theirs (`LEVIRCD`, torchgeo ≥ 0.8): a sample is
`{"image": T×C×H×W float tensor (the two dates, values 0-255), "mask": 1×H×W long tensor (0 / 1)}`; pixels
the label marks ignore stay `labels.IGNORE_INDEX` (255) in the mask (a loss's `ignore_index`).

torchgeo is optional: when it imports, the class is a torchgeo `NonGeoDataset` (usable with its data modules and
trainers); otherwise a plain torch `Dataset` with the same samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import read_split_file
from ..errors import ChangeAnywhereError
from .data import find_cd_pairs, read_cd_item

try:  # torchgeo pulls in torchvision, which may fail to import in other ways than ImportError
    from torchgeo.datasets import NonGeoDataset as _Base
except Exception:  # noqa: BLE001
    _Base = Dataset


class TorchGeoChangeFolder(_Base):
    """A CD folder as a torchgeo-style dataset. `split`: only the pairs listed in `list/<split>.txt` (written by
    `generate --splits`); `transforms`: applied to each sample dict, as torchgeo's `transforms` argument."""

    def __init__(self, root: str | Path, split: str | None = None,
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
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        a, b, label = read_cd_item(self.items[index])
        image = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float()
        mask = torch.from_numpy(label.astype(np.int64))[None]
        sample = {"image": image, "mask": mask}
        return self.transforms(sample) if self.transforms is not None else sample

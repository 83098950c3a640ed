"""`TorchGeoChangeFolder`: `data.ChangeFolderDataset` (a change-detection folder with torchgeo's sample dict:
`{"image": 2×3×H×W float 0-255, "mask": 1×H×W long 1 / 0 / 255 = ignore, "stem"}`) as a torchgeo `NonGeoDataset`
when torchgeo imports (usable with its data modules and trainers); otherwise the same plain torch `Dataset`.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from .data import ChangeFolderDataset

try:  # torchgeo pulls in torchvision, which may fail to import in other ways than ImportError
    from torchgeo.datasets import NonGeoDataset as _Base
except Exception:  # noqa: BLE001
    _Base = Dataset


class TorchGeoChangeFolder(ChangeFolderDataset, _Base):  # type: ignore[misc,valid-type]
    """A CD folder as a torchgeo dataset: `ChangeFolderDataset`'s samples, split and `transforms`."""

"""The change that counts: a label that marks only changes to or from chosen classes (e.g. `building`).

Benchmarks define change differently: LEVIR-CD counts building changes only, DSIFN-CD any land-cover change. A
pair generated for a building benchmark still simulates every change in B (the detector must learn to ignore
them), but its label marks only changes whose before or after class is one of the chosen classes; the rest are
recorded in the pair's meta as changes of no interest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .classes import ClassSet
from .errors import ParameterError
from .labels import change_mask, change_target


def change_class_ids(names: Sequence[str], class_set: ClassSet, parameter: str = "change_classes") -> tuple[int, ...]:
    """The class indices of `names` (case-insensitive) in `class_set`; a `ParameterError` names unknown ones."""
    lookup = {n.lower(): i for i, n in enumerate(class_set.names)}
    unknown = [n for n in names if n.strip().lower() not in lookup]
    if unknown or not names:
        raise ParameterError(f"`{parameter}` must name classes of {class_set.name!r} ({', '.join(class_set.names)}); "
                             f"got {list(names)}", parameter)
    return tuple(sorted({lookup[n.strip().lower()] for n in names}))


def counted_change(before: np.ndarray, after: np.ndarray, changed: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """HxW bool: the changed pixels whose before or after class is one of `class_ids`."""
    ids = np.asarray(class_ids, dtype=before.dtype)
    return changed & (np.isin(before, ids) | np.isin(after, ids))


def counted_target(before: np.ndarray, after: np.ndarray, class_ids: Sequence[int] | None) -> np.ndarray:
    """The CD target of two maps: 1 counted change, 0 otherwise, `IGNORE_INDEX` where either map is ignore
    (`class_ids` None: every change counts)."""
    changed = change_mask(before, after)
    if class_ids is not None:
        changed = counted_change(before, after, changed, class_ids)
    return change_target(before, after, changed)

"""The change that counts (`change_classes`): which classes, and the change to or from them. Its use by
the pair builder, `generate`, the CD training data and `train-cd` is tested with those."""

import numpy as np
import pytest

from changeanywhere.change_classes import change_class_ids, counted_change, counted_target
from changeanywhere.classes import ClassSet
from changeanywhere.errors import ParameterError
from changeanywhere.labels import IGNORE_INDEX, change_mask
from tests.helpers import change_classes_maps

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEG = (DUBAI.index_of(n) for n in ("land", "water", "building", "vegetation"))

pytestmark = pytest.mark.usefixtures("one_thread")


def test_change_class_ids_validate_against_the_class_set():
    assert change_class_ids(["Building"], DUBAI) == (BUILDING,)
    assert change_class_ids(["water", "building", "water"], DUBAI) == tuple(sorted((WATER, BUILDING)))
    with pytest.raises(ParameterError, match="castle") as err:
        change_class_ids(["castle"], DUBAI)
    assert err.value.parameters == ("change_classes",) and "building" in str(err.value)
    with pytest.raises(ParameterError, match="`change_classes`"):
        change_class_ids([], DUBAI)


def test_counted_change_marks_only_changes_to_or_from_the_classes():
    before, after = change_classes_maps()
    changed = change_mask(before, after)
    counted = counted_change(before, after, changed, (BUILDING,))
    assert changed.sum() == 64 + 16 + 32 and counted.sum() == 64 + 16
    assert counted[2:10, 2:10].all() and counted[14:18, 14:18].all() and not counted[20:24].any()
    target = counted_target(before, after, (BUILDING,))
    assert set(np.unique(target)) == {0, 1, IGNORE_INDEX}
    assert (target == 1).sum() == 80 and (target[30:] == IGNORE_INDEX).all()
    everything = counted_target(before, after, None)
    assert (everything == 1).sum() == 112 and (everything[20:24, :8] == 1).all()

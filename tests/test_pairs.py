"""The pair builder (`changeanywhere.pairs`): its settings checked by name, labels of the change that
counts, non-change recorded in the meta."""

import numpy as np
import pytest
import torch

from changeanywhere.change_classes import counted_change
from changeanywhere.classes import ClassSet
from changeanywhere.errors import ParameterError
from changeanywhere.generator.nonchange import NonChangeSettings, as_nonchange_settings
from changeanywhere.pairs import PairSettings, build_pairs, simulate_events
from tests.helpers import change_classes_maps, change_result

DUBAI = ClassSet.builtin("dubai-landcover")
BUILDING = DUBAI.index_of("building")


def test_pair_settings_check_change_classes():
    for bad in ((), "building", ("building", "")):
        with pytest.raises(ParameterError, match="`change_classes`"):
            PairSettings(change_classes=bad).check()
    PairSettings(change_classes=("building",)).check()
    assert PairSettings().change_class_ids(DUBAI) is None
    with pytest.raises(ParameterError, match="`change_classes`"):
        PairSettings(change_classes=("roads",)).change_class_ids(DUBAI)


@pytest.mark.usefixtures("one_thread")  # one torch thread, as tests/test_change_classes.py runs
def test_build_pairs_labels_only_the_change_that_counts(tiny_pipe):
    before, after = change_classes_maps()
    change = change_result(before, after)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    every = PairSettings(num_inference_steps=2)
    building = PairSettings(num_inference_steps=2, change_classes=("building",))
    (all_pair,) = build_pairs(tiny_pipe, [img], [change], [3], DUBAI, every)
    (b_pair,) = build_pairs(tiny_pipe, [img], [change], [3], DUBAI, building)
    # B is the same image: every simulated change still happens, only the label differs
    np.testing.assert_array_equal(b_pair.after_image, all_pair.after_image)
    np.testing.assert_array_equal(b_pair.after_map, after)
    np.testing.assert_array_equal(b_pair.change_type, all_pair.change_type)
    np.testing.assert_array_equal(all_pair.label, change.change_mask)
    np.testing.assert_array_equal(b_pair.label, counted_change(before, after, change.change_mask, (BUILDING,)))
    m = b_pair.meta
    assert m["change_classes"] == ["building"] and m["changed_pixels"] == 80
    assert m["change_ratio"] == pytest.approx(80 / 1024, abs=1e-6)
    assert m["transitions"] == {"building->land": 64, "land->building": 16}
    assert m["no_interest"] == {"changed_pixels": 32, "transitions": {"water->vegetation": 32}}
    assert "change_classes" not in all_pair.meta and all_pair.meta["changed_pixels"] == 112
    with pytest.raises(ParameterError, match="`change_classes`"):
        build_pairs(tiny_pipe, [img], [change], [3], DUBAI, PairSettings(change_classes=("castle",)))


def test_build_pairs_records_nonchange_in_meta(inpaint_pipe, tiny_pipe, before_pair):
    img, m = before_pair
    settings = PairSettings(num_inference_steps=2, num_events=(1, 2))
    change, record = simulate_events(m, inpaint_pipe.class_set, seed=2, settings=settings)
    (pair,) = build_pairs(inpaint_pipe, [img], [change], [2], inpaint_pipe.class_set, settings, meta=[record])
    nc = pair.meta["nonchange"]
    assert pair.meta["sampler"] == "inpaint" and nc["settings"]["strength"] == 1.0 and "misregistration" in nc
    np.testing.assert_array_equal(pair.label, change.change_mask)
    # a plain (v2) UNet gets appearance and acquisition only
    (plain,) = build_pairs(tiny_pipe, [img], [change], [2], tiny_pipe.class_set, settings, meta=[record])
    assert plain.meta["nonchange"]["settings"]["rerender"] == [0.0, 0.0] and plain.meta["sampler"] == "anchored"
    off = PairSettings(num_inference_steps=2, num_events=(1, 2), nonchange=0.0)
    (copy,) = build_pairs(inpaint_pipe, [img], [change], [2], inpaint_pipe.class_set, off, meta=[record])
    assert copy.meta["nonchange"] is None
    far = ~np.asarray(torch.nn.functional.max_pool2d(torch.from_numpy(change.change_mask.astype(np.float32))[None],
                                                     25, 1, 12)[0], bool)
    np.testing.assert_array_equal(copy.after_image[far], img[far])  # off: B copies A away from the change


def test_bad_pair_settings():
    with pytest.raises(ParameterError, match="nonchange"):
        PairSettings(nonchange=-0.5).check()
    with pytest.raises(ParameterError, match="sampler"):
        PairSettings(sampler="magic").check()
    with pytest.raises(ParameterError, match="nonchange"):
        as_nonchange_settings("strong")
    assert as_nonchange_settings(0) is None and as_nonchange_settings(True) == NonChangeSettings()


def test_a_bad_content_setting_is_refused_by_name():
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ParameterError, match="content_strength") as err:
            PairSettings(content_strength=bad).check()
        assert "content_strength" in err.value.parameters
    with pytest.raises(ParameterError, match="content"):
        PairSettings(content="magic").check()

"""The change that counts (`change_classes`): labels of building-only change, meta of the rest, generate."""

import json

import numpy as np
import pytest
from conftest import saved_model_and_data
from PIL import Image

from changeanywhere.change_classes import change_class_ids, counted_change, counted_target
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.errors import ParameterError
from changeanywhere.events import ChangeResult
from changeanywhere.labels import IGNORE_INDEX, change_mask
from changeanywhere.maps import read_map
from changeanywhere.pairs import PairSettings, build_pairs

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEG = (DUBAI.index_of(n) for n in ("land", "water", "building", "vegetation"))

pytestmark = pytest.mark.usefixtures("one_thread")


def _change(before: np.ndarray, after: np.ndarray) -> ChangeResult:
    k = DUBAI.num_classes
    mask = change_mask(before, after)
    ctype = np.where(mask, 1 + before.astype(np.int32) * k + after, 0).astype(np.uint8)
    return ChangeResult(before, after, mask, ctype, [])


def _maps() -> tuple[np.ndarray, np.ndarray]:
    """32² before/after maps: a building demolished (8×8 → land), a new building (4×4), water → vegetation
    (32 px), and an ignore strip that changes too."""
    before = np.full((32, 32), LAND, np.uint8)
    before[2:10, 2:10] = BUILDING
    before[20:24, :8] = WATER
    before[30:, :] = IGNORE_INDEX
    after = before.copy()
    after[2:10, 2:10] = LAND  # demolished: 64 px
    after[14:18, 14:18] = BUILDING  # built: 16 px
    after[20:24, :8] = VEG  # water -> vegetation: 32 px, of no interest for a building label
    after[30:, :4] = WATER  # ignore in A: never counted
    return before, after


def test_change_class_ids_validate_against_the_class_set():
    assert change_class_ids(["Building"], DUBAI) == (BUILDING,)
    assert change_class_ids(["water", "building", "water"], DUBAI) == tuple(sorted((WATER, BUILDING)))
    with pytest.raises(ParameterError, match="castle") as err:
        change_class_ids(["castle"], DUBAI)
    assert err.value.parameters == ("change_classes",) and "building" in str(err.value)
    with pytest.raises(ParameterError, match="`change_classes`"):
        change_class_ids([], DUBAI)


def test_counted_change_marks_only_changes_to_or_from_the_classes():
    before, after = _maps()
    changed = change_mask(before, after)
    counted = counted_change(before, after, changed, (BUILDING,))
    assert changed.sum() == 64 + 16 + 32 and counted.sum() == 64 + 16
    assert counted[2:10, 2:10].all() and counted[14:18, 14:18].all() and not counted[20:24].any()
    target = counted_target(before, after, (BUILDING,))
    assert set(np.unique(target)) == {0, 1, IGNORE_INDEX}
    assert (target == 1).sum() == 80 and (target[30:] == IGNORE_INDEX).all()
    everything = counted_target(before, after, None)
    assert (everything == 1).sum() == 112 and (everything[20:24, :8] == 1).all()


def test_pair_settings_check_change_classes():
    for bad in ((), "building", ("building", "")):
        with pytest.raises(ParameterError, match="`change_classes`"):
            PairSettings(change_classes=bad).check()
    PairSettings(change_classes=("building",)).check()
    assert PairSettings().change_class_ids(DUBAI) is None
    with pytest.raises(ParameterError, match="`change_classes`"):
        PairSettings(change_classes=("roads",)).change_class_ids(DUBAI)


def test_build_pairs_labels_only_the_change_that_counts(tiny_pipe):
    before, after = _maps()
    change = _change(before, after)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    every = PairSettings(num_inference_steps=2)
    building = PairSettings(num_inference_steps=2, change_classes=("building",))
    (all_pair,) = build_pairs(tiny_pipe, [img], [change], [3], DUBAI, every)
    (b_pair,) = build_pairs(tiny_pipe, [img], [change], [3], DUBAI, building)
    # B is the same image: every simulated change still happens, only the label differs
    np.testing.assert_array_equal(b_pair.after_image, all_pair.after_image)
    np.testing.assert_array_equal(b_pair.after_map, after)
    np.testing.assert_array_equal(b_pair.change_type, all_pair.change_type)
    np.testing.assert_array_equal(all_pair.change_mask, change.change_mask)
    np.testing.assert_array_equal(b_pair.change_mask, counted_change(before, after, change.change_mask, (BUILDING,)))
    m = b_pair.meta
    assert m["change_classes"] == ["building"] and m["changed_pixels"] == 80
    assert m["change_ratio"] == pytest.approx(80 / 1024, abs=1e-6)
    assert m["transitions"] == {"building->land": 64, "land->building": 16}
    assert m["no_interest"] == {"changed_pixels": 32, "transitions": {"water->vegetation": 32}}
    assert "change_classes" not in all_pair.meta and all_pair.meta["changed_pixels"] == 112
    with pytest.raises(ParameterError, match="`change_classes`"):
        build_pairs(tiny_pipe, [img], [change], [3], DUBAI, PairSettings(change_classes=("castle",)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_pipe):
    return saved_model_and_data(tmp_path_factory, tiny_pipe, "change_classes", DUBAI)


def _generate(setup, out, *extra):
    root, data = setup
    return main(["generate", "--images", str(data / "images"), "--labels", str(data / "labels"), "--classes",
                 "dubai-landcover", "--model", str(root / "model"), "--out", str(out), "--num", "6", "--size", "32",
                 "--num-inference-steps", "2", "--batch-size", "3", "--min-area", "16", "--num-events", "4:6",
                 "--no-progress", *extra])


def test_generate_change_classes_building(setup, capsys):
    out = setup[0] / "building"
    assert _generate(setup, out, "--change-classes", "building") == 0
    settings = json.loads((out / "generation.json").read_text())
    assert settings["events"]["change_classes"] == ["building"]
    no_interest = 0
    for meta_file in sorted((out / "meta").glob("*.json")):
        meta = json.loads(meta_file.read_text())
        stem = meta_file.stem
        label = np.asarray(Image.open(out / "label" / f"{stem}.png"))
        assert set(np.unique(label)) <= {0, 255}  # on disk 0/255, as every label
        a_map, b_map = (read_map(out / d / f"{stem}.png", DUBAI) for d in ("label_A", "label_B"))
        np.testing.assert_array_equal(label == 255, counted_target(a_map, b_map, (BUILDING,)) == 1)
        assert meta["changed_pixels"] == int((label == 255).sum()) and meta["change_classes"] == ["building"]
        assert all("building" in t.split("->") for t in meta["transitions"])
        assert not any("building" in t.split("->") for t in meta["no_interest"]["transitions"])
        no_interest += meta["no_interest"]["changed_pixels"]
    assert no_interest > 0  # the test data has other changes, labelled no change
    # rerunning without the option is another dataset: refused, not silently mixed
    assert _generate(setup, out) == 2
    assert "change_classes" in capsys.readouterr().err


def test_generate_unknown_change_class_is_refused(setup, capsys):
    assert _generate(setup, setup[0] / "bad", "--change-classes", "building,castle") == 2
    err = capsys.readouterr().err
    assert "--change-classes" in err and "castle" in err
    assert not (setup[0] / "bad" / "meta").exists()


def test_train_data_derives_building_labels_from_the_maps(setup):
    from changeanywhere.cd.data import CDTrainData

    out = setup[0] / "every"  # a folder whose label/ counts every change
    assert _generate(setup, out) == 0
    every = CDTrainData([out], crop_size=32, augment=None)
    building = CDTrainData([out], crop_size=32, augment=None, change_classes=["building"])
    differs = 0
    for i in range(len(every)):
        _, _, label = every.load(i)
        _, _, counted = building.load(i)
        a_map, b_map = (read_map(out / d / every.items[i].label.name, DUBAI) for d in ("label_A", "label_B"))
        np.testing.assert_array_equal(counted, counted_target(a_map, b_map, (BUILDING,)))
        assert ((counted == 1) <= (label == 1)).all()  # building change is a part of all change
        differs += int((counted != label).sum())
    assert differs > 0
    with pytest.raises(ParameterError, match="`change_classes`"):
        CDTrainData([out], change_classes=["castle"])


def test_train_cd_change_classes_needs_generated_maps(setup, tmp_path, capsys):
    from test_cd import make_cd_folder

    data = make_cd_folder(tmp_path / "plain", n=1)
    argv = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny",
            "--change-classes", "building", "--max-steps", "1", "--crop-size", "32", "--batch-size", "1"]
    assert main(argv) == 2
    assert "--change-classes" in capsys.readouterr().err
    out = setup[0] / "every-train"
    assert _generate(setup, out) == 0
    argv[2] = str(out)
    assert main(argv) == 0
    info = json.loads((tmp_path / "run" / "final" / "config.json").read_text())["train_info"]
    assert info["change_classes"] == ["building"]

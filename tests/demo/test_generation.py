"""`demo.generation`: generating pairs on the tiny models (the packaged zip included), what counts as change, and the
refusals."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from changeanywhere import demo
from changeanywhere.errors import ChangeAnywhereError
from changeanywhere.maps import read_map
from changeanywhere.pairs import PairSettings
from tests.helpers import SIZE


def test_generate_and_package(models, dubai, before_map, tmp_path):
    change = demo.make_after_map(before_map, dubai, num_events=3, seed=2)
    steps = []
    gen = demo.generate_variants(models, before_map, change, seed=7, num_inference_steps=3, variants=2,
                        progress=lambda f, d: steps.append((f, d)))
    assert [s.pair.seed for s in gen.samples] == [7, 8]
    # bank content at strength 0: the model samples only where non-change re-renders (none with this tiny model)
    rerendered = any(s.pair.rerendered is not None and s.pair.rerendered.any() for s in gen.samples)
    assert PairSettings.content_strength == 0 and len(steps) == 3 + (3 if rerendered else 0) + 1
    assert steps[-1][1].startswith("change detection")
    assert all(0 < a <= b <= 1 for (a, _), (b, _) in zip(steps, steps[1:], strict=False))
    for s in gen.samples:
        assert s.pair.before_image.shape == s.pair.after_image.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(s.pair.label, before_map != s.pair.after_map)  # what was pasted
        assert not (s.pair.label & (change.after == before_map)).any()  # within the planned change
        assert s.prediction.shape == (SIZE, SIZE) and 0 <= s.metrics["f1"] <= 1
        assert demo.prediction_overlay(s).shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(gen.samples[0].pair.before_image, gen.samples[1].pair.before_image)  # one
    assert gen.settings["before_image"] == "synthesized" and gen.settings["before_seed"] == 7

    real = np.full((SIZE, SIZE, 3), 90, np.uint8)
    gen2 = demo.generate_variants(models, before_map, change, real, seed=1, num_inference_steps=2)
    assert gen2.timings["synthesis"] == 0 and (gen2.samples[0].pair.before_image == real).all()

    path = demo.write_sample_zip(gen, dubai, tmp_path, source="test")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
        sample_meta = json.loads(zf.read("meta/000001.json"))
        label = np.asarray(Image.open(io.BytesIO(zf.read("label/000001.png"))))
        after_map = read_map(Image.open(io.BytesIO(zf.read("label_B/000001.png"))), dubai)
    folders = ("A", "B", "label", "label_A", "label_B", "change_type")  # the layout of `changeanywhere generate`
    expected = {f"{d}/00000{i}.png" for d in folders for i in (0, 1)} | {"meta/000000.json", "meta/000001.json"}
    assert names == expected | {"metadata.json"}
    np.testing.assert_array_equal(label == 255, before_map != after_map)
    assert [s["seed"] for s in meta["samples"]] == [7, 8] and meta["sampler"]["num_inference_steps"] == 3
    assert sample_meta["events"] == change.events and meta["class_set"] == "dubai-landcover"
    assert sample_meta["content_scale"] == pytest.approx(demo.DEFAULT_CONTENT_SCALE)
    assert sample_meta["drift"] is None and demo.DEFAULT_DRIFT == 0  # non-change replaced the global drift
    assert sample_meta["nonchange"]["settings"]["strength"] == pytest.approx(demo.DEFAULT_NONCHANGE)
    assert meta["sampler"]["nonchange"] == demo.DEFAULT_NONCHANGE


def test_what_counts_as_change_picks_the_label_and_the_model(tiny_model_dirs, dubai, before_map, tmp_path):
    """Building change: the label marks only changes to or from building (the maps keep every change) and the
    building model predicts, which the info says; without a building model the any-change model stands in."""
    import torch

    from changeanywhere.cd import build_cd_model

    torch.manual_seed(1)
    build_cd_model("tiny").save_pretrained(tmp_path / "cd-building")
    gen_dir, cd_dir = tiny_model_dirs
    models = demo.load_models(gen_dir, cd_dir, device="cpu", fallback=None, cd_building_model=tmp_path / "cd-building")
    assert models.notices == [] and "**cd-building** (building change)" in demo.status_markdown(models)
    building = dubai.names.index("building")
    change = None
    for seed in range(20):  # events that change building and something else
        c = demo.make_after_map(before_map, dubai, num_events=4, seed=seed)
        moved = c.after != before_map
        counted = moved & ((before_map == building) | (c.after == building))
        if counted.any() and (moved & ~counted).any():
            change = c
            break
    assert change is not None
    painted = demo.generate_variants(models, before_map, change, seed=3, num_inference_steps=2, counts="building",
                                     content="diffusion").samples[0].pair
    np.testing.assert_array_equal(painted.label, counted)  # painting follows the planned map exactly
    np.testing.assert_array_equal(painted.after_map, change.after)
    gen = demo.generate_variants(models, before_map, change, seed=3, num_inference_steps=2, counts="building")
    pair = gen.samples[0].pair  # bank content: the map is what was pasted, inside the planned change
    moved = pair.after_map != before_map
    assert moved.any() and not (moved & (change.after == before_map)).any()
    counted = moved & ((before_map == building) | (pair.after_map == building))
    np.testing.assert_array_equal(pair.label, counted)
    assert gen.settings["counts"] == "building" and gen.settings["cd_model"] == str(tmp_path / "cd-building")
    assert "building-change CD model cd-building" in gen.settings["cd_method"]
    any_change = demo.generate_variants(models, before_map, change, seed=3, num_inference_steps=2)
    np.testing.assert_array_equal(any_change.samples[0].pair.label, moved)
    assert any_change.settings["cd_model"] == str(cd_dir)
    alone = demo.load_models(gen_dir, cd_dir, device="cpu", fallback=None, cd_building_fallback=tmp_path / "none")
    assert any("No building-change CD model" in n for n in alone.notices)
    stand_in = demo.generate_variants(alone, before_map, change, seed=3, num_inference_steps=2, counts="building")
    assert "no building-change model loaded" in stand_in.settings["cd_method"]
    with pytest.raises(ChangeAnywhereError, match="what counts as change"):
        demo.generate_variants(models, before_map, change, counts="roads")


def test_generate_refuses_no_change_and_no_model(models, dubai, before_map, tmp_path):
    with pytest.raises(ChangeAnywhereError, match="changes nothing"):
        demo.generate_variants(models, before_map, demo.make_after_map(before_map, dubai))
    empty = demo.Models(None, None, dubai, "x", "cva", ["Generator: no pipeline at x"])
    with pytest.raises(ChangeAnywhereError, match="no pipeline at x"):
        demo.generate_variants(empty, before_map, demo.make_after_map(before_map, dubai, num_events=2))

"""`demo.uploads`: reading uploaded maps and before images, fitting them to the model, the examples, the
display palette."""


import numpy as np
import pytest
from PIL import Image

from changeanywhere import ClassSet, demo
from changeanywhere.errors import ChangeAnywhereError, MapSizeError, UnknownColorsError
from changeanywhere.examples import make_example_map
from tests.helpers import SIZE, stroke_layer, write_png


def test_colour_and_index_maps_are_read(tmp_path, dubai, before_map):
    colour = write_png(tmp_path / "colour.png", dubai.indices_to_colors(before_map))
    index = write_png(tmp_path / "index.png", before_map)
    rgba = write_png(tmp_path / "rgba.png", np.dstack([dubai.indices_to_colors(before_map),
                                                       np.full(before_map.shape, 255, np.uint8)]))
    palette = Image.fromarray(before_map, mode="L").convert("P")
    palette.putpalette(dubai.palette.ravel().tolist())
    pal = tmp_path / "palette.png"
    palette.save(pal)
    for path in (colour, index, rgba, pal):
        got, _ = demo.read_uploaded_map(path, dubai)
        np.testing.assert_array_equal(got, before_map)
    got, _ = demo.read_uploaded_map(colour, dubai, choice="dubai-landcover")
    np.testing.assert_array_equal(got, before_map)


def test_map_of_another_class_set_is_refused(tmp_path, dubai, before_map):
    loveda = ClassSet.builtin("loveda")
    path = write_png(tmp_path / "loveda.png", loveda.indices_to_colors(before_map))
    with pytest.raises(ChangeAnywhereError, match="'loveda'.*generator draws 'dubai-landcover'"):
        demo.read_uploaded_map(path, dubai)
    with pytest.raises(ChangeAnywhereError, match="'potsdam'"):
        demo.read_uploaded_map(path, dubai, choice="potsdam")


def test_unknown_colours_are_named_or_snapped(tmp_path, dubai, before_map):
    rgb = dubai.indices_to_colors(before_map).copy()
    rgb[:4, :4] = (0x86, 0x2B, 0xF4)  # slightly off "land", as a JPEG would leave it
    path = write_png(tmp_path / "lossy.png", rgb)
    with pytest.raises(UnknownColorsError, match="#862BF4.*snap unknown colours"):
        demo.read_uploaded_map(path, dubai)
    got, notices = demo.read_uploaded_map(path, dubai, snap=True)
    assert (got[:4, :4] == dubai.index_of("land")).all() and "snapped" in notices[0]


def test_corrupt_and_missing_files_give_clear_errors(tmp_path, dubai):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ChangeAnywhereError, match="cannot read the land-cover map broken.png"):
        demo.read_uploaded_map(bad, dubai)
    with pytest.raises(ChangeAnywhereError, match="cannot read the before image"):
        demo.read_before_image(bad)
    with pytest.raises(ChangeAnywhereError, match="not found"):
        demo.read_uploaded_map(tmp_path / "gone.png", dubai)
    with pytest.raises(ChangeAnywhereError, match="out of range|outside|not classes"):
        demo.read_uploaded_map(write_png(tmp_path / "idx.png", np.full((16, 16), 9, np.uint8)), dubai)


def test_fit_to_model_downscales_and_crops(dubai):
    big = make_example_map(dubai, size=600, seed=0)[:, :520]
    image = np.zeros((600, 520, 3), np.uint8)
    m, img, notices = demo.fit_to_model(big, image, multiple=16, max_side=512)
    assert m.shape == img.shape[:2] == (512, 432)  # 600×520 -> 512×444 -> crop to multiples of 16
    assert set(np.unique(m)) <= set(np.unique(big))  # nearest: no new labels
    assert "downscaled" in notices[0] and "Centre-cropped" in notices[1]
    same, _, none = demo.fit_to_model(big[:64, :64], None, multiple=16)
    assert same.shape == (64, 64) and none == []
    with pytest.raises(MapSizeError, match="at least 16×16"):
        demo.fit_to_model(big[:10, :40], None, multiple=16)
    with pytest.raises(MapSizeError, match="before image is 520×600 px but the map is 64×64"):
        demo.fit_to_model(big[:64, :64], image, multiple=16)


def test_real_examples_load_with_their_image(dubai):
    """The Example tab's default is a real Dubai crop: its map and its real image (so the first Generate shows a
    real before image), with the dataset's attribution."""
    from changeanywhere.examples import real_examples

    names = demo.example_names(dubai)
    real = real_examples()
    assert 2 <= len(real) <= 4 and names[: len(real)] == [e.name for e in real] and names[-1] == "Town (seed 3)"
    before_map, image, notices = demo.load_example(names[0], dubai, SIZE)
    assert image.shape == (*before_map.shape, 3) and image.dtype == np.uint8 and max(before_map.shape) <= 512
    assert len(np.unique(before_map)) >= 3 and "MBRSC" in notices[0] and "Humans in the Loop" in notices[0]
    assert demo.example_names(ClassSet.builtin("loveda"))[0] == "Town (seed 0)"  # real ones only for their set
    town, none, _ = demo.load_example("Town (seed 1)", dubai, SIZE)
    assert town.shape == (SIZE, SIZE) and none is None


def test_display_palette_tells_classes_apart_and_the_brush_starts_on_a_change(dubai, before_map):
    """Land and building are both purple in the Dubai data: the app shows building in another colour (display
    only: the class set itself keeps the data's colours); the brush starts on building, not on land."""
    shown = demo.display_class_set(dubai)
    assert shown.names == dubai.names and ClassSet.builtin("dubai-landcover") == dubai  # untouched
    land, building = shown.palette[dubai.index_of("land")], shown.palette[dubai.index_of("building")]
    assert np.abs(land.astype(int) - building).sum() > 200 and len({tuple(c) for c in shown.palette}) == 5
    assert dubai.names[demo.default_brush(dubai)] == "building"
    layer = stroke_layer(before_map.shape, (10, 20, 10, 30), building, soft_edge=False)
    (edit,) = demo.painted_edits({"layers": [layer]}, shown, before_map.shape)
    assert edit.target == dubai.index_of("building") and edit.mask.sum() == 200

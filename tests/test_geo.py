"""GeoTIFF in and out: reading (bands, nodata, 16 bit, grids), `simulate` and `generate` on a georeferenced
scene (every output keeps the CRS and its tile's transform), windowed reads, and the missing-extra message."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from changeanywhere import geo
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.dataset import IMAGE_DIRS
from changeanywhere.errors import GridMismatchError, MissingExtraError

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine  # noqa: E402

from changeanywhere.maps import read_map, write_map  # noqa: E402

DUBAI = ClassSet.builtin("dubai-landcover")
CRS = "EPSG:32640"
PIXEL = 0.5
ORIGIN = (500_000.0, 2_800_000.0)  # x of the left edge, y of the top edge (UTM 40N, Dubai)
TRANSFORM = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
SHAPE = (80, 96)  # rows, columns
SMALL = ["--size", "32", "--num-inference-steps", "2", "--batch-size", "2", "--min-area", "16", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


def write_tif(path: Path, bands: np.ndarray, transform=TRANSFORM, crs=CRS, **profile) -> Path:
    """A (C, H, W) array as a tiled, compressed GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = bands.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=bands.dtype, crs=crs,
                       transform=transform, tiled=True, blockxsize=16, blockysize=16, compress="deflate",
                       **profile) as dst:
        dst.write(bands)
    return path


def scene(root: Path, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """`root/images/scene.tif` (RGB) and `root/labels/scene.tif` (one band of Dubai classes, 255 = nodata)."""
    rng = np.random.default_rng(0)
    m = rng.integers(0, DUBAI.num_classes, (shape[0] // 8, shape[1] // 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    m[:8, :8] = 255
    img = np.clip(DUBAI.palette[np.minimum(m, 4)].astype(int) + rng.integers(-20, 21, (*shape, 3)), 0, 255)
    img = img.astype(np.uint8)
    write_tif(root / "images" / "scene.tif", img.transpose(2, 0, 1))
    write_tif(root / "labels" / "scene.tif", m[None], nodata=255)
    return img, m


@pytest.fixture(scope="module")
def geo_setup(tmp_path_factory, tiny_pipe):
    root = tmp_path_factory.mktemp("geo")
    tiny_pipe.save_pretrained(root / "model")
    img, m = scene(root / "data")
    return root, img, m


def generate_args(root: Path, out: Path, *extra: str, num: int = 4, data: Path | None = None) -> list[str]:
    data = data or root / "data"
    return ["generate", "--images", str(data / "images"), "--labels", str(data / "labels"),
            "--classes", "dubai-landcover", "--model", str(root / "model"), "--out", str(out), "--num", str(num),
            *SMALL, *extra]


def tile_transform(x: int, y: int) -> tuple[float, ...]:
    """Tile (x, y)'s transform: the source origin moved by the pixel offset times the pixel size."""
    return (PIXEL, 0.0, ORIGIN[0] + x * PIXEL, 0.0, -PIXEL, ORIGIN[1] - y * PIXEL)


def assert_georeferenced(path: Path, x: int, y: int) -> None:
    with rasterio.open(path) as src:
        assert src.crs == rasterio.crs.CRS.from_string(CRS), path
        assert tuple(src.transform)[:6] == pytest.approx(tile_transform(x, y)), path


# --------------------------------------------------------------------------------------------------- reading


def test_read_map_and_image_bands_nodata_and_16_bit(tmp_path):
    m = np.array([[0, 1, 2, 3], [4, 9, 0, 1]], np.uint8)  # 9 = nodata
    path = write_tif(tmp_path / "map.tif", m[None], nodata=9)
    got = read_map(path, DUBAI)
    np.testing.assert_array_equal(got, np.where(m == 9, 255, m))
    # a 1-based set: values are read in its own convention (0 = its ignore)
    loveda = ClassSet.builtin("loveda")
    raw = np.array([[1, 2, 3, 4], [5, 6, 7, 0]], np.uint8)
    np.testing.assert_array_equal(read_map(write_tif(tmp_path / "ld.tif", raw[None]), loveda),
                                  [[0, 1, 2, 3], [4, 5, 6, 255]])
    bands = np.stack([np.full((2, 3), v, np.uint8) for v in (10, 20, 30, 40)])  # a 4-band image
    path = write_tif(tmp_path / "four.tif", bands)
    rgb, valid = geo.read_image(path)
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [10, 20, 30] and valid.all()
    assert geo.read_image(path, bands=(4, 3, 2))[0][0, 0].tolist() == [40, 30, 20]
    assert geo.read_image(path, bands=(2,))[0][0, 0].tolist() == [20, 20, 20]
    with pytest.raises(Exception, match=r"4 band\(s\).*asks for \[5\]"):
        geo.read_image(path, bands=(1, 2, 5))
    grey16 = write_tif(tmp_path / "grey16.tif", np.array([[[0, 32896, 65535]]], np.uint16))
    assert geo.read_image(grey16)[0][0, :, 0].tolist() == [0, 128, 255]
    grid = geo.read_grid(path)
    assert grid.crs == CRS and grid.transform == tuple(TRANSFORM)[:6] and (grid.width, grid.height) == (3, 2)
    assert grid.window(2, 1, 1, 1).transform == tile_transform(2, 1)


def test_app_uploads_accept_geotiffs(tmp_path):
    from changeanywhere import demo

    img, m = scene(tmp_path)
    got, notices = demo.read_uploaded_map(tmp_path / "labels" / "scene.tif", DUBAI)
    np.testing.assert_array_equal(got, m)
    assert "index map" in notices[0]
    np.testing.assert_array_equal(demo.read_before_image(tmp_path / "images" / "scene.tif"), img)
    colour = write_tif(tmp_path / "colour.tif", DUBAI.indices_to_colors(np.minimum(m, 4)).transpose(2, 0, 1))
    np.testing.assert_array_equal(demo.read_uploaded_map(colour, DUBAI)[0], np.minimum(m, 4))


# --------------------------------------------------------------------------------------------------- simulate


@pytest.mark.parametrize("fmt", ["tif", "png"])
def test_simulate_keeps_the_maps_georeference(geo_setup, tmp_path, fmt):
    root, _, m = geo_setup
    out = tmp_path / "sim"
    extra = ["--format", "png"] if fmt == "png" else []  # GeoTIFF is the default for a GeoTIFF map
    assert main(["simulate", "--before-map", str(root / "data" / "labels" / "scene.tif"), "--classes",
                 "dubai-landcover", "--out", str(out), "--min-area", "16", *extra]) == 0
    names = ["label_after", "change_mask", "change_type"]
    for name in names:
        assert_georeferenced(out / f"{name}.{fmt}", 0, 0)
    after = read_map(out / f"label_after.{fmt}", DUBAI)
    with rasterio.open(out / f"change_mask.{fmt}") as src:
        mask = src.read(1)
    np.testing.assert_array_equal(mask == 255, (after != m) & (m != 255) & (after != 255))
    report = json.loads((out / "events.json").read_text())
    assert report["geo"] == {"crs": CRS, "transform": list(tile_transform(0, 0))}
    if fmt == "png":
        assert (out / "label_after.pgw").is_file() and (out / "label_after.png.aux.xml").is_file()


# --------------------------------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def geo_run(geo_setup):
    root, _, _ = geo_setup
    out = root / "out-tif"
    assert main(generate_args(root, out, "--format", "tif", "--splits", "0.5:0.5", num=6)) == 0
    return out


def test_generate_geotiff_tiles_keep_the_crs_and_their_own_transform(geo_setup, geo_run):
    """Acceptance: every output tile of a georeferenced scene is a GeoTIFF in the source CRS whose origin is the
    source origin plus the tile's pixel offset times the pixel size; A and label_A are the source's pixels."""
    _, img, m = geo_setup
    manifest = [json.loads(line) for line in (geo_run / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 6
    for rec in manifest:
        x, y, sid = rec["source"]["x"], rec["source"]["y"], rec["id"]
        assert rec["geo"] == {"crs": CRS, "transform": list(tile_transform(x, y))}
        for d in IMAGE_DIRS:
            assert_georeferenced(geo_run / d / f"{sid}.tif", x, y)
        with rasterio.open(geo_run / "A" / f"{sid}.tif") as src:
            np.testing.assert_array_equal(src.read().transpose(1, 2, 0), img[y : y + 32, x : x + 32])
        np.testing.assert_array_equal(read_map(geo_run / "label_A" / f"{sid}.tif", DUBAI), m[y : y + 32, x : x + 32])
    assert "A/*.tif" in (geo_run / "README.md").read_text()
    assert not [p for p in geo_run.rglob(".*") if p.is_file()], "temp files left behind"


def test_generated_geotiffs_read_as_a_cd_folder(geo_run):
    from changeanywhere.cd import ChangeFolderDataset

    data = ChangeFolderDataset(geo_run, class_set=DUBAI)
    item = data[1]
    assert len(data) == 6 and item["image"].shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(item["maps"][0].numpy(), read_map(geo_run / "label_A" / "000001.tif", DUBAI))


def test_generate_png_with_world_files(geo_setup, tmp_path):
    root, _, _ = geo_setup
    out = tmp_path / "png"
    assert main(generate_args(root, out, "--format", "png", num=2)) == 0
    for rec in map(json.loads, (out / "manifest.jsonl").read_text().splitlines()):
        for d in IMAGE_DIRS:
            assert (out / d / f"{rec['id']}.pgw").is_file()
            assert_georeferenced(out / d / f"{rec['id']}.png", rec["source"]["x"], rec["source"]["y"])
    settings = json.loads((out / "generation.json").read_text())
    assert settings["file_format"] == "png"  # every option is recorded


def test_large_scene_is_read_by_windows(geo_setup, tmp_path, monkeypatch):
    """No read of the whole scene: tiles are windows of the tile size, and the map check goes strip by strip."""
    root, _, _ = geo_setup
    reads = []
    real_read = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        out = real_read(self, *args, **kwargs)
        reads.append(out.shape[-2:])
        return out

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    monkeypatch.setattr(geo, "STRIP_PIXELS", SHAPE[1] * 8)
    assert main(generate_args(root, tmp_path / "windowed", num=2)) == 0
    assert reads and all(h <= 32 and w <= SHAPE[1] for h, w in reads), reads
    assert max(h * w for h, w in reads) <= 32 * SHAPE[1]


def test_grids_that_differ_are_refused_or_resampled(geo_setup, tmp_path, capsys):
    root, img, m = geo_setup
    data = tmp_path / "data"
    write_tif(data / "labels" / "scene.tif", m[None, ::2, ::2].copy(), nodata=255,
              transform=Affine(2 * PIXEL, 0, ORIGIN[0], 0, -2 * PIXEL, ORIGIN[1]))  # the same scene at 1 m
    write_tif(data / "images" / "scene.tif", img.transpose(2, 0, 1))
    assert main(generate_args(root, tmp_path / "refused", data=data)) == 2
    err = capsys.readouterr().err
    assert "not on one pixel grid" in err and "48×40 px, pixel 1×1" in err and "--resample" in err
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "resampled"
    assert main(generate_args(root, out, "--resample", "bilinear", data=data, num=2)) == 0
    rec = json.loads((out / "meta" / "000000.json").read_text())
    x, y = rec["source"]["x"], rec["source"]["y"]
    with rasterio.open(out / "A" / "000000.tif") as src:
        assert src.transform.a == 2 * PIXEL and src.transform.c == ORIGIN[0] + 2 * PIXEL * x
        assert src.width == 32 and src.transform.f == ORIGIN[1] - 2 * PIXEL * y
    with pytest.raises(GridMismatchError, match="not on one pixel grid"):
        geo.pair_grid(geo.read_grid(data / "labels" / "scene.tif"), geo.read_grid(data / "images" / "scene.tif"),
                      Path("m.tif"), Path("i.tif"))
    # a plain PNG map of the same size as a GeoTIFF image: the tiles take the image's georeference
    plain = tmp_path / "plain"
    write_tif(plain / "images" / "scene.tif", img.transpose(2, 0, 1))
    (plain / "labels").mkdir()
    write_map(plain / "labels" / "scene.png", m, DUBAI)
    out = tmp_path / "plain-out"
    assert main(generate_args(root, out, data=plain, num=2)) == 0
    rec = json.loads((out / "meta" / "000000.json").read_text())
    assert_georeferenced(out / "label_A" / "000000.tif", rec["source"]["x"], rec["source"]["y"])


def test_bad_bands_and_formats_are_clear_errors(geo_setup, tmp_path, capsys):
    root, _, _ = geo_setup
    assert main(generate_args(root, tmp_path / "o1", "--bands", "1", "2", "7")) == 2
    assert "has 3 band(s) (1..3) but --bands asks for [7]" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- without rasterio


def test_without_rasterio_geotiffs_ask_for_the_geo_extra(geo_setup, tmp_path, monkeypatch, capsys):
    root, _, _ = geo_setup
    monkeypatch.setitem(sys.modules, "rasterio", None)  # `import rasterio` now raises ImportError
    assert not geo.has_rasterio()
    label = root / "data" / "labels" / "scene.tif"
    with pytest.raises(MissingExtraError, match=r"pip install 'changeanywhere\[geo\]'"):
        read_map(label, DUBAI)
    assert main(["simulate", "--before-map", str(label), "--classes", "dubai-landcover",
                 "--out", str(tmp_path / "s")]) == 2
    assert "pip install 'changeanywhere[geo]'" in capsys.readouterr().err
    assert main(generate_args(root, tmp_path / "g")) == 2
    assert "pip install 'changeanywhere[geo]'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "g").exists()
    # plain PNG data still works, and asking for GeoTIFF output says what to install
    png = tmp_path / "png.png"
    write_map(png, np.zeros((8, 8), np.uint8), DUBAI)
    assert main(["simulate", "--before-map", str(png), "--classes", "dubai-landcover", "--out", str(tmp_path / "p"),
                 "--format", "tif"]) == 2
    assert "pip install 'changeanywhere[geo]'" in capsys.readouterr().err

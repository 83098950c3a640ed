"""Hostile and unusual uploads: each test names what it feeds and what it expects. The readers are the app's
(`demo.read_uploaded_map`, `demo.read_before_image`) and the library's (`ClassSet.read_map`, used by the CLI)."""

import io
import json
import re
import struct
import time
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from changeanywhere import demo
from changeanywhere.errors import ChangeAnywhereError, MapSizeError
from changeanywhere.examples import make_example_map
from changeanywhere.maps import read_map
from tests.helpers import LOAD_NOTICE, SIZE, call_generate, editor_input


@pytest.fixture
def before_map(dubai):
    return make_example_map(dubai, size=SIZE, seed=5)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height 8-bit RGB pixels but whose data is a few bytes: a bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def encoded(array: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ decompression bombs


@pytest.mark.parametrize("side, message", [(60_000, "too many pixels"), (8_000, "claims 8,000×8,000 px")])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, dubai, side, message):
    """Feeds a PNG whose header claims side² px (60,000²: beyond Pillow's own limit; 8,000²: beyond the app's
    `MAX_PIXELS`) with almost no data; expects a clear refusal within a second, for map and image alike."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    t0 = time.perf_counter()
    with pytest.raises(ChangeAnywhereError, match=message):
        demo.read_uploaded_map(path, dubai)
    with pytest.raises(ChangeAnywhereError, match=message):
        demo.read_before_image(path)
    assert time.perf_counter() - t0 < 1.0  # nothing was decoded


def test_decompression_bomb_via_the_library_reader(tmp_path, dubai):
    """Feeds the 60,000² PNG to `ClassSet.read_map` (the CLI's reader); expects a ChangeAnywhereError naming it."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(60_000, 60_000))
    with pytest.raises(ChangeAnywhereError, match=r"cannot read land-cover map .*bomb\.png"):
        read_map(path, dubai)


def test_decompression_bomb_on_the_command_line(tmp_path, capsys):
    """Feeds the 60,000² PNG to `changeanywhere simulate`; expects exit status 2, a one-line error, no output."""
    from changeanywhere.cli import main

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(60_000, 60_000))
    args = ["simulate", "--before-map", str(path), "--classes", "dubai-landcover", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: cannot read land-cover map" in err and "bomb.png" in err and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ truncated and corrupt files


def damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    middle = bytearray(data)
    middle[len(data) // 3 : len(data) // 3 + 64] = b"\xff" * 64  # corrupt: garbage over the compressed data
    return bytes(middle)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's own note on the cut TIFF
@pytest.mark.parametrize("fmt, suffix", [("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif")])
@pytest.mark.parametrize("how", ["truncated", "corrupt"])
def test_truncated_or_corrupt_files_give_a_clear_error(tmp_path, dubai, before_map, fmt, suffix, how):
    """Feeds a PNG / JPEG / TIFF cut in half, or with 64 bytes of garbage inside; expects a ChangeAnywhereError
    naming the file (or, where the damage misses the pixels, a readable image of the right size): never another
    exception."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    kw = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    for what, array, read in (
        ("map", dubai.indices_to_colors(before_map), lambda p: demo.read_uploaded_map(p, dubai, snap=True)[0]),
        ("image", photo, demo.read_before_image),
    ):
        path = tmp_path / f"{what}_{how}.{suffix}"
        path.write_bytes(damaged(encoded(array, fmt, **kw), how))
        try:
            out = read(path)
        except ChangeAnywhereError as err:
            assert path.name in str(err) and re.search(r"cannot read|truncated or corrupt|photo|not in class", str(err))
        else:
            assert out.shape[:2] == (SIZE, SIZE)  # JPEG decoders conceal some damage: then the image is whole


# ------------------------------------------------------------------------------------- unusual pixel formats


def test_16_bit_index_map_and_colour_map(tmp_path, dubai, before_map):
    """Feeds a 16-bit greyscale index PNG and a 48-bit colour PNG of the same map; expects the map back."""
    Image.fromarray(before_map.astype(np.uint16)).save(tmp_path / "index16.png")
    assert Image.open(tmp_path / "index16.png").mode.startswith("I")
    colour16 = dubai.indices_to_colors(before_map).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "colour48.png"), colour16[..., ::-1])
    for name in ("index16.png", "colour48.png"):
        got, _ = demo.read_uploaded_map(tmp_path / name, dubai)
        np.testing.assert_array_equal(got, before_map)


def test_16_bit_before_image_is_scaled_not_clipped(tmp_path):
    """Feeds a 16-bit greyscale image with values 0, 32,896 and 65,535; expects 0, 128 and 255 in all channels."""
    Image.fromarray(np.array([[0, 32896, 65535]], np.uint16)).save(tmp_path / "grey16.png")
    out = demo.read_before_image(tmp_path / "grey16.png")
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255] and (out == out[..., :1]).all()


def test_rgba_and_palette_uploads(tmp_path, dubai, before_map):
    """Feeds an RGBA map with half its pixels transparent, an RGBA image and a palette image; expects alpha and
    palettes dropped: the map read by colour, the images as their RGB colours."""
    rgb = dubai.indices_to_colors(before_map)
    alpha = np.where(np.arange(SIZE)[None] % 2, 0, 255).astype(np.uint8).repeat(SIZE, 0)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "map_rgba.png")
    np.testing.assert_array_equal(demo.read_uploaded_map(tmp_path / "map_rgba.png", dubai)[0], before_map)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "image_rgba.png")
    np.testing.assert_array_equal(demo.read_before_image(tmp_path / "image_rgba.png"), rgb)
    Image.fromarray(rgb).quantize(8).save(tmp_path / "image_p.png")
    pal = Image.open(tmp_path / "image_p.png")
    expected = np.asarray(pal.convert("RGB"))
    assert pal.mode == "P"
    np.testing.assert_array_equal(demo.read_before_image(tmp_path / "image_p.png"), expected)


def test_one_pixel_uploads(tmp_path, dubai, before_map):
    """Feeds a 1×1 map, and a 1×1 image beside a 64² map; expects size errors that say what is needed."""
    Image.fromarray(dubai.indices_to_colors(before_map[:1, :1])).save(tmp_path / "one.png")
    one_map, _ = demo.read_uploaded_map(tmp_path / "one.png", dubai)
    with pytest.raises(MapSizeError, match="the map is 1×1 px; the generator needs at least 8×8"):
        demo.start_session(one_map, None, "one", [], multiple=8)
    image = demo.read_before_image(tmp_path / "one.png")
    with pytest.raises(MapSizeError, match="the before image is 1×1 px but the map is 64×64"):
        demo.start_session(before_map, image, "m", [], multiple=8)


def test_a_photo_uploaded_as_a_map_is_named_as_such(tmp_path, dubai):
    """Feeds a real aerial image (the first example's) as the map, with and without snap; expects "looks like a
    photo", not a wall of colours and never a speckled map."""
    from changeanywhere.examples import real_examples

    photo = real_examples()[0].image
    for snap in (False, True):
        with pytest.raises(ChangeAnywhereError, match=r"looks like a photo, not a land-cover map: [\d,]+") as e:
            demo.read_uploaded_map(photo, dubai, snap=snap)
        assert "#" not in str(e.value)  # no list of hex codes


def test_zero_based_index_upload_is_flagged_in_the_app(tmp_path):
    """Feeds a 0-based OpenEarthMap index map to the app's reader (generator: openearthmap); expects a notice."""
    from changeanywhere import ClassSet

    oem = ClassSet.builtin("openearthmap")
    Image.fromarray(np.repeat(np.arange(8, dtype=np.uint8), 8)[None].repeat(64, 0)).save(tmp_path / "oem.png")
    with pytest.warns(UserWarning):
        _, notices = demo.read_uploaded_map(tmp_path / "oem.png", oem)
    assert any("value 0 covers 12.5%" in n and "0-based" in n for n in notices), notices


# --------------------------------------------------------------------------------- odd file names (API)


ODD_NAME = "..\\..\\évil ünï 名前 *bold* <b>.png"  # backslash path separators, non-ASCII, Markdown, HTML


def test_odd_file_name_in_the_upload_and_the_zip(client, tmp_path, dubai, before_map):
    """Uploads a map whose name holds backslashes, non-ASCII letters, Markdown and HTML, then generates; expects
    the map loaded under its name (Gradio keeps the letters and drops the separators and markup characters;
    whatever remains is shown escaped), the zip's entries fixed names only (nothing climbs out of the archive)
    and the name kept in its metadata."""
    from gradio_client import handle_file

    path = tmp_path / ODD_NAME
    Image.fromarray(dubai.indices_to_colors(before_map)).save(path, format="PNG")
    loaded = client.predict(handle_file(str(path)), demo.AUTO, False, None, api_name="/load_map")
    notice = loaded[LOAD_NOTICE]
    assert "⚠️" not in notice and "64×64 px" in notice
    assert "évil ünï 名前" in notice and "bold" in notice, notice
    assert not re.search(r"(?<!\\)[*<>]|\\\\|/", notice.split("**")[1]), notice  # no separator, no live markup
    out = call_generate(client, editor_input(), n_events=3, ev_seed=1)
    with zipfile.ZipFile(out[-2]) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("metadata.json"))
    assert all(re.fullmatch(r"(A|B|label|label_A|label_B|change_type)/\d{6}\.png|meta/\d{6}\.json|metadata\.json", n)
               for n in names), names
    assert "évil ünï 名前" in meta["source"]

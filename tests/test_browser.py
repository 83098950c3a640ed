"""The app in a real browser, along the path a user takes, errors included: the real example loads with its
image, a painted stroke generates a pair, a bad upload and a Generate with no edit each say why beside their
button while the page stays usable (the editor keeps its map, the outputs keep the last result).

Needs Debian's `chromium` (CI: `apt-get install chromium`) and the Python `playwright` package; never
`playwright install`. Screenshots of each step go to `tests/artifacts/browser-*.png` (ignored by git).
"""

import io
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changeanywhere import demo
from changeanywhere.examples import real_examples
from tests.helpers import start_app  # the app launcher of the API tests (tests/test_app.py)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,  # a browser against a launched app
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"browser test needs Debian chromium at {CHROMIUM}"),
]


def wait_until_stable(locator, seconds: float = 1.0, timeout: float = 20.0) -> None:
    """Wait until the text of `locator` stops changing (the editor's zoom label once the map is drawn)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = locator.inner_text() if locator.count() else None
        if text != last:
            last, since = text, time.monotonic()
        elif text and time.monotonic() - since >= seconds:
            return
        time.sleep(0.2)
    raise AssertionError(f"editor did not settle (last zoom label {last!r})")


def map_share(png: bytes, palette: np.ndarray) -> float:
    """Share of a screenshot's pixels within a small distance of a class colour: the editor shows a map."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int32).reshape(-1, 1, 3)
    return float((np.abs(rgb - palette[None].astype(np.int32)).sum(-1).min(1) < 24).mean())


def line_of(locator, start: str) -> str | None:
    """The line of `locator`'s text that starts with `start` (boxes also show a timer while an event runs)."""
    return next((line for line in locator.inner_text().splitlines() if line.startswith(start)), None)


def seed_line(metrics) -> str:
    return line_of(metrics, "Seed")


def test_walk_through_the_app_and_its_errors(models, tmp_path, dubai):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from playwright.sync_api import expect

    example = real_examples()[0]
    not_an_image = tmp_path / "not_an_image.png"
    not_an_image.write_text("these are notes, not a picture\n")
    water = "rgb(226, 169, 41)"  # the "water" class colour, #E2A929
    building = "rgb({}, {}, {})".format(*demo.display_class_set(dubai).palette[dubai.index_of("building")])
    blocks, url = start_app(models)
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("browser*.png"):
        old.unlink()
    shots = []

    def shot(page, name):
        page.wait_for_timeout(400)  # let the last images paint
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        shots.append(f"{name} ({time.monotonic() - t0:.0f} s)")

    t0 = time.monotonic()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            notice, gen_notice, metrics = (page.locator(s) for s in ("#load-notice", "#generate-notice", "#metrics"))
            editor_canvas = page.locator("#editor canvas").first
            try:
                # 1. the page opens on the real example, with its real image
                page.goto(url)
                expect(notice).to_contain_text(example.name, timeout=30_000)
                expect(notice).to_contain_text("real image")
                expect(page.locator("#source-image img")).to_be_visible(timeout=20_000)  # before any Generate
                wait_until_stable(page.locator("#editor .zoom-number"))

                # 2. the brush starts on building, each swatch named; paint with "water", generate: every output
                page.get_by_label("Brush", exact=True).click()
                page.get_by_label("Color", exact=True).click()
                selected = page.locator("#editor menu.swatch button.color.selected")
                expect(selected).to_have_attribute("style", re.compile(re.escape(building)))
                swatch_names = page.locator("#editor menu.swatch button.color").evaluate_all(
                    "bs => bs.map(b => getComputedStyle(b, '::after').content.replaceAll('\"', ''))")
                shot(page, "browser-0-brush-colours.png")
                page.locator(f'#editor button[style*="{water}"]').first.click()
                box = editor_canvas.bounding_box()
                x, y, w, h = box["x"], box["y"], box["width"], box["height"]
                page.mouse.move(x + 0.25 * w, y + 0.3 * h)
                page.mouse.down()
                page.mouse.move(x + 0.75 * w, y + 0.45 * h, steps=8)
                page.mouse.up()
                expect(page.locator("#change-summary")).to_contain_text("painted water over", timeout=30_000)
                page.locator("#generate").click()
                expect(gen_notice).to_contain_text("Generated 1 pair(s)", timeout=90_000)
                for elem in ("#out-before", "#out-after", "#out-label", "#out-pred"):
                    expect(page.locator(f"{elem} img")).to_be_visible(timeout=20_000)
                before_png = page.request.get(page.locator("#out-before img").get_attribute("src")).body()
                shot(page, "browser-1-real-example-generated.png")
                first_result = seed_line(metrics)

                # 3. upload a file that is not an image: the message, and the page as it was
                page.get_by_role("tab", name="Upload").click()
                page.locator("#map-file input[type=file]").set_input_files(str(not_an_image))
                expect(page.locator("#map-file")).to_contain_text("not_an_image", timeout=20_000)
                page.locator("#load-map").click()
                expect(notice).to_contain_text("Cannot read the land-cover map not_an_image.png", timeout=20_000)
                expect(notice).to_contain_text(f"Still loaded: example {example.name}")
                page.wait_for_timeout(1500)  # an error state would have shown by now
                editor_share = map_share(editor_canvas.screenshot(), demo.display_class_set(dubai).palette)
                error_pills = page.get_by_text("Error", exact=True).count()
                shot(page, "browser-2-bad-upload.png")
                assert seed_line(metrics) == first_result  # outputs untouched

                # 4. Generate works again (same map, same stroke; a new random seed)
                done_before = line_of(gen_notice, "Generated")
                page.locator("#generate").click()
                deadline = time.monotonic() + 90
                while line_of(gen_notice, "Generated") in (done_before, None) and time.monotonic() < deadline:
                    time.sleep(0.3)
                expect(page.locator("#out-after img")).to_be_visible()
                shot(page, "browser-3-generate-again.png")
                second_result = seed_line(metrics)
                assert second_result != first_result

                # 5. a fresh map with no edit: Generate says so, the last result stays
                page.get_by_role("tab", name="Example").click()
                page.locator("#example input").click()
                page.get_by_role("option", name="Town (seed 0)").click()
                expect(notice).to_contain_text("example Town (seed 0)", timeout=20_000)
                expect(page.locator("#change-summary")).to_contain_text("No change yet", timeout=20_000)
                page.locator("#generate").click()
                expect(gen_notice).to_contain_text("The edit changes nothing", timeout=30_000)
                page.wait_for_timeout(1000)
                shot(page, "browser-4-generate-without-edit.png")
                assert seed_line(metrics) == second_result
                expect(page.locator("#out-after img")).to_be_visible()
                final_pills = page.get_by_text("Error", exact=True).count()
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
                raise
            browser.close()
    finally:
        blocks.close()
    print("screenshots:", ", ".join(shots))
    real_before = demo.read_before_image(example.image)
    shown = np.asarray(Image.open(io.BytesIO(before_png)).convert("RGB"))
    np.testing.assert_array_equal(shown, real_before)  # the before image is the real one, losslessly
    assert editor_share > 0.5, f"the editor shows no map after the bad upload ({editor_share:.0%} map colours)"
    assert error_pills == final_pills == 0
    assert swatch_names == list(dubai.names), swatch_names  # the picker names its colours

"""The app in a real browser: upload a map, paint a stroke with a class brush, generate, read the outputs.

Needs Debian's `chromium` (CI: `apt-get install chromium`) and the Python `playwright` package; never
`playwright install`. The screenshot is written to `tests/artifacts/browser.png`.
"""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import test_app

from changeanywhere.examples import make_example_map

# the tiny models and the app launcher of the API tests
SIZE, start_app, write_png = test_app.SIZE, test_app.start_app, test_app.write_png
models, tiny_model_dirs = test_app.models, test_app.tiny_model_dirs

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

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"browser test needs Debian chromium at {CHROMIUM}"
)


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


def test_paint_and_generate_in_a_browser(models, tmp_path, dubai):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from playwright.sync_api import expect

    before_map = make_example_map(dubai, size=SIZE, seed=4)
    map_path = write_png(tmp_path / "my_map.png", dubai.indices_to_colors(before_map))
    water = "rgb(226, 169, 41)"  # the "water" class colour, #E2A929
    blocks, url = start_app(models)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            try:
                page.goto(url)
                expect(page.locator("#load-notice")).to_contain_text("Loaded", timeout=30_000)

                # upload a map of our own
                page.get_by_role("tab", name="Upload").click()
                page.locator("#map-file input[type=file]").set_input_files(str(map_path))
                expect(page.locator("#map-file")).to_contain_text("my_map", timeout=20_000)  # shown as "my_map .png"
                page.locator("#load-map").click()
                expect(page.locator("#load-notice")).to_contain_text("upload my_map.png", timeout=20_000)
                wait_until_stable(page.locator("#editor .zoom-number"))

                # paint a stroke with the "water" brush
                page.get_by_label("Brush", exact=True).click()
                page.get_by_label("Color", exact=True).click()
                page.locator(f'#editor button[style*="{water}"]').first.click()
                canvas = page.locator("#editor canvas").first
                box = canvas.bounding_box()
                x, y, w, h = box["x"], box["y"], box["width"], box["height"]
                page.mouse.move(x + 0.25 * w, y + 0.3 * h)
                page.mouse.down()
                page.mouse.move(x + 0.75 * w, y + 0.45 * h, steps=8)
                page.mouse.up()
                expect(page.locator("#change-summary")).to_contain_text("→ water", timeout=30_000)

                # generate and wait for every output
                page.locator("#generate").click()
                expect(page.locator("#metrics")).to_contain_text("F1", timeout=60_000)
                for elem in ("#out-before", "#out-after", "#out-label", "#out-pred"):
                    expect(page.locator(f"{elem} img")).to_be_visible(timeout=20_000)
                page.wait_for_timeout(500)  # let the last images paint before the screenshot
                page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
                summary = page.locator("#change-summary").inner_text()
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
                raise
            browser.close()
    finally:
        blocks.close()
    assert "edit:" in summary and "water" in summary, summary
    changed_px = int(summary.split("(")[1].split(" px")[0].replace(",", ""))
    assert 0 < changed_px < np.prod(before_map.shape), summary

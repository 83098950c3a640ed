"""Screenshot the app on the embedded default weights: the first real Dubai example, a building painted on bare
land, Generate, and the page with A, B, the label and the zero-shot prediction.

Needs Debian's `chromium` and the `playwright` package (`pip install -e '.[test]'`; never `playwright install`).

Usage:
    python scripts/app_screenshot.py --out runs/app/app-v2.png [--seed 7] [--model DIR]
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--no-first-run"]
BUILDING = "rgb(215, 38, 61)"  # the app's display colour of Dubai "building" (#D7263D; the data's is #3C1098)
# strokes over the bare land at the top right of tile1_008, as fractions of the editor canvas
STROKES = [((0.74, y), (0.92, y)) for y in (0.16, 0.19, 0.22, 0.25, 0.28)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/app/app-v2.png"))
    p.add_argument("--model", default=None, help="generator folder (default: the embedded one)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    import app
    from changeanywhere import demo

    models = demo.load_models(args.model, device="cpu")
    blocks = app.build_demo(models)
    _, url, _ = app.launch(blocks, host="127.0.0.1", port=free_port(), prevent_thread_lock=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.goto(url)
            expect(page.locator("#load-notice")).to_contain_text("real image", timeout=60_000)
            page.wait_for_timeout(3000)
            page.get_by_label("Brush", exact=True).click()
            page.get_by_label("Color", exact=True).click()
            page.wait_for_timeout(500)
            page.locator("#editor").screenshot(path=str(args.out.with_name(f"{args.out.stem}-brush.png")))
            page.locator(f'#editor button[style*="{BUILDING}"]').first.click()
            box = page.locator("#editor canvas").first.bounding_box()
            for (x0, y0), (x1, y1) in STROKES:
                page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
                page.mouse.down()
                page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=10)
                page.mouse.up()
            expect(page.locator("#change-summary")).to_contain_text("painted building over", timeout=30_000)
            page.get_by_label("Randomize seed").uncheck()
            page.get_by_label("Seed", exact=True).fill(str(args.seed))
            page.locator("#generate").click()
            expect(page.locator("#generate-notice")).to_contain_text("Generated", timeout=600_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out), full_page=True)
            for name in ("before", "after", "label", "pred"):
                src = page.locator(f"#out-{name} img").get_attribute("src")
                img = Image.open(io.BytesIO(page.request.get(src).body()))
                img.save(args.out.with_name(f"{args.out.stem}-{name}.png"))
            print(page.locator("#metrics").inner_text())
            print(page.locator("#generate-notice").inner_text())
            browser.close()
    finally:
        blocks.close()
    print(f"wrote {args.out} and its -before/-after/-label/-pred crops ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

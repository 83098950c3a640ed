"""Peak memory and speed of `changeanywhere generate` on a scene too large to load whole: a synthetic GeoTIFF pair
(default 20,000 × 20,000 px, EPSG:32640, tiled and deflate-compressed: an RGB image and a one-band index map with
a nodata corner), made here strip by strip, then generated from with a tiny random model in a child process.
Prints the child's peak resident memory (which must stay under `--max-rss-mb`, default 2,000 MB; the decoded
scene alone would take 1.6 GB) and its pairs/s. The scene is read by windows: every tile, and the map's check
strip by strip.

Usage:
    python bench/large_scene.py                          # 20,000² scene, 64 pairs of 256², 2 steps
    python bench/large_scene.py --side 4000 --num 16     # a quick check
    python bench/large_scene.py --workdir /tmp/scene     # keep the scene (made once) and the output there
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=20_000, help="scene side in pixels (default 20,000)")
    p.add_argument("--num", type=int, default=64, help="pairs to generate (default 64)")
    p.add_argument("--size", type=int, default=256, help="tile side (default 256)")
    p.add_argument("--steps", type=int, default=2, help="denoising steps (default 2: the model is random anyway)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads of the child (default 1)")
    p.add_argument("--max-rss-mb", type=float, default=2000.0, help="fail above this peak RSS (default 2,000 MB)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the scene and output here (default: a temp dir)")
    return p.parse_args(argv)


def make_scene(folder: Path, side: int, class_set) -> None:
    """images/scene.tif (RGB) and labels/scene.tif (class indices, 255 = nodata in the top-left corner), written
    in strips so that the scene is never whole in memory."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    profile = dict(driver="GTiff", width=side, height=side, dtype="uint8", crs="EPSG:32640",
                   transform=Affine(0.5, 0, 500_000, 0, -0.5, 2_800_000), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", zlevel=1, predictor=2, bigtiff="if_safer")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    palette = class_set.palette.astype(np.int16)
    cols = np.arange(side)
    with rasterio.open(folder / "images" / "scene.tif", "w", count=3, **profile) as img, \
            rasterio.open(folder / "labels" / "scene.tif", "w", count=1, nodata=255, **profile) as lab:
        for y in range(0, side, 512):
            rows = np.arange(y, min(y + 512, side))[:, None]
            # blocky land cover: 64-px cells, classes from a fixed hash of the cell
            cls = ((rows // 64) * 7 + (cols // 64) * 13 + (rows // 256) * (cols // 256)) % class_set.num_classes
            cls = cls.astype(np.uint8)
            texture = ((rows * 3 + cols * 5) % 17 - 8).astype(np.int16)  # a fine, compressible texture
            rgb = np.clip(palette[cls] + texture[..., None], 0, 255).astype(np.uint8)
            nodata = (rows < side // 20) & (cols < side // 20)
            cls[nodata] = 255
            rgb[nodata] = 0
            window = Window(0, y, side, len(rows))
            img.write(rgb.transpose(2, 0, 1), window=window)
            lab.write(cls[None], window=window)


def make_model(folder: Path, class_set) -> None:
    """A tiny random pipeline (the tests' preset), saved where the child loads it."""
    import torch

    from changeanywhere.generator.presets import build_pipeline

    torch.manual_seed(0)
    build_pipeline(class_set, preset="tiny").save_pretrained(folder)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from changeanywhere.classes import ClassSet

    dubai = ClassSet.builtin("dubai-landcover")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        scene = work / f"scene-{args.side}"
        if not (scene / "labels" / "scene.tif").is_file():
            t0 = time.perf_counter()
            make_scene(scene, args.side, dubai)
            print(f"made the {args.side:,}² scene in {time.perf_counter() - t0:.0f} s")
        sizes = {p.parent.name: p.stat().st_size / 2**20 for p in scene.glob("*/scene.tif")}
        print(f"scene: {args.side:,} × {args.side:,} px, image {sizes['images']:.0f} MB, map {sizes['labels']:.0f} MB "
              f"on disk; decoded {args.side**2 * 4 / 2**20:,.0f} MB")
        model = work / "tiny-model"
        if not (model / "model_index.json").is_file():
            make_model(model, dubai)
        out = work / f"out-{args.side}-{os.getpid()}"
        cmd = [sys.executable, "-m", "changeanywhere.cli", "generate", "--images", str(scene / "images"),
               "--labels", str(scene / "labels"), "--classes", "dubai-landcover", "--model", str(model),
               "--out", str(out), "--num", str(args.num), "--size", str(args.size),
               "--num-inference-steps", str(args.steps), "--batch-size", str(args.batch_size), "--no-progress"]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        print("$ " + " ".join(cmd[1:]))
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
        if res.returncode != 0:
            print(res.stdout + res.stderr)
            return res.returncode
        print(res.stdout.strip())
        rate = re.search(r"\(([\d.]+) pairs/s", res.stdout)
        print(f"peak RSS of generate: {peak_mb:,.0f} MB (limit {args.max_rss_mb:,.0f} MB)")
        print(f"pairs/s: {float(rate.group(1)) if rate else float('nan'):.2f} in the generate loop; "
              f"{args.num / wall:.2f} end to end ({wall:.0f} s with model load and the map check)")
        return 0 if peak_mb < args.max_rss_mb else 1


if __name__ == "__main__":
    sys.exit(main())

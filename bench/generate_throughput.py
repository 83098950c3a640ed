"""Throughput of `changeanywhere generate`: pairs/s per batch size, and the sampler's overhead over the UNet.

For each batch size B the script runs the generate loop itself (`dataset.run_batches`: tiles, change events,
the latent-mixing sampler, the PNG/JSON writes, with its input-prefetch and writer threads) on `--batches`
batches after one warm-up batch, into a temporary folder, with the sources already decoded in memory (as in a
long run). It then times the same number of UNet forward passes alone, on random inputs of the same shape
(doubled when the model's guidance needs classifier-free guidance), and prints:

    overhead (end to end) = generate-loop time / UNet-only time   (target ≤ 1.15 at batch ≥ 8)
    overhead (sampler)    = pipe.change time / UNet-only time     (sampler + VAE, no events, no writes)

The sampler's noise comes from `--noise` (default auto: per-step CPU draws on a CPU, per-sample generators on
the device elsewhere, so a GPU run has no host round trip per step; see `changeanywhere.generator.noise`).

Usage:
    python bench/generate_throughput.py                                   # embedded model, Dubai data
    python bench/generate_throughput.py --device cuda --dtype fp32 fp16 bf16 --channels-last   # on a GPU
    python bench/generate_throughput.py --device cuda --noise device predrawn                  # noise sources
    python bench/generate_throughput.py --model DIR --size 32 --steps 5   # a tiny pipeline (smoke test)
    python bench/generate_throughput.py --batch-sizes 8 --old-model OLD_DIR   # beside the old default, one run

`--old-model` times that model first with the old default settings (the anchored sampler, global drift 1, no
realistic non-change), then the model under test with today's defaults, and prints the ratio of pairs/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from changeanywhere.maps import write_map

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "data" / "dubai-landcover"
sys.path.insert(0, str(ROOT))
NOISE_SOURCES = ("auto", "step", "predrawn", "device")  # changeanywhere.runtime (not imported yet: offline)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="pipeline folder or Hub repo id (default: the embedded model)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                   help="default: 1 8 32 64 on a GPU, 1 8 32 on a CPU")
    p.add_argument("--batches", type=int, default=3, help="timed batches per batch size (after 1 warm-up)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's, as generate)")
    p.add_argument("--old-model", default=None,
                   help="also time this model first with the old defaults (anchored, drift 1, no non-change)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the model's own")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", nargs="+", default=["auto"], help="one or more of auto, fp32, fp16, bf16")
    p.add_argument("--noise", nargs="+", default=["auto"], choices=NOISE_SOURCES,
                   help="where the sampler draws its noise (one row set per source)")
    p.add_argument("--channels-last", action="store_true", help="UNet and autoencoder in channels_last memory")
    p.add_argument("--images", type=Path, default=DUBAI / "images", help="default: the shared Dubai images")
    p.add_argument("--labels", type=Path, default=DUBAI / "labels")
    p.add_argument("--classes", default=None, help="class set (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def synthetic_sources(folder: Path, class_set, n: int = 4, side: int = 512) -> tuple[Path, Path]:
    """Blocky random maps and images coloured by class, for when no real data is at hand."""
    import numpy as np
    from PIL import Image

    if (folder / "labels").is_dir():  # made for an earlier dtype / noise source
        return folder / "images", folder / "labels"
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i in range(n):
        m = rng.integers(0, class_set.num_classes, (side // 16, side // 16)).repeat(16, 0).repeat(16, 1)
        img = class_set.palette[m].astype(np.int16) + rng.integers(-20, 21, (side, side, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / "images" / f"s{i}.png")
        write_map(folder / "labels" / f"s{i}.png", m.astype(np.uint8), class_set)
    return folder / "images", folder / "labels"


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def unet_only(pipe, batch: int, steps: int, guidance: float, size: int, device: str, repeats: int) -> float:
    """Seconds for `repeats` × `steps` UNet forward passes on random inputs shaped like the sampler's."""
    import torch

    f = pipe.vae_scale_factor
    cfg = 2 if guidance != 1.0 else 1
    x = torch.randn(batch * cfg, pipe.unet.config.in_channels, size // f, size // f, device=device)
    x = x.to(pipe.unet.dtype)
    pipe.scheduler.set_timesteps(steps, device=device)
    ts = pipe.scheduler.timesteps
    with torch.no_grad():
        pipe.unet(x, ts[0])  # warm-up
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            for t in ts:
                pipe.unet(x, t)
        sync(device)
    return time.perf_counter() - t0


def attention_kernels(unet) -> str:
    """The attention processors the UNet runs (AttnProcessor2_0 = torch's scaled_dot_product_attention)."""
    from diffusers.models.attention_processor import Attention

    names = sorted({type(m.processor).__name__ for m in unet.modules() if isinstance(m, Attention)})
    return ", ".join(names) or "no attention layers"


def bench_dtype(args: argparse.Namespace, dtype: str, noise: str, work: Path, old: bool = False) -> list[dict]:
    import torch

    from changeanywhere.classes import ClassSet
    from changeanywhere.dataset import GenerateConfig, SourceCache, find_sources, make_plan, run_batches
    from changeanywhere.dataset.layout import make_folders
    from changeanywhere.hub import load_pipeline
    from changeanywhere.pairs import PairSettings
    from changeanywhere.runtime import resolve_device, resolve_noise_source

    device = resolve_device(args.device)
    pipe = load_pipeline(args.old_model if old else args.model, device=device, dtype=dtype)
    pipe.noise_source = noise
    if args.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    class_set = ClassSet.load(args.classes) if args.classes else pipe.class_set
    images, labels = args.images, args.labels
    if not (images.is_dir() and labels.is_dir()):
        print(f"(no data at {images}: using synthetic maps)")
        images, labels = synthetic_sources(work / "synthetic", class_set)
    sources = find_sources(images, labels)
    legacy = dict(sampler="anchored", nonchange=0.0, drift=1.0) if old else {}
    pair = PairSettings(num_inference_steps=args.steps, guidance_scale=args.guidance_scale, **legacy).resolved(pipe)
    cache = SourceCache(sources, class_set, args.size)
    for k in range(len(sources)):  # decoded once, as in a long run
        cache.get(k)
    rows = []
    for b in args.batch_sizes or ([1, 8, 32, 64] if device.startswith("cuda") else [1, 8, 32]):
        cfg = GenerateConfig(
            images,
            labels,
            class_set,
            work / f"{'old-' if old else ''}{dtype}-{noise}-b{b}",
            b * (1 + args.batches),
            size=args.size,
            pair=pair,
            batch_size=b,
            seed=args.seed,
            device=device,
            dtype=dtype,
        )
        make_folders(cfg.out)
        plan = make_plan(cfg.num, b, [], 1)
        run_batches(pipe, cfg, class_set, sources, plan, [0], cfg.out, cache=cache)  # warm-up
        timings: dict[str, float] = {}
        sync(device)
        t0 = time.perf_counter()
        run_batches(
            pipe, cfg, class_set, sources, plan, list(range(1, 1 + args.batches)), cfg.out, cache=cache, timings=timings
        )
        sync(device)
        total = time.perf_counter() - t0
        unet = unet_only(pipe, b, pair.num_inference_steps, pair.guidance_scale, args.size, device, args.batches)
        rows.append(
            {
                "model": "old" if old else "new",
                "dtype": str(pipe.unet.dtype).removeprefix("torch."),
                "noise": resolve_noise_source(noise, torch.device(device)),
                "batch": b,
                "pairs_s": b * args.batches / total,
                "s_batch": total / args.batches,
                "sampler_s_batch": timings["render_s"] / args.batches,
                "unet_s_batch": unet / args.batches,
                "overhead": total / unet,
                "sampler_overhead": timings["render_s"] / unet,
            }
        )
        print(f"  {rows[-1]['model']}: {rows[-1]['dtype']}, noise {rows[-1]['noise']}, batch {b}: "
              f"{rows[-1]['pairs_s']:.2f} pairs/s", flush=True)
    return rows, pipe, device, pair


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    args = parse_args(argv)
    all_rows = []
    with tempfile.TemporaryDirectory(prefix="ca-bench-") as tmp:
        for dtype in args.dtype:
            for noise in args.noise:
                if args.old_model:
                    old_rows, *_ = bench_dtype(args, dtype, noise, Path(tmp), old=True)
                    all_rows += old_rows
                rows, pipe, device, pair = bench_dtype(args, dtype, noise, Path(tmp))
                all_rows += rows
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print()
    print(
        f"model {args.model or 'embedded default'}, {args.size}² px, {pair.num_inference_steps} "
        f"{type(pipe.scheduler).__name__} "
        f"steps, guidance {pair.guidance_scale:g}"
        f"{' (CFG: 2 UNet passes per pair)' if pair.guidance_scale != 1 else ''}, "
        f"{args.batches} timed batches per size, on {name}; attention: {attention_kernels(pipe.unet)}; "
        f"{'channels_last' if args.channels_last else 'contiguous (NCHW)'} memory"
    )
    head = ("model", "dtype", "noise", "batch", "pairs/s", "s/batch", "sampler s/batch", "UNet-only s/batch",
            "overhead", "sampler ovh")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in all_rows:
        print(
            f"| {r['model']} | {r['dtype']} | {r['noise']} | {r['batch']} | {r['pairs_s']:.2f} | {r['s_batch']:.3f} "
            f"| {r['sampler_s_batch']:.3f} "
            f"| {r['unet_s_batch']:.3f} | {r['overhead']:.3f} | {r['sampler_overhead']:.3f} |"
        )
    if args.old_model:
        for r in (r for r in all_rows if r["model"] == "new"):
            o = next(o for o in all_rows if o["model"] == "old" and (o["dtype"], o["noise"], o["batch"]) ==
                     (r["dtype"], r["noise"], r["batch"]))
            print(f"new ÷ old pairs/s at batch {r['batch']} ({r['dtype']}, {r['noise']}): "
                  f"{r['pairs_s'] / o['pairs_s']:.3f} (target ≥ 0.8)")
    best = max(all_rows, key=lambda r: r["pairs_s"])
    hours = 100_000 / best["pairs_s"] / 3600
    print(
        f"\nbest: {best['pairs_s']:.2f} pairs/s ({best['dtype']}, batch {best['batch']}): 100,000 pairs in "
        f"{hours:.2f} h on this device (target: < 1 h on one H100, i.e. ≥ 28 pairs/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

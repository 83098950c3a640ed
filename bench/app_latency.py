"""Latency of the app's Generate button: from the click to every output, per step count and before image.

Runs what the `/generate` handler runs (after map from the edit, `demo.generate_variants`: before-image synthesis when
there is no real image, the after image, the zero-shot CD prediction; then the overlay and the zip) with three
random change events, after one warm-up call, and prints the median of `--repeats` calls split into synthesis,
change, CD and packaging, for every sampler of `--steps` and every before image of `--before`:

- `synthesized`: the procedural example map alone (the before image is synthesized: two sampler runs);
- `real`: a real Dubai image with its map: the `assets/examples/` crops (a 2×2 mosaic of them above 256 px),
  or `--image`/`--map`, fitted the way the app fits an upload (at most 512 px, sides multiples of the model's).

A sampler is `default` (the model's own scheduler, steps and guidance interval), `N` (its scheduler, N steps) or
`NAME:N` (a scheduler of `changeanywhere.generator.schedulers`, e.g. `ddim:20`), each optionally with `@torch` or
`@onnx`, the backend of the UNet and autoencoder (default: `--backend`, auto = what the app picks); or `old`: the
app's old default (DDIM 20, guided on every step, PyTorch). Calls are interleaved (each repeat runs every
configuration once), so the ratio between two samplers holds on a busy machine. Targets (issue 11, 512² on a quiet
2-core CPU): ≤ 10 s synthesized, ≤ 15 s with a real image.

    python bench/app_latency.py                              # 256², the model's default sampler, both before images
    python bench/app_latency.py --size 512 --content bank diffusion   # both content sources (issue 27: ≤ 10 s)
    python bench/app_latency.py --size 512 --steps default old   # the app's default vs the old one
    python bench/app_latency.py --size 512x400 --before real --image TILE.jpg --map TILE.png
    python bench/app_latency.py --model DIR --cd-model DIR --threads 2

Missing weights are replaced by untrained models of the default architectures (`cpu` preset generator,
ChangerEx-R18 CD model): the time is the same, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from changeanywhere import demo
from changeanywhere.cd import build_cd_model
from changeanywhere.examples import make_example_map, real_examples
from changeanywhere.generator.presets import build_pipeline
from changeanywhere.generator.schedulers import SCHEDULERS, use_scheduler
from changeanywhere.maps import read_map
from changeanywhere.runtime import resolve_backend

TARGET_S = {"synthesized": 10.0, "real": 15.0}


def parse_size(text: str) -> tuple[int, int]:
    """'512' -> (512, 512); '512x400' -> (width 512, height 400)."""
    w, _, h = text.lower().partition("x")
    return int(w), int(h or w)


def synthesized_before(class_set, width: int, height: int) -> tuple[np.ndarray, None, str]:
    """The procedural example map (seed 0), cropped to width × height."""
    return make_example_map(class_set, size=max(width, height), seed=0)[:height, :width], None, "procedural map"


def real_before(class_set, width: int, height: int, image: Path | None, label: Path | None, multiple: int):
    """(map, real image, description): `image`/`label` fitted as the app fits uploads, else the real example
    crops of `class_set` tiled as needed and cropped to width × height."""
    if image is not None and label is not None:
        m, img, _ = demo.fit_to_model(read_map(label, class_set), demo.read_before_image(image), multiple)
        return m, img, f"{image.name} fitted to {m.shape[1]}×{m.shape[0]}"
    examples = [e for e in real_examples() if e.class_set == class_set.name]
    if not examples:
        raise SystemExit(f"no real examples of {class_set.name} in assets/examples: pass --image and --map")
    maps = [read_map(e.map, class_set) for e in examples]
    images = [demo.read_before_image(e.image) for e in examples]
    side = maps[0].shape[0]
    rows, cols = -(-height // side), -(-width // side)
    pick = [[(r * cols + c) % len(maps) for c in range(cols)] for r in range(rows)]
    m = np.block([[maps[k] for k in row] for row in pick])[:height, :width]
    img = np.concatenate([np.concatenate([images[k] for k in row], 1) for row in pick], 0)[:height, :width]
    what = examples[0].name if rows * cols == 1 else f"{rows}×{cols} mosaic of the {len(maps)} real example crops"
    return np.ascontiguousarray(m), np.ascontiguousarray(img), what


OLD_DEFAULT = ("ddim", 20, "torch", (0.0, 1.0))  # the app until session 4: DDIM 20, guided on every step, PyTorch


def parse_sampler(spec: str, default_steps: int, backend: str) -> tuple[str | None, int, str, tuple | None]:
    """'default' -> (None, the model's steps, backend, None = the model's guidance interval); '12@onnx' -> (None,
    12, 'onnx', None); 'ddim:20' -> ('ddim', 20, backend, None); 'old' -> the app's old default, OLD_DEFAULT."""
    if spec == "old":
        return OLD_DEFAULT
    spec, _, named = spec.partition("@")
    backend = named or backend
    if backend not in ("torch", "onnx"):
        raise SystemExit(f"unknown UNet backend {backend!r}: torch or onnx")
    if spec == "default":
        return None, default_steps, backend, None
    name, _, steps = spec.rpartition(":")
    if name and name not in SCHEDULERS:
        raise SystemExit(f"unknown scheduler {name!r} in {spec!r}: choose one of {', '.join(SCHEDULERS)}")
    return name or None, int(steps), backend, None


def three_events(before_map: np.ndarray, class_set):
    """Three random change events, from the first seed (0, 1, ...) whose events change something."""
    for seed in range(100):
        change = demo.make_after_map(before_map, class_set, num_events=3, seed=seed)
        if change.change_mask.any():
            return change
    raise SystemExit("no random event changes this map: try a larger --size")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="generator folder or Hub repo id (default: the embedded one)")
    p.add_argument("--cd-model", help="CD model folder or Hub repo id (default: the embedded one)")
    p.add_argument("--size", type=parse_size, default=(256, 256), help="side, or WIDTHxHEIGHT (e.g. 512x400)")
    p.add_argument("--steps", nargs="+", default=["default"], metavar="SAMPLER",
                   help="samplers: default, N, NAME:N or old; ratios are given to the first (default: default)")
    p.add_argument("--before", choices=["synthesized", "real", "both"], default="both")
    p.add_argument("--image", type=Path, help="a real before image (with --map) instead of the example crops")
    p.add_argument("--map", type=Path, help="the land-cover map of --image")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the model's; stand-in: 2)")
    p.add_argument("--content", nargs="+", choices=["bank", "diffusion"], default=["bank"],
                   help="what fills the change (the app's content control; default bank, the app's default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="backend of samplers without @BACKEND (auto: the app's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    models = demo.load_models(args.model, args.cd_model, device=args.device, backend="torch")
    stand_ins = []
    if models.pipe is None:
        torch.manual_seed(0)
        models.pipe = build_pipeline(models.class_set, preset="cpu").to(args.device)
        models.pipe.register_to_config(default_guidance_scale=2.0)  # the trained CPU recipe's guidance
        models.pipe.set_progress_bar_config(disable=True)
        stand_ins.append("generator: untrained `cpu` preset, guidance 2 (no weights found)")
    if models.cd_model is None:
        torch.manual_seed(0)
        models.cd_model = build_cd_model("changerex-r18").to(args.device).eval()
        stand_ins.append("CD: untrained changerex-r18 (no weights found)")
    own_scheduler = models.pipe.scheduler
    own_interval = models.pipe.resolve()[0].guidance_interval
    backend = resolve_backend(args.backend, args.device)
    samplers = {spec: parse_sampler(spec, models.default_steps, backend) for spec in args.steps}
    forwards = {"torch": None}
    if any(b == "onnx" for _, _, b, _ in samplers.values()):
        t0 = time.perf_counter()
        models.pipe.set_backend("onnx")
        forwards["onnx"] = models.pipe._onnx
        print(f"ONNX networks ready in {time.perf_counter() - t0:.1f} s ({len(forwards['onnx'].paths)} files)")

    width, height = args.size
    cs = models.class_set
    inputs = {}
    if args.before in ("synthesized", "both"):
        inputs["synthesized"] = synthesized_before(cs, width, height)
    if args.before in ("real", "both"):
        inputs["real"] = real_before(cs, width, height, args.image, args.map, models.pipe.size_multiple)
    changes = {k: three_events(m, cs) for k, (m, _, _) in inputs.items()}
    configs = [(kind, spec, content) for kind in inputs for spec in args.steps for content in args.content]

    def call(kind: str, spec: str, content: str, seed: int, tmp: str) -> dict[str, float]:
        before_map, image, _ = inputs[kind]
        scheduler, steps, backend, interval = samplers[spec]
        models.pipe.scheduler = own_scheduler
        use_scheduler(models.pipe, scheduler)
        models.pipe._onnx = forwards[backend]
        models.pipe.register_to_config(default_guidance_interval=list(interval or own_interval))
        t0 = time.perf_counter()
        gen = demo.generate_variants(models, before_map, changes[kind], image, seed=seed, num_inference_steps=steps,
                            guidance_scale=args.guidance, content=content)
        t1 = time.perf_counter()
        demo.prediction_overlay(gen.samples[0])
        demo.write_sample_zip(gen, cs, tmp)
        return {**gen.timings, "packaging": time.perf_counter() - t1, "total": time.perf_counter() - t0,
                "guidance_scale": gen.settings["sampler"]["guidance_scale"]}

    runs: dict[tuple[str, str, str], list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        call(*configs[0], 0, tmp)  # warm-up
        for r in range(args.repeats):
            for kind, spec, content in configs:
                runs[kind, spec, content].append(call(kind, spec, content, r, tmp))

    results = []
    for (kind, spec, content), rs in runs.items():
        median = {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0] if k != "guidance_scale"}
        m = inputs[kind][0]
        base = statistics.median(r["total"] for r in runs[kind, args.steps[0], content])
        results.append({
            "before": kind, "before_source": inputs[kind][2], "width": int(m.shape[1]), "height": int(m.shape[0]),
            "content": content, "sampler": spec, "scheduler": samplers[spec][0] or type(own_scheduler).__name__,
            "steps": samplers[spec][1], "backend": samplers[spec][2],
            "guidance_interval": list(samplers[spec][3] or own_interval),
            "guidance_scale": rs[0]["guidance_scale"], "median_s": median,
            "ratio_to_first_sampler": round(statistics.median(r["total"] for r in rs) / base, 3),
            "target_s": TARGET_S[kind],
            "within_target": median["total"] <= TARGET_S[kind],
        })
    common = {
        "threads": torch.get_num_threads(), "device": args.device, "repeats": args.repeats,
        "model": models.model_source if "generator" not in " ".join(stand_ins) else "untrained cpu preset",
        "stand_ins": stand_ins,
    }
    print(f"{common['threads']} thread(s), median of {args.repeats} interleaved calls, guidance "
          f"{results[0]['guidance_scale']}; ratios to the sampler {args.steps[0]}")
    print("| before image | content | size | scheduler | steps | guided | backend | total s | synthesis | change | CD "
          "| packaging | ratio | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["median_s"]
        print(f"| {r['before']} ({r['before_source']}) | {r['content']} | {r['width']}×{r['height']} "
              f"| {r['scheduler']} "
              f"| {r['steps']} | {r['guidance_interval'][0]:g}–{r['guidance_interval'][1]:g} | {r['backend']} "
              f"| {s['total']} "
              f"| {s['synthesis']} | {s['change']} | {s['cd']} | {s['packaging']} | {r['ratio_to_first_sampler']:.2f} "
              f"| ≤ {r['target_s']:g} s: {'yes' if r['within_target'] else 'no'} |")
    for s in stand_ins:
        print(f"  stand-in: {s}")
    print(json.dumps({**common, "results": results}))


if __name__ == "__main__":
    main()

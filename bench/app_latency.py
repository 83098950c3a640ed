"""Latency of the app's Generate button: from the click to every output, for a 256² pair at default settings.

Runs what the `/generate` handler runs (after map from the edit, `demo.generate`: before-image synthesis, the
after image, the zero-shot CD prediction; then the overlay and the zip) on the procedural example map with
three random change events, after one warm-up call, and prints the median of `--repeats` calls split into
synthesis, change, CD and packaging. Target: ≤ 15 s on a 2-core CPU.

    python bench/app_latency.py                         # embedded default generator and CD model
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

import torch

from changeanywhere import demo
from changeanywhere.cd import build_cd_model
from changeanywhere.examples import make_example_map
from changeanywhere.generator.presets import build_pipeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="generator folder or Hub repo id (default: the embedded one)")
    p.add_argument("--cd-model", help="CD model folder or Hub repo id (default: the embedded one)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the model's; stand-in: 2)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    models = demo.load_models(args.model, args.cd_model, device=args.device)
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

    before = make_example_map(models.class_set, size=args.size, seed=0)  # a map alone: the before image is synthesized
    change = demo.make_after_map(before, models.class_set, num_events=3, seed=0)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats + 1):  # the first call warms up
            t0 = time.perf_counter()
            gen = demo.generate(models, before, change, seed=i, num_inference_steps=args.steps,
                                guidance_scale=args.guidance)
            t1 = time.perf_counter()
            demo.prediction_overlay(gen.samples[0])
            demo.write_sample_zip(gen, models.class_set, tmp)
            t2 = time.perf_counter()
            if i:
                runs.append({**gen.timings, "packaging": t2 - t1, "total": t2 - t0})

    median = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    result = {
        "size": args.size,
        "steps": args.steps,
        "guidance_scale": gen.settings["guidance_scale"],
        "threads": torch.get_num_threads(),
        "device": args.device,
        "repeats": args.repeats,
        "median_s": median,
        "target_s": 15.0,
        "within_target": median["total"] <= 15.0,
        "model": models.model_source if "generator" not in " ".join(stand_ins) else "untrained cpu preset",
        "stand_ins": stand_ins,
    }
    print(
        f"{args.size}² pair, {args.steps} steps, guidance {result['guidance_scale']}, "
        f"{result['threads']} thread(s): total {median['total']} s (synthesis {median['synthesis']}, change "
        f"{median['change']}, CD {median['cd']}, packaging {median['packaging']}); target ≤ 15 s"
    )
    for s in stand_ins:
        print(f"  stand-in: {s}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

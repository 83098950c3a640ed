"""Export a trained pipeline as the embedded default: fp16 weights, the measured guidance, a resumable state
and a sample grid for the model card.

    python scripts/export_default.py --pipeline runs/default/diffusion/pipeline \
        --checkpoint runs/default/diffusion/checkpoint-3000 --guidance-scale 5 --scheduler dpm++2m-sde --steps 8 \
        --out checkpoints/changeanywhere-dubai-256

Writes OUT/ (diffusers layout, fp16 safetensors), OUT/samples.png (val tiles: real A | after map | B
non-change off | B non-change on | map | synthesized from the map) and OUT-resume/ (the training state in fp16/bf16:
`train-diffusion --resume` it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from changeanywhere import ChangeAnywherePipeline, simulate_changes
from changeanywhere.data import find_pairs, load_pairs, tiles
from changeanywhere.generator.presets import build_scheduler
from changeanywhere.generator.schedulers import SCHEDULERS, make_scheduler
from changeanywhere.image_utils import tensor_to_uint8
from changeanywhere.pairs import PairSettings
from changeanywhere.training.checkpoint import export_compact_state
from changeanywhere.training.common import save_grid
from changeanywhere.training.diffusion import diverse_tiles, pipeline_from_checkpoint


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", type=Path, default=None,
                   help="trained pipeline folder (default: the EMA weights of --checkpoint)")
    p.add_argument("--checkpoint", type=Path, default=None, help="training checkpoint to ship as OUT-resume/")
    p.add_argument("--guidance-scale", type=float, required=True, help="the default measured best")
    p.add_argument("--clip-sample-range", type=float, default=2.0, help="x0 clipping of the DDIM sampler (0: off)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data/dubai-landcover"))
    p.add_argument("--scheduler", default="dpm++2m-sde", choices=list(SCHEDULERS),
                   help="the default solver (bench/steps_curve.py picks it; default dpm++2m-sde)")
    p.add_argument("--steps", type=int, default=8, help="its default steps, also used for the sample grid")
    p.add_argument("--timestep-spacing", default="leading", choices=("leading", "linspace", "trailing"),
                   help="the solver's timestep spacing (default leading: what the steps curve measured)")
    p.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("START", "STOP"),
                   help="share of the steps guided (default: keep the pipeline's; the embedded model's is chosen "
                   "with eval-generator --guidance-interval, see its card)")
    p.add_argument("--no-resume", action="store_true", help="do not write OUT-resume/ (e.g. for a quick look)")
    args = p.parse_args()

    if args.pipeline is None and args.checkpoint is None:
        p.error("give --pipeline or --checkpoint")
    if args.pipeline is not None:
        pipe = ChangeAnywherePipeline.from_pretrained(args.pipeline)
    else:
        pipe = pipeline_from_checkpoint(args.checkpoint)
    pipe.register_to_config(default_guidance_scale=float(args.guidance_scale),
                            default_num_inference_steps=int(args.steps))
    if args.guidance_interval is not None:
        interval = pipe.resolve(guidance_interval=args.guidance_interval)[0].guidance_interval  # checked there
        pipe.register_to_config(default_guidance_interval=list(interval))
    # same schedule and prediction type; the sampling-time x0 clipping (DDIM) and the solver are set here
    base = build_scheduler(args.clip_sample_range or None, pipe.scheduler.config.prediction_type)
    pipe.scheduler = make_scheduler(args.scheduler, base.config)
    pipe.scheduler.register_to_config(timestep_spacing=args.timestep_spacing)
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.to(dtype=torch.float16).save_pretrained(tmp, safe_serialization=True)
    if args.out.exists():
        for keep in ("README.md",):  # the hand-written model card survives a re-export
            if (args.out / keep).exists():
                shutil.copy2(args.out / keep, tmp / keep)
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    if args.checkpoint is not None and not args.no_resume:
        export_compact_state(args.checkpoint, args.out.with_name(args.out.name + "-resume"))

    pipe = ChangeAnywherePipeline.from_pretrained(args.out, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    cs = pipe.class_set
    val = load_pairs(find_pairs(args.data, split="val"), cs)
    items = diverse_tiles(tiles(val, 256), 4)
    maps = [m for _, m in items]
    real = [im for im, _ in items]
    synth = pipe.synthesize(maps, num_inference_steps=args.steps, seed=list(range(4)), output_type="pt").images
    afters = [simulate_changes(m, cs, seed=i, num_events=(3, 6)).after for i, m in enumerate(maps)]
    kw = dict(num_inference_steps=args.steps, seed=list(range(4)), output_type="pt")
    changed = pipe.change(real, maps, afters, nonchange=0, **kw)
    drifted = pipe.change(real, maps, afters, nonchange=PairSettings().nonchange, **kw)
    synth, changed, drifted = (tensor_to_uint8(t) for t in (synth, changed.images, drifted.images))
    rows = [
        [r, cs.indices_to_colors(a), c, d, cs.indices_to_colors(m), s]
        for m, r, s, a, c, d in zip(maps, real, synth, afters, changed, drifted, strict=True)
    ]
    save_grid(rows, args.out / "samples.png")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"exported {args.out} ({size / 1e6:.1f} MB, guidance {args.guidance_scale}); grid {args.out / 'samples.png'}")
    print("change pixels per row:", [int(np.sum(a != m)) for a, m in zip(afters, maps, strict=True)])


if __name__ == "__main__":
    main()

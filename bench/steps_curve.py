"""Quality vs denoising steps for several diffusers schedulers (issue: fast sampling).

For each scheduler (DDIM, DPM-Solver++ 2M, UniPC) and step count, runs `eval-generator`'s measurements on a
fixed subset of val tiles and prints fidelity ratio, unchanged-region SSIM (change mode) and the accuracy
inside the changed pixels, next to DDIM at the reference step count (the paper's 200). The default step
count to pick is the fewest within 2 % of the reference on every figure. Writes a JSON table and a PNG plot.

Usage:
    python bench/steps_curve.py                                   # embedded model, 12 val tiles
    python bench/steps_curve.py --tiles 8 --steps 8 12 20 --reference-steps 50 --out /tmp/curve
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import add_data_args, data_missing, load_cpu_pipeline

from changeanywhere.generator.schedulers import SCHEDULERS, make_scheduler

FIGURES = ("fidelity_ratio", "unchanged_ssim", "changed_accuracy")
SATURATION_GATE = 0.8  # generated ÷ real colour spread, the generator v2 gate every default must keep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(p, tiles=12)
    p.add_argument("--schedulers", nargs="+", default=["ddim", "dpm++2m", "unipc"], choices=list(SCHEDULERS))
    p.add_argument("--steps", type=int, nargs="+", default=[8, 12, 20, 30, 50])
    p.add_argument("--reference-steps", type=int, default=200, help="DDIM steps of the reference (the paper's)")
    p.add_argument("--out", type=Path, default=Path("runs/steps_curve"))
    p.add_argument("--resume", type=Path, default=None,
                   help="an earlier steps_curve.json: reuse its rows for the same tiles instead of re-running them "
                   "(and keep its other step counts of --schedulers in the table)")
    args = p.parse_args(argv)
    if data_missing(args.data):
        return 2

    from changeanywhere.fidelity import evaluate_generator, select_tiles
    from changeanywhere.runtime import DEFAULT_SEGMENTER
    from changeanywhere.segmenter import load_segmenter

    pipe = load_cpu_pipeline(args.model)
    base = pipe.scheduler.config
    seg = load_segmenter(str(DEFAULT_SEGMENTER))
    tiles = select_tiles(str(args.data), pipe.class_set, "val", 256, args.tiles)
    runs = [("ddim", args.reference_steps)] + [(s, n) for s in args.schedulers for n in args.steps]
    old = _reusable_rows(args.resume, args.tiles)
    runs += sorted(k for k in old if k[0] in args.schedulers and k not in runs)  # earlier step counts stay in
    rows: list[dict] = []
    args.out.mkdir(parents=True, exist_ok=True)
    for name, steps in runs:
        hit = old.get((name, steps))  # rows from before the saturation column are reused without it
        if hit is not None and all(k in hit for k in FIGURES):
            rows.append(hit)
            print(json.dumps(rows[-1]) + "  (reused)", flush=True)
            continue
        pipe.scheduler = make_scheduler(name, base)
        r = evaluate_generator(pipe, seg, tiles, pipe.class_set, num_inference_steps=steps)
        rows.append({"scheduler": name, "steps": steps, **{k: r[k] for k in (*FIGURES, "generated_saturation_ratio")},
                     "wall_s": r["wall_s"], "tiles": args.tiles})
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "steps_curve.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")  # survives a kill
    ref = rows[0]
    within = [r for r in rows[1:] if all(r[k] >= 0.98 * ref[k] for k in FIGURES)
              and r.get("generated_saturation_ratio", 0.0) >= SATURATION_GATE]  # unmeasured: not eligible
    best = min(within, key=lambda r: (r["steps"], r["wall_s"]), default=None)
    print(f"reference DDIM {ref['steps']}: " + ", ".join(f"{k} {ref[k]}" for k in FIGURES))
    choice = f"{best['scheduler']} {best['steps']}" if best else "none"
    print(f"fewest steps within 2 % on every figure and saturation >= {SATURATION_GATE}: {choice}")
    (args.out / "steps_curve.json").write_text(json.dumps({"rows": rows, "best": best}, indent=2) + "\n")
    try:
        _plot(rows, args.out / "steps_curve.png")
        print(f"wrote {args.out / 'steps_curve.json'} and {args.out / 'steps_curve.png'}")
    except ImportError:
        print(f"wrote {args.out / 'steps_curve.json'} (no plot: pip install -e '.[bench]' for matplotlib)")
    return 0


def _reusable_rows(path: Path | None, tiles: int) -> dict[tuple[str, int], dict]:
    """Rows of an earlier run on the same number of tiles, by (scheduler, steps); rows without a tile count
    predate the field and are taken as the same run (the committed table used --tiles 8)."""
    if path is None or not path.is_file():
        return {}
    rows = json.loads(path.read_text())["rows"]
    return {(r["scheduler"], r["steps"]): r for r in rows if r.get("tiles", tiles) == tiles}


def _plot(rows: list[dict], path: Path) -> None:
    """One panel per figure: value vs steps per scheduler, the DDIM reference as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = rows[0]
    keys = (*FIGURES, "generated_saturation_ratio")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(axes, keys, strict=True):
        for k, name in enumerate(dict.fromkeys(r["scheduler"] for r in rows[1:])):
            pts = sorted((r["steps"], r[key]) for r in rows[1:] if r["scheduler"] == name and key in r)
            if pts:  # one colour per scheduler in every panel
                ax.plot(*zip(*pts, strict=True), marker="o", label=name, color=f"C{k}")
        if key in ref:
            ax.axhline(ref[key], ls="--", c="grey", label=f"DDIM {ref['steps']}")
        else:
            ax.axhline(SATURATION_GATE, ls=":", c="red", label="gate")
        ax.set_xscale("log")
        ticks = sorted({r["steps"] for r in rows[1:]})
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("steps")
        ax.set_title(key)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())

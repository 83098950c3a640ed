"""Zero-shot change detection: train a CD model only on generated pairs, test it on real LEVIR / DSIFN pairs.

Stages (each resumable: rerun the same command to continue; finished work is skipped). `--stages` runs a
subset; only `eval` reads the real sets, so generation, training and checkpoint selection cannot see them.

1. generate  `changeanywhere generate --drift 0` on the Dubai *train* split (the default generator, or
             --generator) -> WORK/gen-train; with --val-num also WORK/gen-val from the Dubai *val* split
             (synthetic validation only: no target-domain data is ever used)
2. derive    the arms that share those samples: WORK/drift-* (the generator's seeded radiometric drift applied
             to B, `changeanywhere.derived.drifted`), WORK/naive-* (B by copy-paste of same-class texture + colour
             jitter, `changeanywhere.derived.naive`), and subsets of the first N pairs for the pair-count curve
3. train     `changeanywhere train-cd` per arm (naive, ours = drift off, ours-drift = drift on), same model,
             steps, augmentations and seed; best checkpoint by F1 on the arm's own synthetic val split
4. eval      `changeanywhere eval-cd` (argmax: the threshold is fixed, never tuned) of every model, CVA +
             Otsu, and the all-change floor on ../shared/data/cd-real/{levir,dsifn}-samples, each and pooled
5. report    experiments/results/zero_shot.{md,json} and zero_shot_curve.png; with --update-results the block
             between `<!-- zero-shot:start -->` and `<!-- zero-shot:end -->` in docs/results.md; with --export the
             `--export-arm` model (chosen in advance, not by its real-set score) goes to
             checkpoints/cd-changeanywhere-dubai with a model card.

The full CPU run:  python experiments/zero_shot.py --num 2000 --jobs 2 --export --update-results
(~1 h 20 min of generation and 9 models × ~50 min of training, three at a time on 2 cores; curve models can be
trained while generation goes on: `--stages derive train --only naive-250 ours-drift-250` once 250 pairs exist)
A smoke test:      python experiments/zero_shot.py --num 8 --val-num 4 --size 64 --gen-steps 2 --steps 2 \
                       --variant tiny --batch-size 2 --curve 4 --generator TINY_PIPELINE --work /tmp/zs \
                       --results /tmp/zs/results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REAL_SETS = {"levir": "levir-samples", "dsifn": "dsifn-samples"}
METRICS = ("precision", "recall", "f1", "iou", "oa", "kappa")
EXPORT_DIR = ROOT / "checkpoints" / "cd-changeanywhere-dubai"
RESULTS_START, RESULTS_END = "<!-- zero-shot:start -->", "<!-- zero-shot:end -->"
STAGES = ("generate", "derive", "train", "eval", "report")
# arm -> (train folder prefix under WORK, what it is)
ARMS = {
    "naive": ("naive", "naive pairs (copy-paste, no diffusion)"),
    "ours": ("gen", "ChangeAnywhere pairs, drift off"),
    "ours-drift": ("drift", "ChangeAnywhere pairs, drift on"),
    # opt-in (--arms): the paper's latent mixing, where unchanged areas are repainted for the last (1 - s) of
    # the steps (s ~ U(0.7, 1)) and so vary in texture; the default generator anchors them to the end
    "paper": ("paper", "ChangeAnywhere pairs, the paper's mixing (content scale 0.7–1, latent blend), drift off"),
    "paper-drift": ("paper-drift", "ChangeAnywhere pairs, the paper's mixing, drift on"),
}
PAPER_MIXING = ["--content-scale", "0.7:1", "--blend", "latent"]


def cli(*argv: str, log: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run one `changeanywhere` sub-command in a fresh process (its own accelerate state), stop on failure."""
    cmd = [sys.executable, "-m", "changeanywhere.cli", *argv]
    print("$ " + " ".join(cmd), flush=True)
    env = {**os.environ, **(env or {})}
    if log is None:
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            f.flush()
        if proc.wait():
            raise SystemExit(f"command failed (exit {proc.returncode}): {' '.join(cmd)}; log in {log}")


def generated_count(folder: Path) -> int:
    meta = folder / "meta"
    return len(list(meta.glob("*.json"))) if meta.is_dir() else 0


def pair_count(folder: Path) -> int:
    return len(list((folder / "B").glob("*.png"))) if (folder / "B").is_dir() else 0


def stage_generate(args: argparse.Namespace, split: str, out: Path, num: int, seed: int,
                   extra: list[str] | None = None) -> None:
    if generated_count(out) >= num and (out / "manifest.jsonl").is_file():
        print(f"[generate] {out}: {num} pairs already there", flush=True)
        return
    argv = ["generate", "--images", str(args.dubai / "images"), "--labels", str(args.dubai / "labels"),
            "--classes", "dubai-landcover", "--out", str(out), "--num", str(num), "--size", str(args.size),
            "--seed", str(seed), "--split", split, "--batch-size", str(args.gen_batch_size), "--device",
            args.device, "--drift", "0"]
    if args.gen_steps:
        argv += ["--num-inference-steps", str(args.gen_steps)]
    if args.generator:
        argv += ["--model", args.generator]
    argv += extra or []
    log = args.work / "logs" / f"generate-{out.name}.log"
    print(f"[generate] {num} {split} pairs -> {out} (log {log})", flush=True)
    cli(*argv, log=log)


def stage_derive(args: argparse.Namespace, split: str) -> None:
    """The drift and naive arms of `gen-{split}`, and (train split) the subsets of the pair-count curve."""
    from changeanywhere.derived.naive import build_naive_set

    gen = args.work / f"gen-{split}"
    n = pair_count(gen)
    drift, naive = args.work / f"drift-{split}", args.work / f"naive-{split}"
    derive_drift(args, gen, drift)
    if (naive / "naive.json").is_file() and pair_count(naive) >= n:
        print(f"[derive] {naive}: already built", flush=True)
    else:
        k = build_naive_set(gen, naive, "dubai-landcover", seed=args.seed, progress=False)
        print(f"[derive] {k} naive pairs -> {naive}", flush=True)
    if uses_paper(args):
        derive_drift(args, args.work / f"paper-{split}", args.work / f"paper-drift-{split}")
    if split == "train":
        for arm in args.curve_arms:
            for count in args.curve:
                if count < n:
                    make_subset(args.work / f"{ARMS[arm][0]}-train", args.work / "subsets" / f"{arm}-{count}", count)


def derive_drift(args: argparse.Namespace, src: Path, dst: Path) -> None:
    """`dst`: the pairs of `src` with the generator's seeded drift on B (skipped when already built)."""
    from changeanywhere.derived.drifted import build_drifted_set

    if (dst / "drift.jsonl").is_file() and pair_count(dst) >= pair_count(src):
        print(f"[derive] {dst}: already built", flush=True)
    else:
        print(f"[derive] {build_drifted_set(src, dst, seed=args.seed, progress=False)} drifted pairs -> {dst}")


def uses_paper(args: argparse.Namespace) -> bool:
    """Whether an arm with the paper's mixing is asked for (its pairs are generated only then)."""
    return any(ARMS[a][0].startswith("paper") for a in args.arms)  # curve arms are a subset of --arms


def make_subset(src: Path, dst: Path, count: int) -> None:
    """`dst/A, B, label` linking the first `count` pairs of `src` (generation order: sample index)."""
    from changeanywhere.cd.data import find_cd_pairs

    if pair_count(dst) == count:
        return
    shutil.rmtree(dst, ignore_errors=True)
    for d in ("A", "B", "label"):
        (dst / d).mkdir(parents=True)
    for item in find_cd_pairs(src)[:count]:
        for d, f in (("A", item.a), ("B", item.b), ("label", item.label)):
            (dst / d / f.name).symlink_to(f.resolve())


def train_jobs(args: argparse.Namespace) -> list[tuple[str, Path, Path | None, Path]]:
    """(name, train folder, val folder, output) of every model: each arm on all pairs, then the curve."""
    jobs = []
    for arm in args.arms:
        prefix = ARMS[arm][0]
        val = args.work / f"{prefix}-val" if args.val_num else None
        jobs.append((arm, args.work / f"{prefix}-train", val, args.work / f"cd-{arm}"))
    for arm in args.curve_arms:
        prefix = ARMS[arm][0]
        val = args.work / f"{prefix}-val" if args.val_num else None
        for count in args.curve:
            if count < args.num:
                jobs.append((f"{arm}-{count}", args.work / "subsets" / f"{arm}-{count}", val,
                             args.work / f"cd-{arm}-{count}"))
    return jobs


def model_dir(args: argparse.Namespace, out: Path) -> Path:
    """The folder a trained model is evaluated from: OUT/best (chosen on synthetic val) or OUT/final."""
    if args.val_num and args.select == "best" and (out / "best").is_dir():
        return out / "best"
    return out / "final"


def trained(args: argparse.Namespace, out: Path) -> bool:
    """Whether the model in `out` finished its --steps (a model still training is never evaluated)."""
    done = out / "final" / "training.json"
    return done.is_file() and json.loads(done.read_text())["step"] >= args.steps


def stage_train(args: argparse.Namespace, data: Path, val: Path | None, out: Path, threads: int) -> Path:
    if trained(args, out):
        print(f"[train] {out}: already trained to {args.steps} steps", flush=True)
    else:
        argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", args.variant,
                "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--crop-size",
                str(min(args.size, args.crop_size)), "--lr", str(args.lr), "--seed", str(args.seed),
                "--checkpointing-steps", str(max(1, min(250, args.steps))), "--log-steps",
                str(max(1, min(50, args.steps)))]
        if val is not None:
            argv += ["--val", str(val), "--val-steps", str(max(1, min(args.val_steps, args.steps)))]
        log = args.work / "logs" / f"train-{out.name}.log"
        print(f"[train] {data} -> {out} ({threads} thread(s), log {log})", flush=True)
        cli(*argv, log=log, env={"OMP_NUM_THREADS": str(threads)})
    return model_dir(args, out)


def stage_eval(args: argparse.Namespace, name: str, extra: list[str], model: Path | None = None) -> dict[str, Any]:
    """eval-cd on the real sets; a result newer than its model's weights is reused (nothing to choose here:
    the model and the argmax are fixed before this stage)."""
    js = args.work / "eval" / f"{name}.json"
    weights = model / "model.safetensors" if model is not None else None
    if js.is_file() and weights is not None and js.stat().st_mtime > weights.stat().st_mtime:
        print(f"[eval] {name}: {js} is newer than {weights}; reused", flush=True)
        return json.loads(js.read_text())
    sets = [str(args.real / d) for d in REAL_SETS.values()]
    cli("eval-cd", "--data", *sets, "--json", str(js), "--device", args.device, "--no-progress", *extra,
        log=args.work / "logs" / f"eval-{name}.log")
    return json.loads(js.read_text())


def _row(result: dict[str, Any], key: str = "") -> dict[str, Any]:
    """Per real set and pooled metrics of one eval-cd JSON (key '' = the method's own figures)."""
    out = {}
    for short, folder in REAL_SETS.items():
        r = result["datasets"][folder]
        out[short] = {m: (r[key][m] if key else r[m]) for m in METRICS}
    pooled = result["pooled"]
    out["pooled"] = {m: (pooled[key][m] if key else pooled[m]) for m in METRICS}
    return out


def arm_label(args: argparse.Namespace, arm: str) -> str:
    return f"{args.variant} on {ARMS[arm][1]}"


def make_report(args: argparse.Namespace, evals: dict[str, dict[str, Any]], timings: dict[str, float],
                val_f1: dict[str, float | None]) -> tuple[dict[str, Any], str]:
    rows = {"all-change floor": _row(evals["cva"], "all_change"), "CVA + Otsu": _row(evals["cva"])}
    for arm in args.arms:
        rows[arm_label(args, arm)] = _row(evals[arm])
    checks: dict[str, Any] = {}
    main, naive = rows.get(arm_label(args, args.export_arm)), rows.get(arm_label(args, "naive"))
    for s in ("levir", "dsifn"):
        floor = max(rows["all-change floor"][s]["f1"], rows["CVA + Otsu"][s]["f1"])
        if main is not None:
            checks[f"{s}_margin_over_best_floor"] = round(main[s]["f1"] - floor, 4)
            checks[f"{s}_gate_0.05"] = main[s]["f1"] - floor >= 0.05
            checks[f"{s}_stretch_0.10"] = main[s]["f1"] - floor >= 0.10
            if naive is not None:
                checks[f"{s}_at_least_naive"] = main[s]["f1"] >= naive[s]["f1"]
    curve: dict[str, dict[str, dict[str, float]]] = {}
    for arm in args.curve_arms:
        points = {c: evals.get(f"{arm}-{c}") for c in args.curve if c < args.num}
        points[args.num] = evals.get(arm)
        curve[arm] = {str(c): {s: r[s]["f1"] for s in ("levir", "dsifn", "pooled")}
                      for c, e in sorted(points.items()) if e is not None for r in [_row(e)]}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    data = {"rows": rows, "checks": checks, "curve": curve, "synthetic_val_f1": val_f1, "settings": settings,
            "timings_s": timings, "pairs": {s: evals["cva"]["datasets"][f]["pairs"] for s, f in REAL_SETS.items()}}
    steps = f"{args.gen_steps} steps" if args.gen_steps else "its default steps"
    lines = [
        f"Zero-shot change detection on real pairs (LEVIR: {data['pairs']['levir']} pairs, DSIFN: "
        f"{data['pairs']['dsifn']} pairs, 256²; one confusion matrix per set; change class; argmax, no threshold "
        f"tuning). CD model `{args.variant}` trained {args.steps} steps (batch {args.batch_size}, crop "
        f"{min(args.size, args.crop_size)}) only on {args.num} synthetic pairs from the Dubai train split "
        f"(generator: {args.generator or 'the embedded default'}, {steps}); checkpoint chosen on "
        f"{args.val_num} synthetic val pairs of its own kind. Naive pairs share the events and before images but "
        "build B by copy-paste. `python experiments/zero_shot.py " + " ".join(args.argv) + "`.",
        "",
        "| method | LEVIR F1 | LEVIR IoU | LEVIR kappa | DSIFN F1 | DSIFN IoU | DSIFN kappa | pooled F1 | pooled P "
        "| pooled R | pooled kappa |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lv, ds, po = r["levir"], r["dsifn"], r["pooled"]
        lines.append(f"| {name} | {lv['f1']:.3f} | {lv['iou']:.3f} | {lv['kappa']:.3f} | {ds['f1']:.3f} | "
                     f"{ds['iou']:.3f} | {ds['kappa']:.3f} | {po['f1']:.3f} | {po['precision']:.3f} | "
                     f"{po['recall']:.3f} | {po['kappa']:.3f} |")
    if main is not None:
        lines += ["", f"Gate (the exported model, `{args.export_arm}`, chosen in advance): F1 ≥ best floor + 0.05 "
                  "on each set (stretch + 0.10) and ≥ the naive-pairs model.", ""]
        for s in ("levir", "dsifn"):
            lines.append(f"- {s.upper()}: margin over the best floor {checks[f'{s}_margin_over_best_floor']:+.3f} F1 "
                         f"(gate {'met' if checks[f'{s}_gate_0.05'] else 'not met'}; stretch "
                         f"{'met' if checks[f'{s}_stretch_0.10'] else 'not met'})"
                         + (f"; ≥ naive: {'yes' if checks[f'{s}_at_least_naive'] else 'no'}"
                            if f"{s}_at_least_naive" in checks else ""))
    if curve:
        lines += ["", "F1 vs number of training pairs (LEVIR / DSIFN / pooled):", "",
                  "| pairs | " + " | ".join(args.curve_arms) + " |", "|---|" + "---|" * len(args.curve_arms)]
        counts = sorted({int(c) for arm in curve.values() for c in arm})
        for c in counts:
            cells = []
            for arm in args.curve_arms:
                p = curve[arm].get(str(c))
                cells.append(f"{p['levir']:.3f} / {p['dsifn']:.3f} / {p['pooled']:.3f}" if p else "–")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return data, "\n".join(lines) + "\n"


def plot_curve(data: dict[str, Any], path: Path) -> bool:
    """F1 vs pairs per arm, one panel per real set; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, s in zip(axes, ("levir", "dsifn", "pooled"), strict=True):
        for arm, pts in data["curve"].items():
            xs = sorted(int(c) for c in pts)
            ax.plot(xs, [pts[str(x)][s] for x in xs], marker="o", label=arm)
        floor = max(data["rows"]["all-change floor"][s]["f1"], data["rows"]["CVA + Otsu"][s]["f1"])
        ax.axhline(floor, ls="--", c="grey", label="best floor")
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_title(f"{s} F1")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def update_results(table: str) -> bool:
    """Replace the zero-shot block of docs/results.md with `table`; False (saying so) when the markers are gone."""
    results = ROOT / "docs" / "results.md"
    text = results.read_text(encoding="utf-8") if results.is_file() else ""
    if RESULTS_START not in text or RESULTS_END not in text:
        print(f"docs/results.md has no {RESULTS_START} ... {RESULTS_END} block: paste {table[:40]!r}... by hand")
        return False
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    results.write_text(f"{head}{RESULTS_START}\n{table}{RESULTS_END}{tail}", encoding="utf-8")
    return True


def export_model(args: argparse.Namespace, model: Path, data: dict[str, Any]) -> None:
    """Copy the `--export-arm` model (fp16 weights) to checkpoints/cd-changeanywhere-dubai with a card."""
    from safetensors.torch import load_file, save_file

    tmp = EXPORT_DIR.with_name(EXPORT_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(model / "config.json", tmp / "config.json")
    tensors = load_file(model / "model.safetensors")
    save_file({k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()},
              tmp / "model.safetensors")
    r = data["rows"][arm_label(args, args.export_arm)]
    steps = f"{args.gen_steps} steps" if args.gen_steps else "its default steps"
    card = [
        "---", "library_name: changeanywhere", "tags:", "- change-detection", "- remote-sensing",
        "- synthetic-data", "---", "",
        "# cd-changeanywhere-dubai: zero-shot change detection trained on ChangeAnywhere pairs", "",
        f"`{args.variant}` (`changeanywhere.cd.CDModel`, fp16 weights) trained **only on synthetic pairs**: "
        f"{args.num} pairs ({ARMS[args.export_arm][1]}) generated by `changeanywhere generate` "
        f"({args.generator or 'the embedded default generator'}, {steps}, {args.size}² tiles, seed {args.seed}) "
        f"from the Dubai land-cover train split. {args.steps} steps at batch {args.batch_size}, AdamW lr {args.lr}, "
        "cosine, cross-entropy with OHEM; bi-temporal augmentations (dihedral, scale, misregistration, A/B swap, "
        f"per-date colour/gamma/blur/noise); checkpoint chosen on {args.val_num} synthetic val pairs. No real "
        "change pair was seen in training or selection; prediction is argmax (no tuned threshold).",
        "", "Zero-shot figures (change class, one confusion matrix per set):", "",
        "| set | precision | recall | F1 | IoU | OA | kappa |", "|---|---|---|---|---|---|---|",
    ]
    for s in ("levir", "dsifn", "pooled"):
        m = r[s]
        card.append(f"| {s} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['iou']:.3f} | "
                    f"{m['oa']:.3f} | {m['kappa']:.3f} |")
    floors = data["rows"]
    card += ["", "Floors on the same sets (F1): all-change LEVIR "
             f"{floors['all-change floor']['levir']['f1']:.3f}, DSIFN {floors['all-change floor']['dsifn']['f1']:.3f}; "
             f"CVA + Otsu LEVIR {floors['CVA + Otsu']['levir']['f1']:.3f}, DSIFN "
             f"{floors['CVA + Otsu']['dsifn']['f1']:.3f}.",
             "", "Use: `changeanywhere eval-cd --data DIR` (the default model) or "
             "`changeanywhere.cd.predict(load_cd_model(), before, after)`.",
             "Reproduce: `python experiments/zero_shot.py " + " ".join(args.argv) + "`.", ""]
    (tmp / "README.md").write_text("\n".join(card), encoding="utf-8")
    (tmp / "zero_shot.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if EXPORT_DIR.exists():
        shutil.rmtree(EXPORT_DIR)
    tmp.rename(EXPORT_DIR)
    print(f"[export] {model} -> {EXPORT_DIR}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (default all)")
    p.add_argument("--num", type=int, default=2000, help="synthetic training pairs (default 2000)")
    p.add_argument("--val-num", type=int, default=96,
                   help="synthetic val pairs from the Dubai val split, to pick OUT/best (0: the final model)")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=["naive", "ours", "ours-drift"],
                   help="models on all --num pairs (default naive ours ours-drift; paper, paper-drift: opt-in)")
    p.add_argument("--curve", type=int, nargs="*", default=[250, 500, 1000],
                   help="smaller training sets for the pair-count curve (the first N pairs; --num is the last point)")
    p.add_argument("--curve-arms", nargs="*", choices=list(ARMS), default=["naive", "ours-drift"])
    p.add_argument("--steps", type=int, default=3000,
                   help="train-cd steps per model (default 3000, where synthetic val F1 levels off; ~50 min per model "
                        "on one CPU core at crop 128)")
    p.add_argument("--variant", choices=("changerex-r18", "siamdiff", "tiny"), default="siamdiff")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=128, help="training crops (default 128; eval on whole tiles)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-steps", type=int, default=250)
    p.add_argument("--select", choices=("final", "best"), default="best",
                   help="with --val-num: evaluate OUT/best (default) or OUT/final")
    p.add_argument("--only", nargs="+", default=None, metavar="MODEL",
                   help="train only these models (arm names or ARM-COUNT curve points, e.g. naive-250)")
    p.add_argument("--jobs", type=int, default=1, help="models trained at once (threads split between them)")
    p.add_argument("--size", type=int, default=256, help="generated tile size (default 256)")
    p.add_argument("--gen-steps", type=int, default=None, help="generator steps (default: generate's default)")
    p.add_argument("--gen-batch-size", type=int, default=8)
    p.add_argument("--generator", default=None, help="generator pipeline (default: the embedded one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dubai", type=Path, default=SHARED / "dubai-landcover")
    p.add_argument("--real", type=Path, default=SHARED / "cd-real", help="real CD sets (read by `eval` only)")
    p.add_argument("--work", type=Path, default=ROOT / "experiments" / "runs" / "zero_shot",
                   help="generated data, models and logs (large; not committed)")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    p.add_argument("--export", action="store_true", help="copy the --export-arm model to " + str(EXPORT_DIR))
    p.add_argument("--export-arm", choices=list(ARMS), default="ours-drift",
                   help="the arm the gate is judged on and --export ships (fixed in advance; default ours-drift)")
    p.add_argument("--update-results", action="store_true", help="replace the zero-shot block of docs/results.md")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.curve_arms = [a for a in args.curve_arms if a in args.arms]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.dubai / "images").is_dir():
        raise SystemExit(f"Dubai images not found at {args.dubai / 'images'} (the shared data lives beside the "
                         "repository)")
    args.work.mkdir(parents=True, exist_ok=True)
    timings_file = args.work / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.is_file() else {}

    def timed(name: str, fn, *a):
        t0 = time.time()
        out = fn(*a)
        if timings_file.is_file():  # another run of this script (e.g. curve models trained meanwhile) may have written
            timings.update({k: v for k, v in json.loads(timings_file.read_text()).items() if k not in timings})
        took = round(time.time() - t0, 1)
        if took >= 1.0 or name not in timings:  # a stage skipped as done keeps the time it took when it ran
            timings[name] = took
        timings_file.write_text(json.dumps(timings, indent=2) + "\n")
        return out

    w = args.work
    if "generate" in args.stages:  # the small val split first, so that curve models can start early
        if args.val_num:
            timed("generate_val", stage_generate, args, "val", w / "gen-val", args.val_num, args.seed + 1)
        timed("generate_train", stage_generate, args, "train", w / "gen-train", args.num, args.seed)
        if uses_paper(args):  # the same sources, seeds and events; only the mixing differs
            if args.val_num:
                timed("generate_paper_val", stage_generate, args, "val", w / "paper-val", args.val_num,
                      args.seed + 1, PAPER_MIXING)
            timed("generate_paper_train", stage_generate, args, "train", w / "paper-train", args.num, args.seed,
                  PAPER_MIXING)
    if "derive" in args.stages:
        if args.val_num:
            timed("derive_val", stage_derive, args, "val")
        timed("derive_train", stage_derive, args, "train")
    jobs = train_jobs(args)
    if "train" in args.stages:
        todo = [j for j in jobs if not args.only or j[0] in args.only]
        threads = int(os.environ.get("OMP_NUM_THREADS", 0)) or max(1, (os.cpu_count() or 1) // max(1, args.jobs))
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futures = [pool.submit(timed, f"train_{name}", stage_train, args, data, val, out, threads)
                       for name, data, val, out in todo]
            for f in futures:
                f.result()
    if "eval" not in args.stages and "report" not in args.stages:
        return 0
    for name, path in REAL_SETS.items():  # the only stage that reads the real sets
        if not (args.real / path).is_dir():
            raise SystemExit(f"real CD set {name} not found at {args.real / path} (needed by eval only)")
    evals: dict[str, dict[str, Any]] = {}
    val_f1: dict[str, float | None] = {}
    common = ["--batch-size", str(args.batch_size)]
    for name, _, _, out in jobs:
        model = model_dir(args, out)
        if not trained(args, out):
            print(f"[eval] {name}: not trained to {args.steps} steps yet ({out}); skipped", flush=True)
            continue
        evals[name] = timed(f"eval_{name}", stage_eval, args, name, ["--model", str(model), *common], model)
        best = out / "best" / "val_metrics.json"
        val_f1[name] = json.loads(best.read_text())["f1"] if best.is_file() else None
    evals["cva"] = timed("eval_cva", stage_eval, args, "cva", ["--method", "cva"])
    if "report" not in args.stages:
        return 0
    data, table = make_report(args, evals, timings, val_f1)
    data["models"] = {name: str(model_dir(args, out)) for name, _, _, out in jobs}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "zero_shot.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    curve_png = args.results / "zero_shot_curve.png"
    curve_png.unlink(missing_ok=True)  # never leave a plot of an earlier run beside this report
    if data["curve"] and plot_curve(data, curve_png):
        table += "\n![F1 vs training pairs](experiments/results/zero_shot_curve.png)\n"
    (args.results / "zero_shot.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    print(f"wrote {args.results / 'zero_shot.md'} and {args.results / 'zero_shot.json'}")
    if args.update_results:
        update_results(table)
    if args.export:
        if args.export_arm not in evals:
            raise SystemExit(f"--export: the {args.export_arm} model is not trained and evaluated yet")
        export_model(args, model_dir(args, dict((n, o) for n, _, _, o in jobs)[args.export_arm]), data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

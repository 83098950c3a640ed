"""Zero-shot change detection: train a CD model only on generated pairs, test it on real LEVIR / DSIFN pairs.

Stages (each resumable: rerun the same command to continue; finished stages are skipped):

1. generate   `changeanywhere generate` on the Dubai *train* split (the default generator, or --generator)
              -> WORK/gen-train (A/ B/ label/ label_A/ label_B/ ...); with --val-num also WORK/gen-val from
              the Dubai *val* split (synthetic validation only: no target-domain data is ever used)
2. naive      the same events and before images, B built without diffusion (copy-paste of same-class texture
              + colour jitter, `changeanywhere.cd.naive`) -> WORK/naive-train (and WORK/naive-val)
3. train      `changeanywhere train-cd` on each set, same model, steps and seed -> WORK/cd-{diffusion,naive}
4. eval       `changeanywhere eval-cd` of both models, CVA + Otsu, and the all-change floor on
              ../shared/data/cd-real/{levir,dsifn}-samples, each and pooled
5. report     experiments/results/zero_shot.{md,json}; with --update-readme the table replaces the block
              between `<!-- zero-shot:start -->` and `<!-- zero-shot:end -->` in README.md; with --export the
              diffusion-trained model is copied to checkpoints/cd-changeanywhere-dubai with a model card.

The full run (GPU):   python experiments/zero_shot.py --num 2000 --steps 4000 --export --update-readme
A CPU-sized run:      OMP_NUM_THREADS=2 python experiments/zero_shot.py --num 300 --steps 600 --variant tiny
A smoke test:         python experiments/zero_shot.py --num 8 --size 64 --gen-steps 2 --steps 2 --variant tiny \
                          --batch-size 2 --generator TINY_PIPELINE --work /tmp/zs --results /tmp/zs/results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REAL_SETS = {"levir": "levir-samples", "dsifn": "dsifn-samples"}
METRICS = ("precision", "recall", "f1", "iou", "oa", "kappa")
EXPORT_DIR = ROOT / "checkpoints" / "cd-changeanywhere-dubai"
README_START, README_END = "<!-- zero-shot:start -->", "<!-- zero-shot:end -->"


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
            sys.stdout.write(line)
            f.write(line)
        if proc.wait():
            raise SystemExit(f"command failed (exit {proc.returncode}): {' '.join(cmd)}; log in {log}")


def generated_count(folder: Path) -> int:
    meta = folder / "meta"
    return len(list(meta.glob("*.json"))) if meta.is_dir() else 0


def stage_generate(args: argparse.Namespace, split: str, out: Path, num: int, seed: int) -> None:
    if generated_count(out) >= num and (out / "manifest.jsonl").is_file():
        print(f"[generate] {out}: {num} pairs already there", flush=True)
        return
    argv = ["generate", "--images", str(args.dubai / "images"), "--labels", str(args.dubai / "labels"),
            "--classes", "dubai-landcover", "--out", str(out), "--num", str(num), "--size", str(args.size),
            "--seed", str(seed), "--split", split, "--num-inference-steps", str(args.gen_steps),
            "--batch-size", str(args.gen_batch_size), "--device", args.device]
    if args.generator:
        argv += ["--model", args.generator]
    cli(*argv, log=args.work / "logs" / f"generate-{split}.log")


def stage_naive(args: argparse.Namespace, gen: Path, out: Path) -> None:
    from changeanywhere.cd.naive import build_naive_set

    if (out / "naive.json").is_file() and len(list((out / "B").glob("*.png"))) >= generated_count(gen):
        print(f"[naive] {out}: already built", flush=True)
        return
    n = build_naive_set(gen, out, "dubai-landcover", seed=args.seed)
    print(f"[naive] {n} naive pairs -> {out}", flush=True)


def stage_train(args: argparse.Namespace, data: Path, val: Path | None, out: Path) -> Path:
    final = out / "final"
    done = out / "final" / "training.json"
    if done.is_file() and json.loads(done.read_text())["step"] >= args.steps:
        print(f"[train] {out}: already trained to {args.steps} steps", flush=True)
    else:
        argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", args.variant,
                "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--crop-size",
                str(min(args.size, 256)), "--lr", str(args.lr), "--seed", str(args.seed),
                "--checkpointing-steps", str(max(1, min(500, args.steps))), "--log-steps",
                str(max(1, min(50, args.steps)))]
        if val is not None:
            argv += ["--val", str(val), "--val-steps", str(max(1, min(args.val_steps, args.steps)))]
        # with --parallel both models train at once, one thread each (a 2-core machine keeps both cores busy)
        cli(*argv, log=args.work / "logs" / f"train-{out.name}.log",
            env={"OMP_NUM_THREADS": "1"} if args.parallel else None)
    return out / "best" if val is not None and (out / "best").is_dir() and args.select == "best" else final


def stage_eval(args: argparse.Namespace, name: str, extra: list[str]) -> dict[str, Any]:
    js = args.work / "eval" / f"{name}.json"
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


def make_report(args: argparse.Namespace, evals: dict[str, dict[str, Any]], timings: dict[str, float]
                ) -> tuple[dict[str, Any], str]:
    rows = {
        "all-change floor": _row(evals["cva"], "all_change"),
        "CVA + Otsu": _row(evals["cva"]),
        f"{args.variant} on naive pairs": _row(evals["naive"]),
        f"{args.variant} on ChangeAnywhere pairs": _row(evals["diffusion"]),
    }
    ours = rows[f"{args.variant} on ChangeAnywhere pairs"]
    naive = rows[f"{args.variant} on naive pairs"]
    checks = {}
    for s in ("levir", "dsifn"):
        floor = max(rows["all-change floor"][s]["f1"], rows["CVA + Otsu"][s]["f1"])
        checks[f"{s}_margin_over_floors"] = ours[s]["f1"] - floor
        checks[f"{s}_beats_floors_by_0.10"] = ours[s]["f1"] - floor >= 0.10
        checks[f"{s}_beats_naive"] = ours[s]["f1"] > naive[s]["f1"]
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    data = {"rows": rows, "checks": checks, "settings": settings, "timings_s": timings,
            "pairs": {s: evals["cva"]["datasets"][f]["pairs"] for s, f in REAL_SETS.items()}}

    lines = [
        f"Zero-shot change detection on real pairs (LEVIR: {data['pairs']['levir']} pairs, DSIFN: "
        f"{data['pairs']['dsifn']} pairs, 256²; one confusion matrix per set; change class). CD model "
        f"`{args.variant}` trained {args.steps} steps (batch {args.batch_size}) only on {args.num} synthetic pairs "
        f"from the Dubai train split; naive pairs share the events and before images but build B by copy-paste. "
        f"Produced by `experiments/zero_shot.py`.",
        "",
        "| method | LEVIR F1 | LEVIR IoU | DSIFN F1 | DSIFN IoU | pooled F1 | pooled P | pooled R | pooled kappa |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['levir']['f1']:.3f} | {r['levir']['iou']:.3f} | {r['dsifn']['f1']:.3f} | "
                     f"{r['dsifn']['iou']:.3f} | {r['pooled']['f1']:.3f} | {r['pooled']['precision']:.3f} | "
                     f"{r['pooled']['recall']:.3f} | {r['pooled']['kappa']:.3f} |")
    lines += ["", "Target: ChangeAnywhere pairs beat both floors by ≥ 0.10 F1 on each set and beat naive pairs.",
              ""]
    for s in ("levir", "dsifn"):
        lines.append(f"- {s.upper()}: margin over the best floor {checks[f'{s}_margin_over_floors']:+.3f} F1 "
                     f"({'met' if checks[f'{s}_beats_floors_by_0.10'] else 'not met'}); beats naive: "
                     f"{'yes' if checks[f'{s}_beats_naive'] else 'no'}")
    return data, "\n".join(lines) + "\n"


def update_readme(table: str) -> bool:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if README_START not in text or README_END not in text:
        print(f"README.md has no {README_START} ... {README_END} block: paste {table[:40]!r}... by hand")
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}", encoding="utf-8")
    return True


def export_model(args: argparse.Namespace, model_dir: Path, data: dict[str, Any]) -> None:
    EXPORT_DIR.parent.mkdir(parents=True, exist_ok=True)
    tmp = EXPORT_DIR.with_name(EXPORT_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / f, tmp / f)
    r = data["rows"][f"{args.variant} on ChangeAnywhere pairs"]
    card = [
        "---", "library_name: changeanywhere", "tags:", "- change-detection", "- remote-sensing",
        "- synthetic-data", "---", "",
        "# cd-changeanywhere-dubai: zero-shot change detection trained on ChangeAnywhere pairs", "",
        f"`{args.variant}` (`changeanywhere.cd.CDModel`) trained **only on synthetic pairs**: {args.num} pairs "
        f"generated by `changeanywhere generate` (default generator{', ' + args.generator if args.generator else ''}"
        f", {args.gen_steps} DDIM steps, {args.size}² tiles, seed {args.seed}) from the Dubai land-cover train split "
        f"(56 image/map pairs). {args.steps} steps at batch {args.batch_size}, AdamW lr {args.lr}, cosine, "
        "cross-entropy with OHEM, flips/rotations, A/B swap, colour jitter per date. No real change pairs seen.",
        "", "Zero-shot figures (change class, one confusion matrix per set):", "",
        "| set | precision | recall | F1 | IoU | OA | kappa |", "|---|---|---|---|---|---|---|",
    ]
    for s in ("levir", "dsifn", "pooled"):
        m = r[s]
        card.append(f"| {s} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['iou']:.3f} | "
                    f"{m['oa']:.3f} | {m['kappa']:.3f} |")
    card += ["", "Floors on the same sets (F1): all-change LEVIR "
             f"{data['rows']['all-change floor']['levir']['f1']:.3f}, DSIFN "
             f"{data['rows']['all-change floor']['dsifn']['f1']:.3f}; CVA + Otsu LEVIR "
             f"{data['rows']['CVA + Otsu']['levir']['f1']:.3f}, DSIFN {data['rows']['CVA + Otsu']['dsifn']['f1']:.3f}.",
             "", "Use: `changeanywhere eval-cd --data DIR` (the default model) or "
             "`changeanywhere.cd.predict(load_cd_model(), before, after)`.",
             "Reproduce: `python experiments/zero_shot.py " + " ".join(args.argv) + "`.", ""]
    (tmp / "README.md").write_text("\n".join(card), encoding="utf-8")
    (tmp / "zero_shot.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if EXPORT_DIR.exists():
        shutil.rmtree(EXPORT_DIR)
    tmp.rename(EXPORT_DIR)
    print(f"[export] {model_dir} -> {EXPORT_DIR}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=2000, help="synthetic training pairs (default 2000)")
    p.add_argument("--val-num", type=int, default=0,
                   help="synthetic val pairs from the Dubai val split, to pick OUT/best (default 0: final model)")
    p.add_argument("--steps", type=int, default=4000, help="train-cd steps per model (default 4000)")
    p.add_argument("--variant", choices=("changerex-r18", "tiny"), default="changerex-r18")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-steps", type=int, default=500)
    p.add_argument("--select", choices=("final", "best"), default="best",
                   help="with --val-num: evaluate OUT/best (default) or OUT/final")
    p.add_argument("--size", type=int, default=256, help="generated tile size (default 256)")
    p.add_argument("--gen-steps", type=int, default=50, help="DDIM steps of the generator (default 50)")
    p.add_argument("--gen-batch-size", type=int, default=8)
    p.add_argument("--generator", default=None, help="generator pipeline (default: the embedded one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dubai", type=Path, default=SHARED / "dubai-landcover")
    p.add_argument("--real", type=Path, default=SHARED / "cd-real")
    p.add_argument("--work", type=Path, default=ROOT / "experiments" / "runs" / "zero_shot",
                   help="generated data, models and logs (large; not committed)")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    p.add_argument("--parallel", action="store_true", help="train the two CD models at once, one thread each")
    p.add_argument("--export", action="store_true", help="copy the diffusion-trained model to " + str(EXPORT_DIR))
    p.add_argument("--update-readme", action="store_true", help="replace the zero-shot block of README.md")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    for path, what in ((args.dubai / "images", "Dubai images"), *((args.real / d, "real CD set")
                                                                  for d in REAL_SETS.values())):
        if not path.is_dir():
            raise SystemExit(f"{what} not found at {path} (the shared data lives beside the repository)")
    args.work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(name: str, fn, *a):
        t0 = time.time()
        out = fn(*a)
        timings[name] = round(time.time() - t0, 1)
        return out

    w = args.work
    timed("generate_train", stage_generate, args, "train", w / "gen-train", args.num, args.seed)
    if args.val_num:
        timed("generate_val", stage_generate, args, "val", w / "gen-val", args.val_num, args.seed + 1)
    timed("naive_train", stage_naive, args, w / "gen-train", w / "naive-train")
    if args.val_num:
        timed("naive_val", stage_naive, args, w / "gen-val", w / "naive-val")
    val_d = w / "gen-val" if args.val_num else None
    val_n = w / "naive-val" if args.val_num else None
    if args.parallel:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            jobs = [
                pool.submit(timed, "train_diffusion", stage_train, args, w / "gen-train", val_d, w / "cd-diffusion"),
                pool.submit(timed, "train_naive", stage_train, args, w / "naive-train", val_n, w / "cd-naive"),
            ]
            ours, naive = (j.result() for j in jobs)
    else:
        ours = timed("train_diffusion", stage_train, args, w / "gen-train", val_d, w / "cd-diffusion")
        naive = timed("train_naive", stage_train, args, w / "naive-train", val_n, w / "cd-naive")
    common = ["--batch-size", str(args.batch_size)]
    evals = {
        "diffusion": timed("eval_diffusion", stage_eval, args, "diffusion", ["--model", str(ours), *common]),
        "naive": timed("eval_naive", stage_eval, args, "naive", ["--model", str(naive), *common]),
        "cva": timed("eval_cva", stage_eval, args, "cva", ["--method", "cva"]),
    }
    data, table = make_report(args, evals, timings)
    data["models"] = {"diffusion": str(ours), "naive": str(naive)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "zero_shot.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (args.results / "zero_shot.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    print(f"wrote {args.results / 'zero_shot.md'} and {args.results / 'zero_shot.json'}")
    if args.update_readme:
        update_readme(table)
    if args.export:
        export_model(args, ours, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

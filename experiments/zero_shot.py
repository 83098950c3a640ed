"""Zero-shot change detection v3: CD models trained only on generated pairs, tested on real LEVIR / DSIFN pairs.

What counts as change is each benchmark's published definition, fixed before any figure: LEVIR-CD counts
building changes only -> the building model; DSIFN-CD counts any land-cover change -> the any-change model.

Stages (each resumable: rerun the same command to continue; finished work is skipped). Only `eval` and
`fewshot` read the real sets, so generation, training and checkpoint selection cannot see them.

1. generate  `changeanywhere generate` at its defaults (the inpainting generator, realistic non-change) on the
             Dubai *train* split -> WORK/gen-train, and the *val* split -> WORK/gen-val (synthetic val only);
             with a `today-*` arm also WORK/today-{train,val} from --today-generator at its own old defaults
2. derive    WORK/naive-{train,val} (B by copy-paste of same-class texture, `changeanywhere.cd.naive`, same A,
             events and maps) and WORK/<pairs>-val-building (the val pairs labelled for building change only)
3. train     `changeanywhere train-cd --arch effnet-lite0` per arm and seed: ImageNet or random initial weights,
             labels for any change or (`--change-classes building`) building change; same steps, batch, crops
             and per-date augmentation (incl. cast shadows, tone curves, haze); best checkpoint by F1 on the
             arm's own synthetic val
4. eval      `changeanywhere eval-cd` (argmax, no tuned threshold) of every model and the three floors
             (all-change, CVA + Otsu, deep CVA + Otsu) on levir-test10, dsifn-test10 and the old sample sets
5. fewshot   fine-tune on k real LEVIR tiles with change from test_1-test_3 (k in --shots, --seeds draws),
             starting from the exported building model or from ImageNet only; evaluate on test_4-test_10 tiles
6. report    `zero_shot_report.py`: experiments/results/zero_shot.{md,json}, few_shot.png, pictures of real
             predictions; with --export the arms in EXPORTS (first seed, fixed in advance) go to checkpoints/

The CPU run of 2026-12-03 (see experiments/results/zero_shot.md for the exact command):
  python experiments/zero_shot.py --num 800 --val-num 100 --steps 800 --export
A smoke test: see tests/test_zero_shot.py (tiny generator, 2 steps, no real sets until eval).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zero_shot_setup import (  # noqa: E402
    ARMS,
    FEWSHOT_SET,
    FEWSHOT_TEST,
    FEWSHOT_TRAIN,
    REAL_SETS,
    ROOT,
    SHARED,
    STAGES,
    TODAY_SETTINGS,
    cli,
    model_dir,
    run_dir,
)


def pair_count(folder: Path) -> int:
    return len(list((folder / "B").glob("*.png"))) if (folder / "B").is_dir() else 0


def stage_generate(args: argparse.Namespace, pairs: str, split: str, num: int, seed: int) -> None:
    out = args.work / f"{pairs}-{split}"
    if pair_count(out) >= num and (out / "manifest.jsonl").is_file():
        print(f"[generate] {out}: {num} pairs already there", flush=True)
        return
    argv = ["generate", "--images", str(args.dubai / "images"), "--labels", str(args.dubai / "labels"),
            "--classes", "dubai-landcover", "--out", str(out), "--num", str(num), "--size", str(args.size),
            "--seed", str(seed), "--split", split, "--device", args.device, "--no-progress"]
    if args.gen_steps:
        argv += ["--num-inference-steps", str(args.gen_steps)]
    if pairs == "today":
        argv += ["--model", str(args.today_generator), *TODAY_SETTINGS]
    elif args.generator:
        argv += ["--model", str(args.generator)]
    if pairs == "diff":
        argv += ["--content", "diffusion"]
    print(f"[generate] {num} {split} pairs -> {out}", flush=True)
    cli(*argv, log=args.work / "logs" / f"generate-{out.name}.log")


def link_maps(src: Path, dst: Path) -> None:
    """Give a derived folder the maps and settings of its `generate` folder (what `--change-classes` reads)."""
    for name in ("label_A", "label_B", "generation.json"):
        if not (dst / name).exists():
            (dst / name).symlink_to((src / name).resolve())


def building_val(args: argparse.Namespace, pairs: str) -> Path:
    """WORK/<pairs>-val-building: the val pairs with labels counting building change only."""
    from changeanywhere.cd.data import find_cd_pairs, map_label_classes
    from changeanywhere.change_classes import counted_target
    from changeanywhere.io import atomic_write_png
    from changeanywhere.labels import encode_change_label
    from changeanywhere.maps import read_map

    src, dst = args.work / f"{pairs}-val", args.work / f"{pairs}-val-building"
    items = find_cd_pairs(src)
    if pair_count(dst) >= len(items):
        return dst
    class_set, ids = map_label_classes(src, ["building"])
    for d in ("A", "B", "label"):
        (dst / d).mkdir(parents=True, exist_ok=True)
    for it in items:
        for d, f in (("A", it.a), ("B", it.b)):
            if not (dst / d / f.name).exists():
                (dst / d / f.name).symlink_to(f.resolve())
        maps = [read_map(src / d / it.label.name, class_set) for d in ("label_A", "label_B")]
        target = counted_target(*maps, ids)
        atomic_write_png(dst / "label" / it.label.name, encode_change_label(target))
    return dst


def stage_derive(args: argparse.Namespace) -> None:
    from changeanywhere.derived.naive import build_naive_set
    from changeanywhere.derived.star import build_star_set

    for split in ("val", "train"):
        gen, star = args.work / f"gen-{split}", args.work / f"star-{split}"
        if "star" in {ARMS[a].pairs for a in args.arms}:
            if (star / "star.json").is_file():
                print(f"[derive] {star}: already built", flush=True)
            else:
                n = build_star_set(gen, star, seed=args.seeds[0], progress=False)
                print(f"[derive] {n} STAR pairs -> {star}", flush=True)
        gen, naive = args.work / f"gen-{split}", args.work / f"naive-{split}"
        if "naive" in {ARMS[a].pairs for a in args.arms}:
            if (naive / "naive.json").is_file() and pair_count(naive) >= pair_count(gen):
                print(f"[derive] {naive}: already built", flush=True)
            else:
                n = build_naive_set(gen, naive, "dubai-landcover", seed=args.seeds[0], progress=False)
                print(f"[derive] {n} naive pairs -> {naive}", flush=True)
            link_maps(gen, naive)
    for pairs in sorted({ARMS[a].pairs for a in args.arms if ARMS[a].counts == "building"}):
        print(f"[derive] building-change val labels -> {building_val(args, pairs)}", flush=True)


def runs(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(arm, seed) of every model, seed by seed: every arm on the first seed, then --seed-arms on the others."""
    return [(a, s) for s in args.seeds for a in args.arms if s == args.seeds[0] or a in args.seed_arms]


def trained(out: Path, steps: int) -> bool:
    done = out / "final" / "training.json"
    return done.is_file() and json.loads(done.read_text())["step"] >= steps


def train_argv(args: argparse.Namespace, seed: int) -> list[str]:
    """What every CD run shares: model, schedule, crops and the per-date augmentation."""
    return ["--arch", args.variant, "--batch-size", str(args.batch_size), "--crop-size", str(args.crop_size),
            "--lr", str(args.lr), "--seed", str(seed), "--log-steps", "50", "--shadow", str(args.shadow),
            "--tone", str(args.tone), "--haze", str(args.haze)]


def stage_train(args: argparse.Namespace, arm: str, seed: int) -> None:
    spec, out = ARMS[arm], run_dir(args, arm, seed)
    if trained(out, args.steps):
        print(f"[train] {out.name}: already trained to {args.steps} steps", flush=True)
        return
    val = args.work / (f"{spec.pairs}-val-building" if spec.counts == "building" else f"{spec.pairs}-val")
    argv = ["train-cd", "--data", str(args.work / f"{spec.pairs}-train"), "--val", str(val), "--output-dir",
            str(out), "--max-steps", str(args.steps), "--val-steps", str(min(args.val_steps, args.steps)),
            "--checkpointing-steps", str(min(250, args.steps)), *train_argv(args, seed)]
    argv += [] if spec.pretrained else ["--no-pretrained"]
    argv += ["--change-classes", "building"] if spec.counts == "building" else []
    print(f"[train] {arm} seed {seed} -> {out}", flush=True)
    cli(*argv, log=args.work / "logs" / f"train-{out.name}.log")


def eval_json(args: argparse.Namespace, name: str, extra: list[str], sets: list[Path],
              model: Path | None = None) -> dict[str, Any]:
    """eval-cd on `sets` (one result per set); a result newer than its model's weights is reused."""
    js = args.work / "eval" / f"{name}.json"
    weights = model / "model.safetensors" if model is not None else None
    if js.is_file() and (weights is None or js.stat().st_mtime > weights.stat().st_mtime):
        return json.loads(js.read_text())
    cli("eval-cd", "--data", *map(str, sets), "--json", str(js), "--device", args.device, "--no-progress", *extra,
        log=args.work / "logs" / f"eval-{name}.log")
    return json.loads(js.read_text())


def per_set(result: dict[str, Any], sets: list[Path], key: str = "") -> dict[str, dict[str, float]]:
    """{set name: metrics} of one eval-cd JSON (key: a sub-report such as 'all_change')."""
    found = result.get("datasets") or {sets[0].name: result}
    return {name: (r[key] if key else r) for name, r in found.items()}


def real_sets(args: argparse.Namespace) -> list[Path]:
    sets = [args.real / s for s in args.sets]
    missing = [str(s) for s in sets if not (s / "A").is_dir()]
    if missing:
        raise SystemExit(f"real CD set(s) not found: {', '.join(missing)} (needed by eval and fewshot only)")
    return sets


def stage_eval(args: argparse.Namespace) -> dict[str, Any]:
    sets = real_sets(args)
    cva = eval_json(args, "floor-cva", ["--method", "cva"], sets)
    out: dict[str, Any] = {"floors": {"all-change": per_set(cva, sets, "all_change"), "CVA + Otsu": per_set(cva, sets),
                                      "deep CVA + Otsu": per_set(eval_json(args, "floor-deep-cva",
                                                                           ["--method", "deep-cva"], sets), sets)},
                           "models": {}}
    for arm, seed in runs(args):
        run = run_dir(args, arm, seed)
        if not trained(run, args.steps):
            print(f"[eval] {run.name}: not trained to {args.steps} steps; skipped", flush=True)
            continue
        model = model_dir(run)
        result = eval_json(args, run.name, ["--model", str(model)], sets, model)
        best = run / "best" / "val_metrics.json"
        out["models"][run.name] = {"arm": arm, "seed": seed, "model": str(model), "sets": per_set(result, sets),
                                   "synthetic_val_f1": json.loads(best.read_text())["f1"] if best.is_file() else None}
    return out


def fewshot_folders(args: argparse.Namespace) -> tuple[dict[tuple[int, int], Path], Path]:
    """({(k, seed): folder of k training tiles}, the test folder): tiles of FEWSHOT_SET; training tiles only
    from images FEWSHOT_TRAIN with change, nested in k for a seed; tests only from images FEWSHOT_TEST."""
    from changeanywhere.cd.data import find_cd_pairs, read_label

    src = args.real / FEWSHOT_SET
    items = find_cd_pairs(src)

    def image_no(stem: str) -> int:
        return int(stem.split("_")[1])

    pool = [it for it in items if image_no(it.stem) in FEWSHOT_TRAIN and (read_label(it.label) == 1).any()]
    tests = [it for it in items if image_no(it.stem) in FEWSHOT_TEST]
    if len(pool) < max(args.shots):
        raise SystemExit(f"{src}: only {len(pool)} tiles with change in test_{FEWSHOT_TRAIN}; --shots asks "
                         f"{max(args.shots)}")

    def link(folder: Path, chosen: list[Any]) -> Path:
        if pair_count(folder) != len(chosen):
            shutil.rmtree(folder, ignore_errors=True)
            for it in chosen:
                for d, f in (("A", it.a), ("B", it.b), ("label", it.label)):
                    (folder / d).mkdir(parents=True, exist_ok=True)
                    (folder / d / f.name).symlink_to(f.resolve())
        return folder

    folders = {}
    for seed in args.fewshot_seeds:
        order = np.random.default_rng(seed).permutation(len(pool))
        for k in args.shots:
            folders[k, seed] = link(args.work / "fewshot" / f"k{k}-s{seed}", [pool[i] for i in order[:k]])
    return folders, link(args.work / "fewshot" / "test", tests)


def fewshot_argv(args: argparse.Namespace) -> list[str]:
    """The few-shot recipe, fixed before any real figure: a warm-up, the BatchNorm statistics kept as loaded (a
    batch of crops of k ≤ 13 tiles is no estimate of them), and Dice added to the loss, so a fine-tune on sparse
    change cannot settle on "no change"; the same for both starts."""
    return ["--warmup-steps", str(args.fewshot_warmup), "--freeze-bn", "--loss", "ohem-dice"]


def stage_fewshot(args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune from the exported building model (synthetic-pretrained) or from ImageNet only, same k, steps
    and seeds; F1 etc. on the held-out LEVIR images."""
    folders, test = fewshot_folders(args)
    synthetic = model_dir(run_dir(args, "ours-building", args.seeds[0]))
    if not synthetic.is_dir():
        raise SystemExit(f"fewshot needs the building model {synthetic}: train the ours-building arm first")
    out: dict[str, Any] = {"test_pairs": pair_count(test), "runs": {}}
    for init in ("synthetic", "imagenet"):
        for (k, seed), data in folders.items():
            run = args.work / "fewshot" / f"cd-{init}-k{k}-s{seed}"
            if not trained(run, args.fewshot_steps):
                argv = ["train-cd", "--data", str(data), "--output-dir", str(run), "--max-steps",
                        str(args.fewshot_steps), "--checkpointing-steps", str(args.fewshot_steps),
                        *fewshot_argv(args), *train_argv(args, seed)]
                argv[argv.index("--lr") + 1] = str(args.fewshot_lr)
                argv += ["--init", str(synthetic)] if init == "synthetic" else []
                cli(*argv, log=args.work / "logs" / f"fewshot-{run.name}.log")
            model = run / "final"
            r = eval_json(args, f"fewshot-{init}-k{k}-s{seed}", ["--model", str(model)], [test], model)
            out["runs"][f"{init}-k{k}-s{seed}"] = {"init": init, "k": k, "seed": seed,
                                                  **{m: r[m] for m in ("f1", "precision", "recall", "iou", "kappa")}}
    # k = 0: the synthetic-pretrained model without fine-tuning (ImageNet alone has no change head to test)
    r = eval_json(args, "fewshot-synthetic-k0", ["--model", str(synthetic)], [test], synthetic)
    out["runs"]["synthetic-k0"] = {"init": "synthetic", "k": 0, "seed": None,
                                   **{m: r[m] for m in ("f1", "precision", "recall", "iou", "kappa")}}
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (default all)")
    p.add_argument("--num", type=int, default=800, help="synthetic training pairs (default 800)")
    p.add_argument("--val-num", type=int, default=100, help="synthetic val pairs (Dubai val split), to pick OUT/best")
    p.add_argument("--arms", nargs="+", choices=list(ARMS),
                   default=["ours-building", "ours-any", "diffusion-building", "star-building", "star-any",
                            "naive-building", "ours-building-random"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--seed-arms", nargs="*", choices=list(ARMS),
                   default=["ours-building", "ours-any", "star-building", "diffusion-building"],
                   help="arms trained on every seed (the others on the first)")
    p.add_argument("--steps", type=int, default=800, help="train-cd steps per model (default 800)")
    p.add_argument("--variant", default="effnet-lite0", help="train-cd --arch (default effnet-lite0)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=128, help="training crops (eval on whole tiles)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-steps", type=int, default=200)
    p.add_argument("--shadow", type=float, default=0.5, help="train-cd --shadow (per-date cast shadows)")
    p.add_argument("--tone", type=float, default=0.3, help="train-cd --tone (per-date tone curves)")
    p.add_argument("--haze", type=float, default=0.3, help="train-cd --haze (per-date haze)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 4, 13], help="few-shot k (default 1 4 13)")
    p.add_argument("--fewshot-seeds", type=int, nargs="+", default=[0, 1, 2], help="few-shot draws (default 0 1 2)")
    p.add_argument("--fewshot-steps", type=int, default=300)
    p.add_argument("--fewshot-lr", type=float, default=1e-4)
    p.add_argument("--fewshot-warmup", type=int, default=30, help="few-shot warm-up steps (default 30)")
    p.add_argument("--size", type=int, default=256, help="generated tile size (default 256)")
    p.add_argument("--gen-steps", type=int, default=None, help="generator steps (default: generate's default)")
    p.add_argument("--generator", default=None, help="generator pipeline (default: the embedded one)")
    p.add_argument("--today-generator", type=Path, default=ROOT / "runs" / "v2_default",
                   help="the generator before issue 21, for the today-* arms")
    p.add_argument("--sets", nargs="+", choices=list(REAL_SETS), default=list(REAL_SETS),
                   help="real sets to evaluate on (default all; the gate sets must be among them for the gates)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dubai", type=Path, default=SHARED / "dubai-landcover")
    p.add_argument("--real", type=Path, default=SHARED / "cd-real", help="real CD sets (read by eval, fewshot)")
    p.add_argument("--work", type=Path, default=ROOT / "experiments" / "runs" / "zero_shot_v3",
                   help="generated data, models and logs (large; not committed)")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    p.add_argument("--export", action="store_true", help="copy the EXPORTS arms' first-seed models to checkpoints/")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.seed_arms = [a for a in args.seed_arms if a in args.arms]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.dubai / "images").is_dir():
        raise SystemExit(f"Dubai images not found at {args.dubai / 'images'} (the shared data lives beside the "
                         "repository)")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if "generate" in args.stages:
        made = {ARMS[a].pairs for a in args.arms} & {"diff", "today"}
        for pairs in ["gen", *sorted(made)]:
            stage_generate(args, pairs, "val", args.val_num, 1)
            stage_generate(args, pairs, "train", args.num, 0)
    if "derive" in args.stages:
        stage_derive(args)
    if "train" in args.stages:
        for arm, seed in runs(args):
            stage_train(args, arm, seed)
    results: dict[str, Any] = {}
    results_file = args.work / "results.json"
    if results_file.is_file():
        results = json.loads(results_file.read_text())
    if "eval" in args.stages:
        results["zero_shot"] = stage_eval(args)
    if "fewshot" in args.stages:
        results["few_shot"] = stage_fewshot(args)
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[{', '.join(args.stages)}] {time.time() - t0:.0f} s", flush=True)
    if "report" in args.stages:
        import zero_shot_report

        zero_shot_report.report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

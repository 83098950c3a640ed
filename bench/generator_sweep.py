"""eval-generator's figures on the Dubai val tiles with some pair settings changed: how far each lever moves the
issue-21 gates (the settings eval-generator's flags do not reach, too).

    python bench/generator_sweep.py strength=0.5
    python bench/generator_sweep.py guidance_scale=8
    python bench/generator_sweep.py nonchange=2 nc_rerender=[0.3,0.6]

Each argument is `field=JSON`: a `PairSettings` field (`strength`, `free_band`, `nonchange`, `guidance_scale`,
`guidance_interval`, `num_inference_steps` ...) or `nc_<field>` of `NonChangeSettings` (`nc_rerender`,
`nc_harmonise_sigma` ...; with the `nonchange` strength). No arguments: the defaults. Prints the gate figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DUBAI = ROOT.parent / "shared" / "data" / "dubai-landcover"
KEYS = ("changed_accuracy", "changed_accuracy_nonchange_off", "changed_kid", "changed_kid_naive",
        "changed_unchanged_ratio", "unchanged_residual", "changed_residual", "rerendered_accuracy", "seam_error",
        "seam_error_real", "fidelity_ratio", "generated_saturation_ratio", "wall_s")
STEP_KEYS = ("num_inference_steps", "guidance_scale", "guidance_interval")


def parse(pairs: list[str]) -> tuple[dict, dict, dict]:
    """`key=JSON` arguments -> (pair settings, sampler step settings, non-change settings)."""
    over = {}
    for item in pairs:
        key, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"expected field=JSON, got {item!r}")
        v = json.loads(value)
        over[key] = tuple(v) if isinstance(v, list) else v
    nc = {k[3:]: over.pop(k) for k in list(over) if k.startswith("nc_")}
    steps = {k: over.pop(k) for k in STEP_KEYS if k in over}
    return over, steps, nc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("settings", nargs="*", help="field=JSON overrides")
    ap.add_argument("--model", default=None, help="pipeline folder (default: the embedded model)")
    ap.add_argument("--json", type=Path, default=None, help="write the whole report here")
    args = ap.parse_args()
    from dataclasses import replace

    from changeanywhere.fidelity import evaluate_generator, select_tiles
    from changeanywhere.generator.nonchange import NonChangeSettings
    from changeanywhere.hub import load_pipeline
    from changeanywhere.pairs import PairSettings
    from changeanywhere.runtime import DEFAULT_SEGMENTER
    from changeanywhere.segmenter import load_segmenter

    if not DUBAI.is_dir():
        print(f"needs the Dubai land-cover set at {DUBAI} (../shared/data beside the repository)")
        return 1
    over, steps, nc = parse(args.settings)
    settings = PairSettings(**over)
    if nc and settings.nonchange_strength > 0:  # the pair's strength with other non-change settings
        settings = replace(settings, nonchange=NonChangeSettings(strength=settings.nonchange_strength, **nc))
    pipe = load_pipeline(args.model, device="cpu", dtype="fp32")
    pipe.set_backend("auto")
    tiles = select_tiles(str(DUBAI), pipe.class_set, "val")
    report = evaluate_generator(pipe, load_segmenter(DEFAULT_SEGMENTER), tiles, pipe.class_set, settings=settings,
                                **steps)
    label = " ".join(args.settings) or "defaults"
    print(label + ": " + " ".join(f"{k}={report.get(k)}" for k in KEYS), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

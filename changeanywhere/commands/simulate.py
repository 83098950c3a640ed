"""`changeanywhere simulate`: simulate change events on one land-cover map; write the after map and labels."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from ..classes import BUILTIN_CLASS_SETS, ClassSet
from ..config_fields import arg
from ..errors import ChangeAnywhereError
from ..events import EventSettings, change_type_legend, simulate_changes
from ..geo import rasterio_module, read_grid, reads_with_rasterio, write_raster
from ..io import atomic_write_text
from ..labels import change_label_image
from ..maps import read_map, write_map
from .options import add_config_args, add_geo_args, config_from_args, parse_range, split_list


@dataclass(frozen=True, kw_only=True)
class SimulateConfig(EventSettings):
    """What `simulate` needs (one flag per field): the map, the class set, the output, and the events
    (`events.EventSettings`)."""

    before_map: Path = arg(help="before land-cover map (colour or index PNG, or a GeoTIFF: one band of class "
                           "indices)")
    classes: str = arg(help=f"built-in class set or a JSON file ({', '.join(BUILTIN_CLASS_SETS)})")
    out: Path = arg(help="output folder (created if missing)")
    seed: int = arg(0, "random seed; the same seed gives identical files (default 0)")
    snap_colors: bool = arg(False, "map colours not in the class set to the nearest class")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate",
        help="simulate change events on a land-cover map (no model needed)",
        description=(
            "Simulate change events (remove / add / transition objects) on a land-cover map. Writes "
            "label_after (colour map; as GeoTIFF: class indices), change_mask (0/255, 127 = ignore), change_type "
            "(0 = no change, else 1 + from * K + to) and events.json (events, legend, seed) to --out; as GeoTIFFs "
            "with the map's CRS and transform when the map is a GeoTIFF (see --format)."
        ),
    )
    # the text-valued flags (N or LO:HI, a comma list) are parsed in `run`, so that their errors name the flag
    add_config_args(p, SimulateConfig, parsers={"num_events": str, "event_types": str})
    add_geo_args(p, image_options=False)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # Everything that can fail on user input happens before the output folder is touched.
    cfg = config_from_args(
        SimulateConfig, args,
        num_events=parse_range(args.num_events, "--num-events", int) if isinstance(args.num_events, str)
        else args.num_events,
        event_types=split_list(args.event_types) if isinstance(args.event_types, str) else args.event_types,
    )
    class_set = ClassSet.load(cfg.classes)
    before = read_map(cfg.before_map, class_set, snap=cfg.snap_colors)
    grid = read_grid(cfg.before_map) if reads_with_rasterio(cfg.before_map) else None
    ext = args.file_format or ("tif" if grid is not None and grid.georeferenced else "png")
    if ext == "tif":
        rasterio_module("writing GeoTIFF outputs (--format tif)")
    result = simulate_changes(
        before,
        class_set,
        seed=cfg.seed,
        num_events=cfg.num_events,
        event_types=cfg.event_types,
        min_area=cfg.min_area,
    )
    out: Path = cfg.out
    if out.exists() and not out.is_dir():
        raise ChangeAnywhereError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    write_map(out / f"label_after.{ext}", result.after, class_set, grid)
    write_raster(out / f"change_mask.{ext}", change_label_image(result.before, result.after, result.change_mask), grid)
    write_raster(out / f"change_type.{ext}", result.change_type, grid)
    report = {
        "label": str(cfg.before_map),
        "class_set": class_set.to_dict(),
        "seed": cfg.seed,
        "num_events": ":".join(str(n) for n in dict.fromkeys(cfg.num_events)),  # as typed: N or LO:HI
        "event_types": ",".join(cfg.event_types),
        "min_area": args.min_area,
        "changed_pixels": int(result.change_mask.sum()),
        "events": result.events,
        "legend": {str(code): name for code, name in change_type_legend(class_set).items()},
        **({"geo": grid.to_meta()} if grid is not None and grid.georeferenced else {}),
    }
    atomic_write_text(out / "events.json", json.dumps(report, indent=2) + "\n")
    share = result.change_mask.mean() if result.change_mask.size else 0.0
    print(
        f"{len(result.events)} event(s), {report['changed_pixels']:,} changed pixels ({share:.1%}) -> {out}"
    )
    return 0


"""Pieces the sub-commands share: option groups spelled the same everywhere, value parsers, and the
translation of parameter names (what the library speaks of) into flags (what a user typed)."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal

from ..errors import ParameterError
from ..geo import FORMATS, RESAMPLING


def parse_range(text: str, flag: str, cast: type = float) -> tuple[Any, Any]:
    """'X' -> (X, X), 'LO:HI' -> (LO, HI), cast to `cast`; anything else is an error naming `flag`."""
    try:
        parts = [cast(v) for v in str(text).split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise ParameterError(f"{flag} must be X or LO:HI (e.g. 3 or 1:6), got {text!r}")
    return parts[0], parts[1]


def parse_ratios(text: str | None, flag: str) -> tuple[float, ...] | None:
    """'0.8:0.1:0.1' -> (0.8, 0.1, 0.1); None stays None."""
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split(":"))
    except ValueError:
        raise ParameterError(f"{flag} must be ratios like 0.8:0.1:0.1, got {text!r}") from None


def split_list(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c')."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_geo_args(p: argparse.ArgumentParser, image_options: bool = True) -> None:
    """The GeoTIFF options: the output format, and (for commands that read images) the band choice and the
    resampling of an image onto its map's pixel grid."""
    p.add_argument("--format", dest="file_format", choices=FORMATS, default=None,
                   help="tile format: png, or tif (GeoTIFF with each tile's transform and the source CRS); default: "
                   "tif when the input is georeferenced, else png. PNGs of georeferenced input get a world file")
    if image_options:
        p.add_argument("--bands", type=int, nargs="+", default=None, metavar="N",
                       help="bands of TIFF images read as R G B, counted from 1 (one band: grey; default 1 2 3)")
        p.add_argument("--resample", choices=RESAMPLING, default=None,
                       help="resample each GeoTIFF image onto its map's pixel grid (default: a map and image on "
                       "different grids are an error)")


def flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter (argparse dest) -> the flag that sets it, for the options of `parser`."""
    return {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}


def add_config_args(p: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                    parsers: dict[str, Callable[[str], Any]] | None = None, **helps: str) -> None:
    """One flag per field of the config dataclass `cls` but `skip` (`--crop-size` for `crop_size`, plus the
    field's `aliases`), with its default (required without one), type, choices (a `Literal`), number of values (a
    tuple or list), help and metavar from `config_fields.arg`; `parsers` read a field's one value their own way
    (e.g. `split_list`), `helps` replace a field's help for this command."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip or not f.init:  # a field set by the library (e.g. `is_resolved`) is no flag
            continue
        kw: dict[str, Any] = {"dest": f.name, "help": helps.get(f.name, f.metadata.get("help"))}
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        if f.default is MISSING:
            kw["required"] = True
        elif parsers and f.name in parsers:
            kw["default"] = f.default  # already the parsed value
        else:
            kw["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        kind = _value_type(hints[f.name])
        if parsers and f.name in parsers:
            kw["type"] = parsers[f.name]
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction if f.metadata.get("negatable") else "store_true"
        elif typing.get_origin(kind) is Literal:
            kw["choices"] = typing.get_args(kind)
        elif typing.get_origin(kind) in (tuple, list):
            items = typing.get_args(kind)
            # tuple[X, X] takes exactly two values; tuple[X, ...] and list[X] one or more
            kw["nargs"] = len(items) if typing.get_origin(kind) is tuple and Ellipsis not in items else "+"
            item = _value_type(items[0])
            if item in (int, float, Path):
                kw["type"] = item
        elif kind in (int, float, Path):
            kw["type"] = kind
        p.add_argument("--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ()), **kw)


def _value_type(hint: Any) -> Any:
    """The type a flag parses to: `X | None` -> X; `str | Path` -> str (a path is given as a string)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        return kinds[0]
    return hint


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """A config dataclass from the parsed arguments whose names are its fields (and `overrides`)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.init and hasattr(args, f.name)}
    return cls(**{**values, **overrides})


def add_scheduler_arg(p: argparse.ArgumentParser) -> None:
    """`--scheduler` (swap the model's scheduler for a named diffusers one) and `--backend`."""
    from ..generator.schedulers import SCHEDULERS

    p.add_argument("--scheduler", default=None, choices=list(SCHEDULERS),
                   help="diffusers scheduler (default: the model's own, with its measured default steps)")
    p.add_argument("--backend", default=None, choices=["auto", "torch", "onnx"],
                   help="UNet and autoencoder: auto (default, $CHANGEANYWHERE_BACKEND): ONNX Runtime on a CPU when "
                   "ONNX Runtime is installed (it is by default), else PyTorch")

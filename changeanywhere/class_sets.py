"""The built-in class sets as data (names, colours, ignore conventions, allowed transitions): `ClassSet.builtin`
builds them."""

from __future__ import annotations

from typing import Any

BUILTIN_SPECS: dict[str, dict[str, Any]] = {
    # OpenEarthMap, order and palette of the original ChangeAnywhere generator; index maps: 0 unknown, 1..8.
    "openearthmap": dict(
        classes={
            "bareland": "#800000",
            "rangeland": "#00FF24",
            "developed space": "#949494",
            "road": "#FFFFFF",
            "tree": "#226126",
            "water": "#0045FF",
            "agriculture land": "#4BB549",
            "building": "#DE1F07",
        },
        ignore_colors=((0, 0, 0),),
        ignore_name="unknown",
        ignore_indices=(0,),
        index_offset=1,
        kinds={
            "building": "object", "bareland": "bare", "rangeland": "vegetation", "developed space": "paved",
            "road": "paved", "tree": "vegetation", "water": "water", "agriculture land": "vegetation",
        },
        transitions={
            "bareland": ("rangeland", "developed space", "road", "building", "agriculture land"),
            "rangeland": ("bareland", "developed space", "road", "tree", "agriculture land", "building"),
            "developed space": ("bareland", "road", "building"),
            "road": ("bareland", "developed space"),
            "tree": ("bareland", "rangeland", "developed space", "agriculture land", "building"),
            "water": ("bareland", "rangeland"),
            "agriculture land": ("bareland", "rangeland", "developed space", "road", "building"),
            "building": ("bareland", "rangeland", "developed space"),
        },
    ),
    # Dubai aerial land cover (../shared/data/dubai-landcover/classes.json), RGB colour masks.
    "dubai-landcover": dict(
        classes={
            "land": "#8429F6",
            "water": "#E2A929",
            "building": "#3C1098",
            "vegetation": "#FEDD3A",
            "road": "#6EC1E4",
        },
        ignore_colors=((0x9B, 0x9B, 0x9B), (0, 0, 0)),
        ignore_name="unlabeled",
        kinds={
            "building": "object", "land": "bare", "water": "water", "vegetation": "vegetation", "road": "paved",
        },
        # what a Dubai tile becomes between two dates: land is built on, paved or planted, vegetation cleared
        # or built on, buildings demolished; open water and roads stay (no highway vanishes, no lake appears)
        transitions={
            "land": ("building", "road", "vegetation"),
            "vegetation": ("land", "building"),
            "building": ("land",),
        },
    ),
    # LoveDA: index masks 0 no-data, 1..7 classes.
    "loveda": dict(
        classes={
            "background": "#FFFFFF",
            "building": "#FF0000",
            "road": "#FFFF00",
            "water": "#0000FF",
            "barren": "#9F8157",
            "forest": "#00FF00",
            "agricultural": "#FFC380",
        },
        ignore_colors=((0, 0, 0),),
        ignore_name="no-data",
        ignore_indices=(0,),
        index_offset=1,
        kinds={
            "building": "object", "background": "other", "road": "paved", "water": "water", "barren": "bare",
            "forest": "vegetation", "agricultural": "vegetation",
        },
        transitions={
            "background": ("building", "road", "barren"),
            "building": ("background", "barren"),
            "road": ("background", "barren"),
            "water": ("background", "barren"),
            "barren": ("background", "building", "road", "forest", "agricultural"),
            "forest": ("background", "building", "barren", "agricultural"),
            "agricultural": ("background", "building", "road", "barren"),
        },
    ),
    # ISPRS Potsdam: index masks 0 ignore (clutter), 1..5 classes; ISPRS colours.
    "potsdam": dict(
        classes={
            "impervious": "#FFFFFF",
            "building": "#0000FF",
            "low vegetation": "#00FFFF",
            "tree": "#00FF00",
            "car": "#FFFF00",
        },
        ignore_colors=((255, 0, 0),),
        ignore_name="clutter",
        ignore_indices=(0,),
        index_offset=1,
        kinds={
            "building": "object", "car": "object", "impervious": "paved", "low vegetation": "vegetation",
            "tree": "vegetation",
        },
        transitions={
            "impervious": ("building", "low vegetation", "car"),
            "building": ("impervious", "low vegetation"),
            "low vegetation": ("impervious", "building", "tree"),
            "tree": ("impervious", "building", "low vegetation"),
            "car": ("impervious",),
        },
    ),
}

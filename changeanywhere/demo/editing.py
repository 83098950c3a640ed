"""Editing the before map: brush strokes of the image editor and random change events -> the after map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..classes import ClassSet
from ..errors import ChangeAnywhereError, MapSizeError
from ..events import EVENT_TYPES, ChangeResult, UserEdit, simulate_changes
from .session import Session

ALPHA_THRESHOLD = 128  # a stroke pixel counts as painted from this opacity on (strokes are antialiased)


def painted_edits(value: dict[str, Any] | None, class_set: ClassSet, shape: tuple[int, int]) -> list[UserEdit]:
    """Brush strokes of the editor's layers -> one `UserEdit` per painted class.

    A pixel is painted where a layer's alpha reaches `ALPHA_THRESHOLD`; its class is the class colour nearest
    to the stroke colour (antialiased edges blend colours). Later layers paint over earlier ones. The editor's
    background is ignored: the map itself is kept on the server.
    """
    if not value:
        return []
    target = np.full(shape, -1, np.int16)
    for i, layer in enumerate(value.get("layers") or []):
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8:
            raise ChangeAnywhereError(
                f"painted layer {i + 1} must be an RGBA image (transparent where unpainted), got an array of "
                f"shape {arr.shape}"
            )
        if arr.shape[:2] != shape:
            raise MapSizeError(
                f"painted layer {i + 1} is {arr.shape[1]}×{arr.shape[0]} px but the map is {shape[1]}×{shape[0]} "
                "px: paint on the loaded map (reload it if the canvas was cropped or resized)"
            )
        painted = arr[..., 3] >= ALPHA_THRESHOLD
        if painted.any():
            target[painted] = nearest_class(arr[painted][:, :3], class_set)
    return [UserEdit(target == c, int(c)) for c in np.unique(target[target >= 0])]


def nearest_class(rgb: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """N×3 colours -> class index of the nearest class colour (RGB distance)."""
    d = ((rgb[:, None, :].astype(np.int32) - class_set.palette[None].astype(np.int32)) ** 2).sum(-1)
    return d.argmin(1)


def make_after_map(
    before_map: np.ndarray,
    class_set: ClassSet,
    edits: Sequence[UserEdit] = (),
    num_events: int = 0,
    event_types: Sequence[str] = EVENT_TYPES,
    seed: int = 0,
) -> ChangeResult:
    """Random change events (if any), then the painted edits, applied to the before map."""
    num_events = int(num_events)
    if num_events > 0 and not event_types:
        raise ChangeAnywhereError(f"tick at least one event type ({', '.join(EVENT_TYPES)}) or set events to 0")
    return simulate_changes(
        before_map,
        class_set,
        seed=int(seed),
        num_events=max(num_events, 0),
        event_types=tuple(event_types) or EVENT_TYPES,
        edits=edits,
    )


EVENT_WORDS = {  # how each change event reads in the summary ("from": the class mostly replaced)
    "edit": "painted {to} over {from}",
    "transition": "{from} turned into {to}",
    "add": "new {to} on {from}",
    "remove": "{from} removed, filled with the {to} around it",
}


def describe_event(event: dict[str, Any]) -> str:
    """One change event in words, e.g. "land turned into road (1,234 px)"."""
    words = EVENT_WORDS.get(event["type"], "{from} → {to}").format(**{"from": event["from"], "to": event["to"]})
    return f"{words} ({event['area']:,} px)"


def describe_change(result: ChangeResult) -> str:
    """Markdown: what changed and how much of the map."""
    changed = float(result.change_mask.mean())
    if not result.change_mask.any():
        return "No change yet: paint with a class brush, or add random events."
    events = [e for e in result.events if e["area"]]
    lines = [f"**{changed:.1%}** of the map changes ({int(result.change_mask.sum()):,} px):"]
    lines += [f"- {describe_event(e)}" for e in events]
    return "\n".join(lines)


def require_change(result: ChangeResult) -> None:
    if not result.change_mask.any():
        raise ChangeAnywhereError(
            "the edit changes nothing: paint a region with a class brush (a class different from the map "
            "there), or set the number of random events above 0"
        )


def session_change(
    session: Session | None, editor: dict[str, Any] | None, class_set: ClassSet, num_events: int = 0,
    event_types: Sequence[str] = EVENT_TYPES, seed: int = 0, brush: ClassSet | None = None,
) -> ChangeResult:
    """The after map of a session: its random events, then the strokes painted in the editor (in the colours
    of `brush`, the display class set, when given)."""
    if not session:
        raise ChangeAnywhereError("Load an example or upload a map first.")
    edits = painted_edits(editor, brush or class_set, session.before_map.shape)
    return make_after_map(session.before_map, class_set, edits, int(num_events or 0), event_types or [],
                          int(seed or 0))

"""`Session`: what the app has loaded (a before map fitted to the model, its real image if one was given) and
what to tell the user about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .uploads import MAX_SIDE, fit_to_model, md_escape


@dataclass
class Session:
    """A loaded before map (fitted to the model), its real image if one was given, and what to tell the user."""

    before_map: np.ndarray
    before_image: np.ndarray | None
    source: str
    notices: list[str] = field(default_factory=list)  # all of them; `fit_notices` are the ones to flash
    fit_notices: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """Markdown: what was loaded."""
        h, w = self.before_map.shape
        what = "real image" if self.before_image is not None else "no image: the before image is synthesized"
        return f"Loaded **{md_escape(self.source)}** ({w}×{h} px, {what})." + "".join(
            f"  \n{md_escape(n)}" for n in self.notices
        )


def start_session(
    before_map: np.ndarray, image: np.ndarray | None, source: str, notices: Sequence[str], multiple: int,
    max_side: int = MAX_SIDE,
) -> Session:
    """A session for a map (and optional image), fitted to the generator's size rules (see `fit_to_model`)."""
    before_map, image, fit_notices = fit_to_model(before_map, image, multiple, max_side)
    return Session(before_map, image, source, [*notices, *fit_notices], fit_notices)

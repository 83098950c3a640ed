"""Exceptions with messages meant for users (the CLI and the app print them as they are)."""


class ChangeAnywhereError(ValueError):
    """Base class: bad input or configuration, with an actionable message."""


class UnknownColorsError(ChangeAnywhereError):
    """A colour map holds colours that are not in the class set."""


class MapSizeError(ChangeAnywhereError):
    """Images and maps that must match in size do not."""


class WeightsNotFoundError(ChangeAnywhereError):
    """A model folder or Hub repo id could not be resolved (offline, typo, or missing files)."""

"""Exceptions with messages meant for users (the CLI and the app print them as they are)."""


class ChangeAnywhereError(ValueError):
    """Base class: bad input or configuration, with an actionable message."""


class UnknownColorsError(ChangeAnywhereError):
    """A colour map holds colours that are not in the class set (or is a photo). `summary`: the finding without
    the advice on what to do (which depends on where the map came from: CLI, library or app)."""

    def __init__(self, message: str, summary: str | None = None):
        super().__init__(message)
        self.summary = summary or message


class MapSizeError(ChangeAnywhereError):
    """Images and maps that must match in size do not."""


class MissingExtraError(ChangeAnywhereError):
    """An optional dependency is needed (e.g. rasterio for GeoTIFFs): the message names the extra to install."""


class WeightsNotFoundError(ChangeAnywhereError):
    """A model folder or Hub repo id could not be resolved (offline, typo, or missing files)."""


class ParameterError(ChangeAnywhereError):
    """A bad value of named parameters. The message names each as `name` (backticks); `for_flags` swaps in
    the command-line spelling, so the library speaks of parameters and the CLI of its flags."""

    def __init__(self, message: str, *parameters: str):
        super().__init__(message)
        self.message = message
        self.parameters = parameters

    def for_flags(self, flags: dict[str, str]) -> str:
        """The message with each parameter's `name` replaced by its flag (names without a flag stay)."""
        text = self.message
        for name in self.parameters:
            if name in flags:
                text = text.replace(f"`{name}`", flags[name])
        return text


class GenerationError(ParameterError):
    """Bad input or output folder for `generate`."""


class SettingsMismatchError(GenerationError):
    """The output folder was made with different settings."""


class GridMismatchError(MapSizeError, ParameterError):
    """A map and its image are not on one pixel grid (size, transform or CRS differ); the message names the
    option that resamples (`resample`)."""


class IndexOffsetWarning(UserWarning):
    """An index map's values suggest the other index offset (0- vs 1-based) than its class set declares."""

"""What the app runs on: the generator and the CD model, loaded without ever raising for missing weights."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..cd import CDModel, load_cd_model
from ..classes import ClassSet
from ..errors import ChangeAnywhereError, WeightsNotFoundError
from ..generator.pipeline import ChangeAnywherePipeline
from ..generator.sampler_defaults import SAMPLER_DEFAULTS
from ..hub import load_pipeline
from ..pairs import PairSettings
from ..runtime import (
    BACKEND_ENV,
    CD_BUILDING_MODEL_ENV,
    CD_MODEL_ENV,
    DEFAULT_CD_BUILDING_MODEL,
    DEFAULT_CD_MODEL,
    DEFAULT_MODEL,
    MODEL_ENV,
    env,
)

FALLBACK_CLASS_SET = "dubai-landcover"  # offered for editing when no generator could be loaded
# what counts as change -> the label's `PairSettings.change_classes` (None: every land-cover change); each has its
# CD model (LEVIR-CD-style benchmarks count building change, DSIFN-CD-style ones any change)
COUNTS: dict[str, tuple[str, ...] | None] = {"any": None, "building": ("building",)}


@dataclass
class Models:
    """What the demo runs on: the generator (None when no weights could be loaded), the CD model (None: the
    training-free CVA baseline predicts instead), and messages about what was (not) loaded."""

    pipe: ChangeAnywherePipeline | None
    cd_model: CDModel | None
    class_set: ClassSet
    model_source: str
    cd_source: str
    notices: list[str] = field(default_factory=list)
    cd_building: CDModel | None = None  # predicts building change; None: the any-change model stands in
    cd_building_source: str = "none"

    @property
    def size_multiple(self) -> int:
        return self.pipe.size_multiple if self.pipe is not None else 8

    @property
    def default_guidance(self) -> float:
        """The guidance a generation uses when none is given (the generator's measured default)."""
        return (PairSettings().resolved(self.pipe).guidance_scale if self.pipe is not None
                else SAMPLER_DEFAULTS.guidance_scale)

    @property
    def default_steps(self) -> int:
        """The denoising steps a generation uses when none is given (the generator's measured default)."""
        return (PairSettings().resolved(self.pipe).num_inference_steps if self.pipe is not None
                else SAMPLER_DEFAULTS.num_inference_steps)

    @property
    def cd_method(self) -> str:
        return "CD model" if self.cd_model is not None else "CVA + Otsu (training-free baseline)"

    def cd_for(self, counts: str) -> tuple[CDModel | None, str, str]:
        """(model, what predicts in words, its source) for the change that `counts` (a `COUNTS` key) names."""
        if counts == "building" and self.cd_building is not None:
            return (self.cd_building, f"building-change CD model {_short(self.cd_building_source)}",
                    self.cd_building_source)
        if self.cd_model is None:
            return None, self.cd_method, self.cd_source
        stand_in = " (no building-change model loaded)" if counts == "building" else ""
        return self.cd_model, f"any-change CD model {_short(self.cd_source)}{stand_in}", self.cd_source

    def require_pipe(self) -> ChangeAnywherePipeline:
        if self.pipe is None:
            raise WeightsNotFoundError(
                "no generator is loaded, so nothing can be generated: "
                + (self.notices[0] if self.notices else "weights missing")
            )
        return self.pipe


def load_models(
    model: str | os.PathLike | None = None,
    cd_model: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    fallback: str | os.PathLike | None = DEFAULT_MODEL,
    cd_fallback: str | os.PathLike | None = DEFAULT_CD_MODEL,
    backend: str | None = None,
    cd_building_model: str | os.PathLike | None = None,
    cd_building_fallback: str | os.PathLike | None = DEFAULT_CD_BUILDING_MODEL,
) -> Models:
    """Load the generator and the CD model, never raising for missing weights.

    `model` / `cd_model` (or the environment variables `CHANGEANYWHERE_MODEL` / `CHANGEANYWHERE_CD_MODEL`)
    name a Hub repo id or a folder; when absent or unloadable the embedded defaults under `checkpoints/` are
    used (`fallback` / `cd_fallback`; None: none); likewise the building-change CD model (`cd_building_model`,
    `CHANGEANYWHERE_CD_BUILDING_MODEL`, `cd_building_fallback`). What failed is recorded in `notices`, for the UI
    to show.
    `backend` (or $CHANGEANYWHERE_BACKEND): auto (ONNX Runtime on a CPU when ONNX Runtime is
    installed), torch or onnx.
    """
    notices: list[str] = []
    model = model or env(MODEL_ENV)
    pipe, source = None, str(model or fallback)
    for candidate in dict.fromkeys(str(s) for s in (model, fallback) if s):
        try:
            pipe, source = load_pipeline(candidate, device=device), candidate
            break
        except Exception as err:  # noqa: BLE001 - the app must start whatever the weights are
            notices.append(f"Generator: {_load_error(err, candidate)}")
    if pipe is not None and pipe.class_set is None:
        notices.append(f"Generator {source!r} stores no class set, so its maps cannot be read or painted.")
        pipe = None
    if pipe is not None and notices:
        notices.append(f"Generator: using {source}.")
    if pipe is not None:
        try:
            pipe.set_backend(backend or env(BACKEND_ENV) or "auto")
        except Exception as err:  # noqa: BLE001 - a faster backend is optional: keep PyTorch
            notices.append(f"ONNX backend: {err}; using PyTorch.")
    class_set = pipe.class_set if pipe is not None else ClassSet.builtin(FALLBACK_CLASS_SET)

    cd, cd_source = _load_cd(cd_model or env(CD_MODEL_ENV), cd_fallback, device, notices, "Change detection")
    if cd is None:
        notices.append(
            "No change-detection model available: the prediction shown is the training-free CVA + Otsu baseline."
        )
    building, building_source = _load_cd(cd_building_model or env(CD_BUILDING_MODEL_ENV), cd_building_fallback,
                                         device, notices, "Building-change detection")
    if building is None and (cd_building_model or cd_building_fallback):
        notices.append("No building-change CD model: building change is predicted by the any-change model.")
    return Models(pipe, cd, class_set, source, cd_source, notices, building, building_source)


def _load_cd(model: str | os.PathLike | None, fallback: str | os.PathLike | None, device: str | None,
             notices: list[str], what: str) -> tuple[CDModel | None, str]:
    """The first of `model`, `fallback` that loads, and its source ((None, 'cva') when none does)."""
    for candidate in dict.fromkeys(str(s) for s in (model, fallback) if s):
        try:
            return load_cd_model(candidate, device=device), candidate
        except Exception as err:  # noqa: BLE001 - the app must start whatever the weights are
            notices.append(f"{what}: {_load_error(err, candidate)}")
    return None, "cva"


def _load_error(err: Exception, source: str) -> str:
    if isinstance(err, ChangeAnywhereError):
        return str(err)
    detail = str(err).splitlines()[0][:200] if str(err) else "no details"
    return f"could not load {source!r} ({type(err).__name__}: {detail})"


def status_markdown(models: Models) -> str:
    """One paragraph for the top of the page: what is loaded, and what went wrong."""
    cs = models.class_set
    gen = (
        f"Generator **{_short(models.model_source)}** ({cs.name}: {', '.join(cs.names)}; "
        f"sizes in multiples of {models.size_multiple} px) on {models.pipe.device}"
        if models.pipe is not None
        else "**No generator loaded: generation is disabled** (editing still works)"
    )
    cd = f"CD model **{_short(models.cd_source)}**" if models.cd_model is not None else "CD: CVA baseline"
    if models.cd_building is not None:
        cd += f" (any change) and **{_short(models.cd_building_source)}** (building change)"
    lines = [f"{gen} · {cd}"]
    lines += [f"> ⚠️ {n}" for n in models.notices]
    return "\n\n".join(lines)


def _short(source: str) -> str:
    p = Path(source)
    return p.name if p.is_absolute() else source


"""`AppConfig`: the app's command-line options (`python app.py --help`), one flag per field."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..commands.options import add_config_args, config_from_args
from ..config_fields import arg
from ..runtime import CD_BUILDING_MODEL_ENV, CD_MODEL_ENV, DEVICE_DEFAULT, MODEL_ENV

CACHE_MAX_AGE_S = 3600  # served files (Gradio's cache, the app's outputs and zips) are deleted after this
DESCRIPTION = "The ChangeAnywhere demo: paint a change, generate the pair, see the zero-shot prediction."


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """How `app.py` loads its models and serves the page (one flag per field)."""

    model: str | None = arg(None, f"generator: Hub repo id or folder (default: ${MODEL_ENV}, else the embedded "
                            "checkpoints/changeanywhere-dubai-256)")
    cd_model: str | None = arg(None, f"change-detection model: Hub repo id or folder (default: ${CD_MODEL_ENV}, "
                               "else the embedded checkpoints/cd-changeanywhere-dubai)")
    cd_building_model: str | None = arg(None, f"building-change CD model: Hub repo id or folder (default: "
                                        f"${CD_BUILDING_MODEL_ENV}, else the embedded "
                                        "checkpoints/cd-changeanywhere-dubai-building)")
    device: str = arg(DEVICE_DEFAULT, "auto (CUDA with fp16 when available, else CPU), cpu, cuda")
    host: str | None = arg(None, "address to listen on (default $GRADIO_SERVER_NAME or 127.0.0.1)")
    port: int | None = arg(None, "port (default $GRADIO_SERVER_PORT or 7860)")
    share: bool = arg(False, "also serve through a public Gradio link (needs internet)")
    backend: Literal["auto", "torch", "onnx"] | None = arg(
        None, "UNet and autoencoder: auto (default, $CHANGEANYWHERE_BACKEND): ONNX Runtime on a CPU when ONNX "
        "Runtime is installed (by default; 1.5-2.4x faster), else PyTorch")
    cache_max_age: int = arg(CACHE_MAX_AGE_S, f"seconds after which served files (images, zips) are deleted "
                             f"(default {CACHE_MAX_AGE_S})")
    no_warm_up: bool = arg(False, "skip the small generation at start that takes the first call's set-up cost off "
                           "users")
    no_fallback: bool = arg(False, "do not fall back to the embedded weights when --model / --cd-model cannot be "
                            "loaded")


def app_parser() -> argparse.ArgumentParser:
    """The app's argument parser, built from `AppConfig`."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    add_config_args(p, AppConfig)
    return p


def parse_app_args(argv: Sequence[str] | None = None) -> AppConfig:
    """The app's options from `argv` (default: `sys.argv[1:]`)."""
    return config_from_args(AppConfig, app_parser().parse_args(argv))

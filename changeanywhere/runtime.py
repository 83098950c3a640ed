"""What the library decides at run time, in one place: device, dtype, backend and noise-source "auto", every
environment variable it reads, the "local folder or Hub id" rule, and where the embedded weights and examples live.

The embedded files are read from the checkout (an editable install) or, in a plain `pip install .`, from the
package data `setup.py` copies into the wheel (`changeanywhere/embedded/`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from .errors import WeightsNotFoundError

# ------------------------------------------------------------------------------------- environment variables

BACKEND_ENV = "CHANGEANYWHERE_BACKEND"  # auto (default), torch or onnx
MODEL_ENV = "CHANGEANYWHERE_MODEL"  # the app's generator: a folder or Hub repo id
CD_MODEL_ENV = "CHANGEANYWHERE_CD_MODEL"  # the app's CD model
CD_BUILDING_MODEL_ENV = "CHANGEANYWHERE_CD_BUILDING_MODEL"  # the app's building-change CD model
CACHE_ENV = "CHANGEANYWHERE_CACHE"  # exported ONNX files go to $CHANGEANYWHERE_CACHE/onnx
TRUTHY = ("1", "true", "yes", "on")


def env(name: str) -> str | None:
    """The variable's value; None when unset or empty."""
    return os.environ.get(name) or None


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` is set to a truthy value (as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY


def world_size() -> int:
    """The number of processes a launcher (torchrun, accelerate) started; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cache_dir() -> Path:
    """$CHANGEANYWHERE_CACHE, else ~/.cache/changeanywhere ($XDG_CACHE_HOME respected)."""
    root = env(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "changeanywhere")
    return Path(root)


# ------------------------------------------------------------------------------------------- "auto" choices

DEVICE_DEFAULT = "auto"  # every command's --device default: CUDA when available, else the CPU
NOISE_SOURCES = ("auto", "step", "predrawn", "device")


def resolve_device(device: str | None = None) -> str:
    """'auto' or None -> 'cuda' when available, else 'cpu'."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """'auto' or None -> fp16 on CUDA, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.float16 if device.startswith("cuda") else torch.float32
    table = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "fp16": torch.float16,
        "float16": torch.float16,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
    }
    if dtype not in table:
        raise WeightsNotFoundError(f"unknown dtype {dtype!r}; use one of {sorted(table)}")
    return table[dtype]


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnxscript", "onnx"))


def resolve_backend(name: str | None, device: str | torch.device) -> str:
    """auto -> onnx on a CPU when ONNX Runtime is installed (a core dependency), else torch;
    None reads $CHANGEANYWHERE_BACKEND."""
    name = name or env(BACKEND_ENV) or "auto"
    if name == "auto":
        return "onnx" if torch.device(device).type == "cpu" and onnx_available() else "torch"
    return name


def resolve_noise_source(source: str, device: torch.device) -> str:
    """'auto' -> 'step' on a CPU, 'device' on an accelerator; other names are checked and returned."""
    if source not in NOISE_SOURCES:
        raise ValueError(f"noise source must be one of {NOISE_SOURCES}, got {source!r}")
    if source == "auto":
        return "step" if torch.device(device).type == "cpu" else "device"
    return source


# ------------------------------------------------------------------------------------ folder or Hub repo id


def looks_local(source: str) -> bool:
    """A Hub repo id is 'name' or 'org/name'; anything else (existing, ./x, /abs, ~, a/b/c) is a folder."""
    return Path(source).expanduser().exists() or source.startswith((".", "/", "~")) or source.count("/") > 1


def hub_failure_hint() -> str:
    """Why a Hub repo id may not load, for the error message."""
    if hub_offline():
        return "you are offline (HF_HUB_OFFLINE=1) and it is not in the local Hub cache"
    return "check the repo id, your network, and `hf auth login` for private repos"


# ----------------------------------------------------------------------------------- embedded files

PACKAGE_DIR = Path(__file__).resolve().parent
EMBEDDED_DIR = PACKAGE_DIR / "embedded"  # the wheel's copy (setup.py)


def embedded_path(relative: str) -> Path:
    """An embedded file or folder, `relative` to the repository root: the checkout's when there is one, else the
    installed package data's (where error messages then point when neither exists)."""
    checkout = PACKAGE_DIR.parent / relative
    installed = EMBEDDED_DIR / relative
    return checkout if checkout.exists() or not installed.exists() else installed


DEFAULT_MODEL = embedded_path("checkpoints/changeanywhere-dubai-256")
DEFAULT_CD_MODEL = embedded_path("checkpoints/cd-changeanywhere-dubai")  # any land-cover change
DEFAULT_CD_BUILDING_MODEL = embedded_path("checkpoints/cd-changeanywhere-dubai-building")  # building change
DEFAULT_SEGMENTER = embedded_path("checkpoints/segmenter-dubai")
DEFAULT_BANK = embedded_path("checkpoints/bank-dubai")  # the default model's object bank (Dubai train split)
EXAMPLES_DIR = embedded_path("assets/examples")

"""Loading weights from a local folder or a Hugging Face Hub repo id, with errors a user can act on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import ParameterError, WeightsNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "checkpoints" / "changeanywhere-dubai-256"


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


def load_pipeline(
    name_or_path: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
):
    """Load a `ChangeAnywherePipeline` from a folder or Hub repo id (the embedded default when None)."""
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    from .generator.pipeline import ChangeAnywherePipeline

    source = str(name_or_path or DEFAULT_MODEL)
    device = resolve_device(device)
    # a Hub repo id is "name" or "org/name"; anything else (existing, absolute, ./x, a/b/c) is a folder
    looks_local = Path(source).exists() or source.startswith((".", "/", "~")) or source.count("/") > 1
    if looks_local and not (Path(source) / "model_index.json").is_file():
        raise WeightsNotFoundError(
            f"no pipeline at {source}: the folder must hold model_index.json (written by save_pretrained); "
            "pass a Hub repo id like 'org/name' or a folder made by `changeanywhere train-diffusion`"
        )
    try:
        pipe = ChangeAnywherePipeline.from_pretrained(source, dtype=resolve_dtype(dtype, device), **kwargs)
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError) as err:
        if looks_local:
            raise WeightsNotFoundError(
                f"could not load the pipeline in {source}: {err}. Is the folder complete (written by "
                "save_pretrained, safetensors weights present)?"
            ) from err
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        hint = (
            "you are offline (HF_HUB_OFFLINE=1) and it is not in the local cache"
            if offline
            else "check the repo id, your network, and `huggingface-cli login` for private repos"
        )
        raise WeightsNotFoundError(f"could not load weights {source!r}: {hint}. ({type(err).__name__})") from err
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def push_folder(folder: Path, repo_id: str, *, repo_type: str = "model", private: bool = False,
                message: str = "Upload with changeanywhere", what: str = "folder") -> str:
    """Create the Hub repo (if needed) and upload `folder` (hidden and temp files left out); returns the commit URL.
    Any failure (network, login, offline) is one `ParameterError` saying how to upload the folder by hand."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
                                 commit_message=message, ignore_patterns=[".*", "**/.*", "*.tmp"])
    except Exception as err:  # network, auth, offline mode: one actionable message
        kind = "" if repo_type == "model" else f" --repo-type {repo_type}"
        raise ParameterError(
            f"`push_to_hub` {repo_id}: upload failed ({type(err).__name__}: {err}). The {what} is saved in "
            f"{folder}; log in with `hf auth login` and upload it with `hf upload {repo_id} {folder}{kind}`",
            "push_to_hub",
        ) from None
    return str(getattr(info, "commit_url", info))


def check_repo_id(repo_id: str) -> None:
    """A Hub repo id ('name' or 'org/name'), checked before any work is done."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ParameterError(f"`push_to_hub` {repo_id!r} is not a Hub repo id ('name' or 'org/name'): {err}",
                             "push_to_hub") from None

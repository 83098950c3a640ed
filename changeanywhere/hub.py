"""Loading weights from a local folder or a Hugging Face Hub repo id, with errors a user can act on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import ParameterError, WeightsNotFoundError
from .runtime import DEFAULT_MODEL, hub_failure_hint, looks_local, resolve_device, resolve_dtype


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
    local = looks_local(source)
    if local and not (Path(source) / "model_index.json").is_file():
        raise WeightsNotFoundError(
            f"no pipeline at {source}: the folder must hold model_index.json (written by save_pretrained); "
            "pass a Hub repo id like 'org/name' or a folder made by `changeanywhere train-diffusion`"
        )
    try:
        pipe = ChangeAnywherePipeline.from_pretrained(source, dtype=resolve_dtype(dtype, device), **kwargs)
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError) as err:
        if local:
            raise WeightsNotFoundError(
                f"could not load the pipeline in {source}: {err}. Is the folder complete (written by "
                "save_pretrained, safetensors weights present)?"
            ) from err
        raise WeightsNotFoundError(
            f"could not load weights {source!r}: {hub_failure_hint()}. ({type(err).__name__})"
        ) from err
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

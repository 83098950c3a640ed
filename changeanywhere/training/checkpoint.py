"""Pickle-free training checkpoints: `checkpoint-<step>/state.safetensors` + `state.json`.

The safetensors file holds model tensors (`model/<name>/<key>`), EMA shadow tensors (`ema/<i>`) and the
optimizer's tensor state (`optim/<param index>/<key>`); the JSON holds the step, the optimizer's param groups
and scalar state, the EMA's scalars and any `extra` data. A checkpoint is written into `<dir>.tmp` and
renamed into place, so a killed run never leaves a half-written `checkpoint-<step>` behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ChangeAnywhereError

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
_CKPT = re.compile(r"checkpoint-(\d+)")


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def save_training_state(
    directory: str | os.PathLike,
    step: int,
    models: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    ema: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the training state to `directory` atomically (via `directory.tmp`); returns the directory."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"model/{name}/{key}"] = _cpu(value)
    meta: dict[str, Any] = {"step": int(step), "models": sorted(models)}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, state in sd["state"].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{pid}/{key}"] = _cpu(value)
                else:
                    scalars.setdefault(str(pid), {})[key] = _jsonable(value)
        meta["optimizer"] = {"param_groups": _jsonable(sd["param_groups"]), "scalar_state": scalars}
    if ema is not None:
        for i, p in enumerate(ema.shadow_params):
            tensors[f"ema/{i}"] = _cpu(p)
        meta["ema"] = {k: _jsonable(v) for k, v in ema.state_dict().items() if k != "shadow_params"}
        meta["ema"]["num_shadow_params"] = len(ema.shadow_params)
    meta["extra"] = _jsonable(dict(extra or {}))
    save_file(tensors, str(tmp / STATE_TENSORS), metadata={"format": "pt", "step": str(int(step))})
    (tmp / STATE_JSON).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    if directory.exists():
        old = directory.with_name(directory.name + ".old.tmp")
        if old.exists():
            shutil.rmtree(old)
        directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old)
    else:
        tmp.rename(directory)
    return directory


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete `checkpoint-<step>` folders of `output_dir`, oldest first (`*.tmp` leftovers are skipped)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _CKPT.fullmatch(p.name)
        if m and p.is_dir() and (p / STATE_JSON).is_file() and (p / STATE_TENSORS).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def prune_checkpoints(output_dir: str | os.PathLike, total_limit: int | None) -> list[Path]:
    """Delete the oldest checkpoints so that at most `total_limit` remain; returns the deleted folders."""
    if not total_limit or total_limit < 1:
        return []
    found = list_checkpoints(output_dir)
    doomed = [p for _, p in found[: max(0, len(found) - total_limit)]]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed


def read_state_json(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / STATE_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ChangeAnywhereError(f"cannot read checkpoint {path}: {err}") from None


def load_training_state(
    directory: str | os.PathLike,
    models: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    ema: Any = None,
) -> tuple[int, dict[str, Any]]:
    """Load a checkpoint written by `save_training_state` in place; returns (step, extra)."""
    directory = Path(directory)
    meta = read_state_json(directory)
    try:
        tensors = load_file(str(directory / STATE_TENSORS))
    except (OSError, RuntimeError) as err:
        raise ChangeAnywhereError(f"cannot read checkpoint {directory / STATE_TENSORS}: {err}") from None
    for name, model in models.items():
        prefix = f"model/{name}/"
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise ChangeAnywhereError(f"checkpoint {directory} holds no weights for {name!r}")
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            raise ChangeAnywhereError(
                f"checkpoint {directory} does not fit the {name!r} model (different preset?): {err}"
            ) from None
    if optimizer is not None and "optimizer" in meta:
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, pid, name = key.split("/", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, scalars in meta["optimizer"]["scalar_state"].items():
            state.setdefault(int(pid), {}).update(scalars)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    if ema is not None and "ema" in meta:
        n = meta["ema"]["num_shadow_params"]
        shadow = [tensors[f"ema/{i}"].float() for i in range(n)]  # a compact (fp16) state holds fp16
        if len(shadow) != len(ema.shadow_params):
            raise ChangeAnywhereError(
                f"checkpoint {directory}: EMA holds {n} tensors, the model {len(ema.shadow_params)}"
            )
        sd = {k: v for k, v in meta["ema"].items() if k != "num_shadow_params"}
        sd["shadow_params"] = shadow
        ema.load_state_dict(sd)  # shadow tensors stay on the CPU: call `ema.to(device)` afterwards
    return int(meta["step"]), dict(meta.get("extra") or {})


def export_compact_state(checkpoint: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Copy a checkpoint at half the size, small enough to commit beside released weights.

    Weights and EMA tensors become fp16; the optimizer's moments bf16 (fp16 would flush Adam's tiny second
    moments to zero); step counters stay fp32. `load_training_state` reads it like a full checkpoint (torch
    casts optimizer state back to the parameters' dtype), so training can resume from released weights.
    """
    src = Path(checkpoint)
    tensors = load_file(str(src / STATE_TENSORS))
    compact = {}
    for key, value in tensors.items():
        if not value.is_floating_point() or key.endswith("/step"):
            compact[key] = value
        elif key.startswith("optim/"):
            compact[key] = value.to(torch.bfloat16)
        else:
            compact[key] = value.to(torch.float16)
    dst = Path(destination)
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(compact, str(tmp / STATE_TENSORS), metadata={"format": "pt", "compact": "fp16/bf16"})
    shutil.copy2(src / STATE_JSON, tmp / STATE_JSON)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst

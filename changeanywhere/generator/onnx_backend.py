"""The pipeline's networks on ONNX Runtime: the UNet (1.5–2.4× faster than eager PyTorch on a small CPU,
bench/cpu_backends.py) and the autoencoder's encoder and decoder (1.7× at 512²). ONNX Runtime is a core
dependency; without it (a trimmed install) `auto` falls back to PyTorch.

Each network is exported once per weights (batch, height and width dynamic) to a cache folder and reused;
results match eager PyTorch to ~1e-5. The pipeline keeps its PyTorch modules (saving, hashing and training are
unchanged): only the sampler loop and `encode_images` / `decode_latents` call these, see
`ChangeAnywherePipeline.set_backend`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from .. import runtime
from ..errors import MissingExtraError

log = logging.getLogger(__name__)
BACKENDS = ("torch", "onnx")


def module_digest(module: torch.nn.Module) -> str:
    """sha256 of a diffusers module's config and fp32 weights: the name of its exported file."""
    h = hashlib.sha256(repr(sorted(dict(getattr(module, "config", {})).items())).encode())
    for key, t in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class _UNet(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample


class _Encode(torch.nn.Module):
    """Images -> raw latents: the posterior mean of a KL autoencoder, the latents of the others."""

    def __init__(self, vae: torch.nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.vae.encode(x)
        return out.latent_dist.mean if hasattr(out, "latent_dist") else out.latents


class _Decode(torch.nn.Module):
    def __init__(self, vae: torch.nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z).sample


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...], names: list[str],
                dynamic_shapes: dict[str, Any], path: Path) -> None:
    """Export `module` (fp32, CPU) to `path` atomically with the given dynamic dimensions."""
    module = copy.deepcopy(module).float().cpu().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    log.debug("exporting to ONNX once for these weights: %s", path)
    quiet = logging.getLogger("torch.onnx")  # it names torchvision ops it skips: not ours to act on
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(module, example, dynamo=True, verbose=False, input_names=names,
                                        output_names=["out"], dynamic_shapes=dynamic_shapes)
        program.save(tmp, external_data=False)
        os.replace(tmp, path)
    finally:
        quiet.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _dims(multiple: int) -> tuple[Any, Any, Any]:
    """(batch, height, width) dynamic dimensions; sides are `multiple` × a free integer."""
    dim = torch.export.Dim
    return dim("batch", min=1, max=4096), multiple * dim("h", min=1, max=4096), multiple * dim("w", min=1, max=4096)


class OnnxSession:
    """One exported network run by ONNX Runtime on the CPU: torch tensors in, one fp32 torch tensor out."""

    def __init__(self, path: Path, names: list[str], threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path, self.names = path, names
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        feed = {}
        for name, x in zip(self.names, inputs, strict=True):
            x = x.detach().cpu()
            feed[name] = (x.to(torch.int64).reshape(()) if name == "t" else x.float().contiguous()).numpy()
        return torch.from_numpy(self.session.run(None, feed)[0]).to(inputs[0].device)


class OnnxNetworks:
    """The UNet, and the autoencoder's encoder and decoder, exported (or loaded from the cache) and run on ONNX
    Runtime. `unet` has the diffusers UNet's call signature; `encode` / `decode` map images <-> raw latents.
    An autoencoder that does not export stays in PyTorch (`encode` / `decode` are then None), with a warning."""

    def __init__(self, unet: torch.nn.Module, vae: torch.nn.Module, unet_multiple: int, vae_factor: int,
                 threads: int | None = None, cache_dir: str | Path | None = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError as err:
            raise MissingExtraError("the onnx backend needs ONNX Runtime, which is not installed: "
                                    "pip install onnx onnxruntime onnxscript") from err
        self.dtype = torch.float32
        self.cache_dir = Path(cache_dir or runtime.cache_dir() / "onnx")
        batch, h, w = _dims(unet_multiple)
        side = 4 * unet_multiple
        x = torch.zeros(2, unet.config.in_channels, side, side)
        t = torch.tensor(500, dtype=torch.int64)
        unet_name, digest = f"unet-{module_digest(unet)}", module_digest(vae)  # hashing the weights: once each
        names = [f"{unet_name}.onnx", f"vae-encoder-{digest}.onnx", f"vae-decoder-{digest}.onnx"]
        if not all((self.cache_dir / n).is_file() for n in names):  # one line, not one per network
            log.info("exporting the UNet and autoencoder to ONNX Runtime once for these weights (about a minute): %s",
                     self.cache_dir)
        self.unet_session = self._session(unet_name, _UNet(unet), (x, t), ["x", "t"],
                                          {"x": {0: batch, 2: h, 3: w}, "t": {}}, threads)
        self.encode: OnnxSession | None = None
        self.decode: OnnxSession | None = None
        try:
            image = torch.zeros(2, 3, 4 * vae_factor, 4 * vae_factor)  # batch 2: a size-1 dim would be fixed
            self.encode = self._session(f"vae-encoder-{digest}", _Encode(vae), (image,), ["x"],
                                        {"x": dict(zip((0, 2, 3), _dims(vae_factor), strict=True))}, threads)
            with torch.no_grad():
                z = _Encode(vae).float().cpu()(image)
            self.decode = self._session(f"vae-decoder-{digest}", _Decode(vae), (z,), ["z"],
                                        {"z": dict(zip((0, 2, 3), _dims(1), strict=True))}, threads)
        except Exception as err:  # noqa: BLE001 - any export failure: the autoencoder stays in PyTorch
            warnings.warn(f"the autoencoder ({type(vae).__name__}) did not export to ONNX, it runs in PyTorch: "
                          f"{type(err).__name__}: {str(err)[:200]}", stacklevel=2)
            self.encode = self.decode = None

    def unet(self, x: torch.Tensor, t: torch.Tensor) -> SimpleNamespace:
        """The exported UNet with the diffusers call convention (`.sample`), so the sampling loop runs either."""
        return SimpleNamespace(sample=self.unet_session(x, t))

    def _session(self, name: str, module: torch.nn.Module, example: tuple[torch.Tensor, ...], names: list[str],
                 dynamic_shapes: dict[str, Any], threads: int | None) -> OnnxSession:
        path = self.cache_dir / f"{name}.onnx"
        if not path.is_file():
            export_onnx(module, example, names, dynamic_shapes, path)
        return OnnxSession(path, names, threads)

    @property
    def paths(self) -> list[Path]:
        """The exported files in use."""
        return [self.unet_session.path, *(s.path for s in (self.encode, self.decode) if s is not None)]

"""The ONNX Runtime backend (`generator.onnx_backend`: UNet, autoencoder encoder and decoder): same pairs as
PyTorch within float tolerance, any image size from one export, exported once per weights, and clear errors when
it cannot run."""

import copy
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed: pip install -e .")

from changeanywhere.errors import MissingExtraError, ParameterError  # noqa: E402
from changeanywhere.runtime import resolve_backend  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def onnx_pipe(tiny_pipe, tmp_path_factory):
    pipe = copy.copy(tiny_pipe)
    pipe.set_backend("onnx", cache_dir=tmp_path_factory.mktemp("onnx"))
    return pipe


def test_onnx_pairs_match_pytorch(tiny_pipe, onnx_pipe, before_pair):
    img, m = before_pair
    after = m.copy()
    after[4:14, 4:14] = 0
    assert onnx_pipe.backend == "onnx" and tiny_pipe.backend == "torch"
    kw = dict(num_inference_steps=4, seed=[3, 4], output_type="pt", guidance_scale=2.0)
    ref = tiny_pipe.change([img] * 2, [m] * 2, [after] * 2, **kw).images
    out = onnx_pipe.change([img] * 2, [m] * 2, [after] * 2, **kw).images
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    assert (out - ref).abs().max() < 1e-4 and not torch.equal(out[0], out[1])


def test_one_export_serves_every_size_and_is_reused(tiny_pipe, onnx_pipe, before_pair):
    _, m = before_pair
    wide = np.concatenate([m, m], 1)[:16]  # 16×64: another shape than the export's example
    ref = tiny_pipe.synthesize(wide, seed=1, num_inference_steps=3, output_type="pt").images
    out = onnx_pipe.synthesize(wide, seed=1, num_inference_steps=3, output_type="pt").images
    assert out.shape == (1, 3, 16, 64)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    paths = onnx_pipe._onnx.paths
    assert [p.name.split("-")[0] for p in paths] == ["unet", "vae", "vae"]  # the autoencoder runs on ONNX too
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = copy.copy(tiny_pipe)
    again.set_backend("onnx", cache_dir=paths[0].parent)
    assert again._onnx.paths == paths and [p.stat().st_mtime_ns for p in paths] == stamps  # loaded, not re-exported
    assert sorted(paths[0].parent.iterdir()) == sorted(paths)  # no temp file left


def test_autoencoder_round_trip_matches_pytorch(tiny_pipe, onnx_pipe):
    images = torch.rand(2, 3, 32, 48) * 2 - 1
    z = tiny_pipe.encode_images(images)
    torch.testing.assert_close(onnx_pipe.encode_images(images), z, rtol=0, atol=1e-4)
    torch.testing.assert_close(onnx_pipe.decode_latents(z), tiny_pipe.decode_latents(z), rtol=0, atol=1e-4)


def test_moving_off_the_cpu_drops_onnx(tiny_pipe, onnx_pipe):
    pipe = copy.deepcopy(tiny_pipe)  # its own modules: .to() moves them in place
    pipe._onnx = onnx_pipe._onnx
    assert pipe.to("cpu").backend == "onnx"
    assert pipe.to("meta").backend == "torch"  # ONNX Runtime runs on the CPU only


def test_backend_errors_and_auto(tiny_pipe, monkeypatch):
    pipe = copy.copy(tiny_pipe)
    with pytest.raises(ParameterError, match="backend"):
        pipe.set_backend("tensorrt")
    assert resolve_backend("auto", "cpu") == "onnx" and resolve_backend("auto", "cuda") == "torch"
    monkeypatch.setenv("CHANGEANYWHERE_BACKEND", "torch")
    assert resolve_backend(None, "cpu") == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were missing
    with pytest.raises(MissingExtraError, match="pip install onnx onnxruntime onnxscript"):
        pipe.set_backend("onnx")
    assert pipe.backend == "torch"

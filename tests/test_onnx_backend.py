"""The ONNX Runtime UNet backend (`generator.onnx_unet`): same pairs as PyTorch within float tolerance, any image
size from one export, exported once per weights, and clear errors when it cannot run."""

import copy
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[test]'")

from changeanywhere.errors import MissingExtraError, ParameterError  # noqa: E402
from changeanywhere.generator.onnx_unet import resolve_unet_backend  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def onnx_pipe(tiny_pipe, tmp_path_factory):
    pipe = copy.copy(tiny_pipe)
    pipe.set_unet_backend("onnx", cache_dir=tmp_path_factory.mktemp("onnx"))
    return pipe


def test_onnx_pairs_match_pytorch(tiny_pipe, onnx_pipe, before_pair):
    img, m = before_pair
    after = m.copy()
    after[4:14, 4:14] = 0
    assert onnx_pipe.unet_backend == "onnx" and tiny_pipe.unet_backend == "torch"
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
    path = onnx_pipe._unet_forward.path
    stamp = path.stat().st_mtime_ns
    again = copy.copy(tiny_pipe)
    again.set_unet_backend("onnx", cache_dir=path.parent)
    assert again._unet_forward.path == path and path.stat().st_mtime_ns == stamp  # loaded, not re-exported
    assert len(list(path.parent.iterdir())) == 1  # no temp file left


def test_backend_errors_and_auto(tiny_pipe, monkeypatch):
    pipe = copy.copy(tiny_pipe)
    with pytest.raises(ParameterError, match="backend"):
        pipe.set_unet_backend("tensorrt")
    assert resolve_unet_backend("auto", "cpu") == "onnx" and resolve_unet_backend("auto", "cuda") == "torch"
    monkeypatch.setenv("CHANGEANYWHERE_UNET_BACKEND", "torch")
    assert resolve_unet_backend(None, "cpu") == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were missing
    with pytest.raises(MissingExtraError, match=r"changeanywhere\[onnx\]"):
        pipe.set_unet_backend("onnx")
    assert pipe.unet_backend == "torch"

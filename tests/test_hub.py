"""Loading pipelines (`changeanywhere.hub`): by repo id from an offline Hub cache, clear errors for missing or broken
folders, the embedded default's attention."""

import shutil

import numpy as np
import pytest

from changeanywhere.errors import WeightsNotFoundError
from changeanywhere.hub import load_pipeline


def test_load_by_repo_id_from_offline_hub_cache(tmp_path, tiny_pipe, before_pair):
    """A repo id resolves through a Hub cache laid out like huggingface_hub's, with HF_HUB_OFFLINE=1."""
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    _, m = before_pair
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--changeanywhere--tiny-test"
    tiny_pipe.save_pretrained(repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    pipe = load_pipeline("changeanywhere/tiny-test", cache_dir=tmp_path / "hub")
    a = tiny_pipe.synthesize(m, num_inference_steps=2, seed=2, output_type="np").images
    b = pipe.synthesize(m, num_inference_steps=2, seed=2, output_type="np").images
    np.testing.assert_array_equal(a, b)
    with pytest.raises(WeightsNotFoundError, match="offline"):
        load_pipeline("changeanywhere/not-there", cache_dir=tmp_path / "hub")
    shutil.rmtree(repo)


def test_missing_or_corrupt_local_folder_is_clear(tmp_path, tiny_pipe):
    with pytest.raises(WeightsNotFoundError, match="model_index.json"):
        load_pipeline(tmp_path / "nothing")
    tiny_pipe.save_pretrained(tmp_path / "broken")
    next((tmp_path / "broken" / "unet").glob("*.safetensors")).write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsNotFoundError, match="is the folder complete|Is the folder complete"):
        load_pipeline(tmp_path / "broken")


def test_unet_attention_is_pytorch_sdpa():
    """The embedded default's attention runs through `scaled_dot_product_attention` (flash / memory-efficient
    kernels on a GPU), diffusers' default processor."""
    from diffusers.models.attention_processor import Attention

    from changeanywhere.hub import load_pipeline

    layers = [m for m in load_pipeline(device="cpu").unet.modules() if isinstance(m, Attention)]
    assert layers and {type(m.processor).__name__ for m in layers} == {"AttnProcessor2_0"}

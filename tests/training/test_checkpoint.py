"""Training checkpoints (`training.checkpoint`): round trip, pruning, the compact copy."""


import torch
from safetensors.torch import load_file

from changeanywhere.training.checkpoint import (
    export_compact_state,
    latest_checkpoint,
    load_training_state,
    prune_checkpoints,
    save_training_state,
)


def test_checkpoint_round_trip_and_pruning(tmp_path):
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ema = EMAModel(model.parameters(), decay=0.9)
    for _ in range(3):
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        ema.step(model.parameters())
    for step in (1, 2, 3):
        save_training_state(tmp_path / f"checkpoint-{step}", step, {"m": model}, opt, ema=ema, extra={"x": step})
    (tmp_path / "checkpoint-9.tmp").mkdir()
    assert prune_checkpoints(tmp_path, 2) == [tmp_path / "checkpoint-1"]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    ema2 = EMAModel(fresh.parameters(), decay=0.5)
    step, extra = load_training_state(tmp_path / "checkpoint-3", {"m": fresh}, opt2, ema=ema2)
    assert step == 3 and extra == {"x": 3}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == 1e-3
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt2.state_dict()["state"][0][k]))
    assert ema2.decay == 0.9 and ema2.optimization_step == 3
    for a, b in zip(ema.shadow_params, ema2.shadow_params, strict=True):
        assert torch.equal(a, b)

    # the compact copy (committed beside released weights) is about half the size and resumes the same run
    compact = export_compact_state(tmp_path / "checkpoint-3", tmp_path / "resume")
    t = load_file(str(compact / "state.safetensors"))
    assert t["model/m/0.weight"].dtype == torch.float16 and t["optim/0/exp_avg_sq"].dtype == torch.bfloat16
    assert t["optim/0/step"].dtype == torch.float32
    opt3 = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    ema3 = EMAModel(fresh.parameters(), decay=0.5)
    assert load_training_state(compact, {"m": fresh}, opt3, ema=ema3)[0] == 3
    v = opt3.state_dict()["state"][0]["exp_avg_sq"]
    assert v.dtype == torch.float32 and torch.allclose(v, opt.state_dict()["state"][0]["exp_avg_sq"], rtol=1e-2)
    assert all(p.dtype == torch.float32 for p in ema3.shadow_params)
    assert torch.allclose(fresh[0].weight, model[0].weight, atol=1e-3)

"""Serialization: state dicts through torch.save / torch.load(weights_only=True),
copy.deepcopy, pickling, and a checkpoint saved on CUDA loaded on a CPU-only machine.

LearnableELU's only state is its ``alpha`` Parameter and two plain attributes
(num_channels, init), so it serializes as nn.PReLU does.

``data/cuda_checkpoint.pt`` was written on a GPU by ``data/make_cuda_checkpoint.py``
(the model of ``checkpoint_model`` after a few Adam steps on CUDA, the optimizer
state, an input and the model's output on it), so the CPU test checks a real
CUDA checkpoint; the GPU test below does the same round trip in-process.
"""

import copy
import io
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU

CUDA_CHECKPOINT = Path(__file__).parent / "data" / "cuda_checkpoint.pt"


def checkpoint_model() -> nn.Sequential:
    """The architecture of data/cuda_checkpoint.pt; input (N, 3, 6, 6)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), LearnableELU(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))


def _trained_model(device) -> nn.Sequential:
    torch.manual_seed(0)
    model = checkpoint_model().to(device)
    with torch.no_grad():
        model[1].alpha.copy_(torch.tensor([0.3, 0.7, 1.1, 1.6]))
    return model


def _save_load(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_dict_round_trip(device):
    model = _trained_model(device)
    state = _save_load(model.state_dict())
    assert "1.alpha" in state and state["1.alpha"].shape == (4,)
    fresh = checkpoint_model().to(device)
    fresh.load_state_dict(state)
    assert isinstance(fresh[1].alpha, nn.Parameter) and fresh[1].alpha.requires_grad
    x = torch.randn(2, 3, 6, 6, device=device)
    assert torch.equal(fresh(x), model(x))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_state_dict_keeps_alpha_dtype(dtype):
    act = LearnableELU(3, init=0.25, dtype=dtype)
    state = _save_load(act.state_dict())
    assert state["alpha"].dtype == dtype
    fresh = LearnableELU(3, dtype=dtype)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.alpha, act.alpha)


def test_state_dict_of_other_channel_count_is_refused():
    state = _save_load(LearnableELU(4).state_dict())
    with pytest.raises(RuntimeError, match="size mismatch for alpha"):  # as nn.PReLU
        LearnableELU(3).load_state_dict(state)


def test_deepcopy(device):
    model = _trained_model(device)
    clone = copy.deepcopy(model)
    assert clone[1].alpha is not model[1].alpha
    assert (clone[1].num_channels, clone[1].init) == (model[1].num_channels, model[1].init)
    x = torch.randn(2, 3, 6, 6, device=device)
    assert torch.equal(clone(x), model(x))
    # The copy trains on its own; the original is untouched.
    clone(x).sum().backward()
    assert clone[1].alpha.grad is not None and model[1].alpha.grad is None
    with torch.no_grad():
        clone[1].alpha.add_(1.0)
    assert torch.equal(model[1].alpha.detach().cpu(), torch.tensor([0.3, 0.7, 1.1, 1.6]))


def test_pickle_and_whole_module_save(device):
    model = _trained_model(device)
    x = torch.randn(2, 3, 6, 6, device=device)
    unpickled = pickle.loads(pickle.dumps(model))
    assert repr(unpickled) == repr(model)
    assert torch.equal(unpickled(x), model(x))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    # A whole module is code, not weights: weights_only=False, as for any nn.Module.
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded(x), model(x))


def _resume_on_cpu(checkpoint: dict) -> None:
    """Load a CUDA checkpoint into a CPU model and optimizer; check outputs; take a step."""
    model = checkpoint_model()
    model.load_state_dict(checkpoint["model"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt.load_state_dict(checkpoint["optimizer"])
    assert all(p.device.type == "cpu" for p in model.parameters())
    with torch.no_grad():
        out = model(checkpoint["input"])
    torch.testing.assert_close(out, checkpoint["output"], rtol=1e-5, atol=1e-6)
    alpha_before = model[1].alpha.detach().clone()
    opt.zero_grad()
    model(checkpoint["input"]).square().mean().backward()
    opt.step()
    assert not torch.equal(model[1].alpha.detach(), alpha_before)


def test_cuda_checkpoint_loads_on_cpu():
    checkpoint = torch.load(CUDA_CHECKPOINT, map_location="cpu", weights_only=True)
    assert checkpoint["saved_on"].startswith("cuda")
    assert checkpoint["model"]["1.alpha"].device.type == "cpu"
    _resume_on_cpu(checkpoint)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_checkpoint_round_trip_in_process():
    buffer = io.BytesIO()
    torch.save(make_cuda_checkpoint(), buffer)
    buffer.seek(0)
    _resume_on_cpu(torch.load(buffer, map_location="cpu", weights_only=True))


def make_cuda_checkpoint() -> dict:
    """A few Adam steps of checkpoint_model on CUDA, as a weights-only checkpoint dict."""
    model = _trained_model("cuda")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(4, 3, 6, 6, device="cuda")
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    # Without TF32 convolutions, so a CPU run reproduces the output to fp32 rounding.
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out = model(x)
    return {
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "input": x, "output": out, "saved_on": str(x.device),
    }  # fmt: skip

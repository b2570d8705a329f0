"""The device guard: the device made current before a launch, negated views resolved, capture."""

import contextlib

import torch

from elu_triton.backends import device_guard


class _FakeDeviceModule:
    """A device type's module (as torch.get_device_module gives) that records its switches."""

    def __init__(self, current: int):
        self.current = current
        self.entered = []

    def current_device(self) -> int:
        return self.current

    @contextlib.contextmanager
    def device(self, device: torch.device):
        previous, self.current = self.current, device.index if device.index is not None else -1
        self.entered.append(device)
        try:
            yield
        finally:
            self.current = previous

    def is_current_stream_capturing(self) -> bool:
        return self.current == 7  # "device 7 captures"


def _recording_launcher(calls):
    """A launcher guarded as the Triton backend's passes are; records what it launched with."""

    def launcher(x, alpha, launch=None):
        if device_guard.guard_needed(x, alpha):
            return device_guard.run_guarded(launcher, 2, x, alpha, launch)
        calls.append((device_guard.is_current_device(x), x.is_neg(), alpha.is_neg(), launch))
        return x

    return launcher


def test_another_device_is_made_current_for_the_launch(monkeypatch):
    # Meta tensors stand in for a second GPU: their get_device() is -1, which
    # the fake module's current device (0) is not.
    fake = _FakeDeviceModule(current=0)
    monkeypatch.setitem(device_guard._modules, "meta", fake)
    calls = []
    x = torch.empty(2, 3, device="meta")
    _recording_launcher(calls)(x, torch.empty(3, device="meta"), "launch")
    assert calls == [(True, False, False, "launch")]
    assert fake.entered == [x.device] and fake.current == 0  # switched back after


def test_the_current_device_is_not_switched(monkeypatch):
    fake = _FakeDeviceModule(current=-1)
    monkeypatch.setitem(device_guard._modules, "meta", fake)
    calls = []
    _recording_launcher(calls)(torch.empty(2, device="meta"), torch.empty(1, device="meta"))
    assert calls == [(True, False, False, None)] and fake.entered == []


def test_one_tensor_is_asked_about_alone():
    x = torch.ones(1)
    assert not device_guard.guard_needed(x)
    assert device_guard.guard_needed(torch._neg_view(x))


def test_a_negated_third_tensor_needs_the_guard():
    x = torch.ones(1)
    assert not device_guard.guard_needed(x, x, x)
    assert device_guard.guard_needed(x, x, torch._neg_view(x))


def test_negated_views_reach_the_launcher_resolved():
    calls = []
    x, alpha = torch.randn(2, 3), torch.rand(3)
    y = _recording_launcher(calls)(torch._neg_view(x), torch._neg_view(alpha))
    assert calls == [(True, False, False, None)]
    assert torch.equal(y, -x)  # resolved: the values of the view, in memory of their own


def test_arguments_past_the_tensors_pass_through_untouched():
    calls = []
    launch = torch._neg_view(torch.ones(1))  # not among the guarded tensors
    _recording_launcher(calls)(torch._neg_view(torch.ones(1)), torch.ones(1), launch)
    assert calls[0][3] is launch and launch.is_neg()


def test_capture_is_asked_of_the_device_types_module(monkeypatch):
    fake = _FakeDeviceModule(current=0)
    monkeypatch.setitem(device_guard._modules, "meta", fake)
    assert device_guard.is_capturing(torch.device("meta", 7))
    assert not device_guard.is_capturing(torch.device("meta", 0))
    assert fake.current == 0


def test_devices_without_capture_never_capture():
    assert not device_guard.is_capturing(torch.device("cpu"))
    assert not device_guard.is_capturing(torch.device("meta"))  # no module at all

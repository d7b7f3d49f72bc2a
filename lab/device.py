"""The one place that picks the torch device (DESIGN.md, principle 6).

Order: an explicit request (CLI `--device`, or `set_device`), then the environment variable
`NLL_DEVICE` (`cpu`, `cuda`, `cuda:1`, `mps`), then CUDA, Apple MPS, CPU. Nothing else in
the code base chooses a device: it calls `get_device()`.
"""
from __future__ import annotations

import os

import torch

ENV_VAR = "NLL_DEVICE"
_override: str | None = None


class DeviceError(ValueError):
    pass


def set_device(name: str | None) -> None:
    """Force a device for this process (the CLI flag); None returns to the automatic choice."""
    global _override
    if name is not None:
        _validate(name)
    _override = name


def _validate(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} was asked for but CUDA is not available here")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceError(f"device {name!r} was asked for but Apple MPS is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}: use cpu, cuda, cuda:N or mps")
    return dev


def get_device() -> torch.device:
    requested = _override or os.environ.get(ENV_VAR) or None
    if requested:
        return _validate(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def configure_threads() -> int:
    """On a CPU, one intra-op thread unless `NLL_THREADS` says otherwise: the default models are
    tiny, and on a small shared machine one thread is several times faster than many (HOPE 1.8 →
    13 steps/s on 2 cores). The app, the CLI and the tests all call this, so they compute with the
    same thread count and give the same numbers. Returns the thread count in use."""
    threads = os.environ.get("NLL_THREADS")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise DeviceError(f"NLL_THREADS = {threads!r}: must be a positive whole number")
        torch.set_num_threads(int(threads))
    elif get_device().type == "cpu":
        torch.set_num_threads(1)
    return torch.get_num_threads()


def device_name(device: torch.device | None = None) -> str:
    """A human name for the badge: the GPU's model name, or 'CPU (N threads)'."""
    device = device or get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def describe() -> dict:
    dev = get_device()
    return {"type": dev.type, "name": device_name(dev), "torch": torch.__version__}

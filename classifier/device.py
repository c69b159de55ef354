"""Which device runs the backbone: a CUDA GPU when asked for, or with "auto" when torch is
installed and sees one; otherwise the CPU, where the model's ONNX graphs run on ONNX Runtime and
torch is not needed (a serving install has none). On a GPU the backbone runs in torch, and the
small head and the localiser stay on the CPU."""
from __future__ import annotations

import importlib.util

from classifier.errors import DeviceUnavailable

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """"cpu" or "cuda". Only "auto" and "cuda" import torch, and only where it is installed."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {name!r}; expected one of {DEVICE_CHOICES}")
    if name == "cpu":
        return name
    if importlib.util.find_spec("torch") is None:
        if name == "cuda":
            raise DeviceUnavailable("A CUDA GPU was asked for, but torch is not installed here (a serving "
                                    "install runs on the CPU). Use --device cpu or auto.")
        return "cpu"
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"A CUDA GPU was asked for, but torch {torch.__version__} sees none "
                                f"(CUDA build: {torch.version.cuda or 'none'}). Use --device cpu or auto.")
    return "cuda" if torch.cuda.is_available() else "cpu"


def describe(device: str, threads: int) -> str:
    """For people: which device, and on the CPU how many threads."""
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({threads} threads)"

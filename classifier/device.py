"""Which torch device runs the backbone: a CUDA GPU when asked for, or with "auto" when
one is present; otherwise the CPU. The small head and the localiser always run on the CPU."""
from __future__ import annotations

import torch

from classifier.errors import DeviceUnavailable

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {name!r}; expected one of {DEVICE_CHOICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"A CUDA GPU was asked for, but torch {torch.__version__} sees none "
                                f"(CUDA build: {torch.version.cuda or 'none'}). Use --device cpu or auto.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def describe(device: torch.device) -> str:
    """For people: which device, and on the CPU how many threads."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"

"""The artifacts' safetensors weights in torch modules: what training writes and reads, and what the
torch runtime (a GPU) and the ONNX export load. Serving on a CPU needs none of it (``classifier.graphs``)."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from classifier import artifact
from classifier.artifact import HEAD, LOCALISER, ArtifactFormat, ModelInfo
from classifier.errors import ModelUnreadable
from classifier.head import MLPHead
from classifier.localise import Localiser
from classifier.networks import TorchForward, localiser_network

Module = TypeVar("Module", bound=torch.nn.Module)


class TrainedModel(ModelInfo):
    """A model's metadata with its head, in torch."""

    def __init__(self, head: MLPHead, metadata: dict):
        super().__init__(metadata)
        self.head = head


def save_model(model: TrainedModel, out_dir: Path, localiser_dir: Path | None = None,
               graphs: dict[str, str] | None = None) -> Path:
    """The model: its head's weights, a copy of the localiser it was trained with (``localiser_dir``)
    when it localises, and its metadata with the checksums of its ONNX ``graphs`` (written into
    ``out_dir`` before, ``classifier.export``), last, so a server never takes a half-written folder
    for a model."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact.copy_localiser(localiser_dir, model.preprocessing.localiser, out_dir)
    _save_weights(HEAD, out_dir, model.head)
    artifact.write_metadata(HEAD, out_dir, model.metadata | ({"graphs": graphs} if graphs else {}))
    return out_dir


def load_model(model_dir: Path) -> TrainedModel:
    info = artifact.read_model(model_dir)
    h = info.metadata["head"]
    head = MLPHead(h["in_features"], len(info.classes), hidden=h["hidden"], dropout=h["dropout"],
                   references=h.get("references", 0), members=h.get("members", 1))
    _load_weights(HEAD, Path(model_dir), head)
    return TrainedModel(head, info.metadata)


def save_localiser(net: torch.nn.Module, config: dict, out_dir: Path = artifact.LOCALISER_DIR) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_weights(LOCALISER, out_dir, net)
    artifact.write_metadata(LOCALISER, out_dir, config)
    return out_dir


def load_localiser_network(folder: Path = artifact.LOCALISER_DIR) -> tuple[torch.nn.Module, dict]:
    """A localiser's network, its weights loaded, in eval mode, and its ``localiser.json``."""
    config = artifact.read_localiser(folder)
    return _load_weights(LOCALISER, Path(folder), localiser_network(config)), config


def load_localiser(folder: Path = artifact.LOCALISER_DIR) -> Localiser:
    """A localiser that runs its network in torch, on the CPU: training's."""
    net, config = load_localiser_network(folder)
    return Localiser(config, TorchForward(net))


def _save_weights(fmt: ArtifactFormat, out_dir: Path, module: torch.nn.Module) -> None:
    tmp = out_dir / (fmt.weights + ".tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, tmp)
    tmp.replace(out_dir / fmt.weights)


def _load_weights(fmt: ArtifactFormat, folder: Path, module: Module) -> Module:
    path = folder / fmt.weights
    try:
        module.load_state_dict(load_file(path), strict=True)
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise ModelUnreadable(
            f"{path} is missing, damaged or does not fit {folder / fmt.metadata} "
            f"({(str(exc).splitlines() or [type(exc).__name__])[0]}). Retrain the model.") from exc
    return module.eval()

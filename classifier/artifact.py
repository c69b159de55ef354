"""Trained models on disk, and the one set of rules for loading them.

Both artifacts, the classifier's head and the document localiser, are a folder with
safetensors weights (loading never unpickles anything) and a JSON metadata file with
a schema version: everything else a server needs to use the weights correctly.
A model is self-contained: the localiser it was trained with is copied into it
(``MODEL_LOCALISER``), so replacing the shipped localiser breaks no model already trained.
A model that is missing, damaged or made for other code or parts raises a
``ClassifierError`` that says which, never a bare KeyError or ValueError.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from classifier.backbone import BackboneSpec, file_sha256
from classifier.bands import Calibration
from classifier.errors import ModelMismatch, ModelNotFound, ModelUnreadable
from classifier.head import MLPHead
from classifier.localise import Localiser, decode_version
from classifier.openset import OpenSetRule
from classifier.preprocessing import Preprocessing

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # trained heads: MODELS_DIR/<version>/
LOCALISER_DIR = MODELS_DIR / "localiser"  # the shipped localiser, kept in git: training's default
MODEL_LOCALISER = "localiser"  # the folder, inside a model, of the localiser it was trained with


@dataclass(frozen=True)
class ArtifactFormat:
    """The files of one kind of artifact and the metadata schema this code reads."""

    weights: str
    metadata: str
    schema_version: int


HEAD = ArtifactFormat("head.safetensors", "metadata.json", 1)
LOCALISER = ArtifactFormat("localiser.safetensors", "localiser.json", 1)

Module = TypeVar("Module", bound=torch.nn.Module)


@dataclass(frozen=True)
class DocumentType:
    """One type a model answers with, as the service lists it for people and programs."""

    code: str  # the class folder name, e.g. "lva_passport"
    name: str  # in plain words, e.g. "Passport of Latvia"
    training_images: int | None  # None: the model did not record it
    validation_accuracy: float | None  # share of its validation views answered with it; None: none, or not recorded


@dataclass
class TrainedModel:
    head: MLPHead
    metadata: dict

    @property
    def classes(self) -> list[str]:
        return self.metadata["classes"]

    @property
    def display_names(self) -> dict[str, str]:
        return self.metadata["display_names"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def document_types(self) -> list[DocumentType]:
        """The types in the model's own order, with what training recorded of each."""
        images = self.metadata.get("dataset", {}).get("per_class", {})
        accuracy = self.metadata.get("validation", {}).get("per_class", {})
        return [DocumentType(code, self.display_names[code], images.get(code), accuracy.get(code))
                for code in self.classes]

    @property
    def backbone(self) -> BackboneSpec:
        return BackboneSpec(**self.metadata["backbone"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(**self.metadata["preprocessing"])

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.metadata["calibration"])

    @property
    def open_set(self) -> OpenSetRule | None:
        """None for a model trained before open-set answers: it names a type for every image."""
        rule = self.metadata.get("open_set")
        return OpenSetRule.from_dict(rule) if rule else None

    @property
    def temperature(self) -> float:
        return float(self.metadata.get("temperature", 1.0))


def save_model(model: TrainedModel, out_dir: Path, localiser_dir: Path | None = None) -> Path:
    """The model, with a copy of the localiser it was trained with (``localiser_dir``) when it localises;
    its metadata is written last, so a server never takes a half-written folder for a model."""
    out_dir = Path(out_dir)
    own = out_dir / MODEL_LOCALISER
    if model.preprocessing.localiser:
        if localiser_dir is None or localiser_id(localiser_dir) != model.preprocessing.localiser:
            raise ModelMismatch(f"{localiser_dir} does not hold the localiser this model was trained with "
                                f"({model.preprocessing.localiser}).")
        _copy_artifact(LOCALISER, Path(localiser_dir), own)
    elif own.exists():
        shutil.rmtree(own)  # left by an earlier model in this folder
    return _write(HEAD, out_dir, model.head, model.metadata)


def load_model(model_dir: Path) -> TrainedModel:
    model_dir = Path(model_dir)
    metadata = _read_metadata(HEAD, model_dir, "No trained model in {dir}. Train one with "
                                                "`python manage.py train_classifier DATA_DIR` (see README.md).")

    def build(meta: dict) -> TrainedModel:
        h = meta["head"]
        model = TrainedModel(MLPHead(h["in_features"], len(meta["classes"]), hidden=h["hidden"],
                                     dropout=h["dropout"], references=h.get("references", 0)), meta)
        _ = model.backbone, model.preprocessing, model.calibration, model.version, model.open_set  # fail now
        return model

    model = _build(HEAD, model_dir, metadata, build)
    _load_weights(HEAD, model_dir, model.head)
    return model


def make_current(model_dir: Path) -> Path:
    """Point `current` beside the model at it, atomically, so a server started
    with the default IDCLASS_MODEL_DIR picks up the newest model."""
    model_dir = Path(model_dir).resolve()
    link = model_dir.parent / "current"
    tmp = model_dir.parent / f".current-{model_dir.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(model_dir.name)
    os.replace(tmp, link)
    return link


class ModelIdentity(NamedTuple):
    """Which model a folder holds: equal identities, the same model files."""

    folder: str  # the real folder, through any `current` link
    files: tuple[tuple[str, int, int, int, int], ...]  # (path in it, device, inode, size, mtime_ns) of each file


def model_identity(model_dir: Path) -> ModelIdentity | None:
    """Which model `model_dir` holds now, cheaply (stats, no file read); None without one.
    Any file of the folder replaced (the head, its localiser) makes another identity; files
    being written (``*.tmp``) and hidden ones are not the model's."""
    real = os.path.realpath(model_dir)
    if not os.path.isfile(os.path.join(real, HEAD.metadata)):
        return None
    files = []
    for folder, subfolders, names in os.walk(real):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".") and not n.endswith(".tmp")):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # replaced or removed while we looked: the next look sees what is there
                continue
            files.append((os.path.relpath(path, real), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return ModelIdentity(real, tuple(files))


def save_localiser(net: torch.nn.Module, config: dict, out_dir: Path = LOCALISER_DIR) -> Path:
    return _write(LOCALISER, Path(out_dir), net, config)


def load_localiser(folder: Path = LOCALISER_DIR) -> Localiser:
    folder = Path(folder)
    config = _read_metadata(LOCALISER, folder, "No document localiser in {dir}; "
                                                "`python manage.py train_localiser` makes one.")
    localiser = _build(LOCALISER, folder, config, Localiser.untrained)
    _load_weights(LOCALISER, folder, localiser.net)
    return localiser


def localiser_id(folder: Path = LOCALISER_DIR) -> str:
    """A localiser's identity: its weights and how their heatmaps become corners (either
    changes the documents it cuts out), or "" where there is none."""
    weights = Path(folder) / LOCALISER.weights
    if not weights.is_file():
        return ""
    try:
        decode = decode_version(json.loads((Path(folder) / LOCALISER.metadata).read_text()))
    except (OSError, ValueError, TypeError, AttributeError):  # missing or damaged: an identity no model has
        decode = "?"
    return f"sha256:{file_sha256(weights)}+decode{decode}"


def model_localiser(model_dir: Path, prep: Preprocessing) -> Localiser | None:
    """The localiser a model was trained with: its own copy (``MODEL_LOCALISER``), or, for a model
    trained before models carried one, the shipped one where that is the same. Another would show
    the head other inputs than it learned from, so that is refused."""
    if not prep.localiser:
        return None
    own = Path(model_dir) / MODEL_LOCALISER
    if own.exists():
        if localiser_id(own) != prep.localiser:
            raise ModelMismatch(f"The localiser in {own} is missing, damaged or not the one this model was "
                                f"trained with ({prep.localiser}). Retrain the model.")
        return load_localiser(own)
    if localiser_id(LOCALISER_DIR) != prep.localiser:
        raise ModelMismatch(
            f"This model was trained with localiser {prep.localiser} and holds no copy of it (models trained "
            f"before idclass copied it into them); {LOCALISER_DIR} holds {localiser_id(LOCALISER_DIR) or 'none'}. "
            f"Put that localiser's two files in {own}/ (docs/training.md, \"Models trained before\", says how "
            "to find them in git), or retrain the model.")
    return load_localiser(LOCALISER_DIR)


def _write(fmt: ArtifactFormat, out_dir: Path, module: torch.nn.Module, metadata: dict) -> Path:
    """Weights, then the metadata that makes the folder a model, each replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (fmt.weights + ".tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, tmp)
    os.replace(tmp, out_dir / fmt.weights)
    tmp = out_dir / (fmt.metadata + ".tmp")
    tmp.write_text(json.dumps(metadata | {"schema_version": fmt.schema_version}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / fmt.metadata)
    return out_dir


def _copy_artifact(fmt: ArtifactFormat, source: Path, out_dir: Path) -> None:
    """An artifact's files copied as `_write` writes them: each replaced atomically, the metadata last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (fmt.weights, fmt.metadata):
        tmp = out_dir / (name + ".tmp")
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, out_dir / name)


def _read_metadata(fmt: ArtifactFormat, folder: Path, missing: str) -> dict:
    path = folder / fmt.metadata
    if not path.is_file():
        raise ModelNotFound(missing.format(dir=folder))
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnreadable(f"{path} cannot be read ({exc}). Retrain the model.") from exc
    if not isinstance(metadata, dict):
        raise ModelUnreadable(f"{path} is not a model's metadata. Retrain the model.")
    if metadata.get("schema_version") != fmt.schema_version:
        raise ModelMismatch(f"{path} has schema version {metadata.get('schema_version')}; "
                            f"this code reads version {fmt.schema_version}. Retrain the model.")
    return metadata


def _build(fmt: ArtifactFormat, folder: Path, metadata: dict, build: Callable[[dict], object]):
    try:
        return build(metadata)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelUnreadable(f"{folder / fmt.metadata} lacks or garbles {exc}. Retrain the model.") from exc


def _load_weights(fmt: ArtifactFormat, folder: Path, module: Module) -> Module:
    path = folder / fmt.weights
    try:
        module.load_state_dict(load_file(path), strict=True)
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise ModelUnreadable(f"{path} is missing, damaged or does not fit {folder / fmt.metadata} "
                              f"({(str(exc).splitlines() or [type(exc).__name__])[0]}). Retrain the model.") from exc
    return module.eval()

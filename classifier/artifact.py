"""Trained models on disk, and the one set of rules for reading them.

Both artifacts, the classifier's head and the document localiser, are a folder with
safetensors weights (loading never unpickles anything) and a JSON metadata file with
a schema version: everything else a server needs to use the weights correctly.
A model is self-contained: the localiser it was trained with is copied into it
(``MODEL_LOCALISER``), so replacing the shipped localiser breaks no model already trained,
and it holds its networks as ONNX graphs (``GRAPHS``), the backbone's weights included, with
their checksums in its metadata: what a server runs, without torch; and its types' design
references (``designs.DESIGNS_FILE``, plain arrays), checksummed alike.
A model that is missing, damaged or made for other code or parts raises a
``ClassifierError`` that says which, never a bare KeyError or ValueError.

This module reads and writes files and JSON only; ``classifier.weights`` puts the safetensors
weights into torch modules, for training and for the torch runtime.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from classifier.bands import Calibration
from classifier.designs import DESIGNS_FILE, DesignRule
from classifier.errors import ModelMismatch, ModelNotFound, ModelUnreadable
from classifier.localise import decode_version
from classifier.openset import OpenSetRule
from classifier.preprocessing import Preprocessing

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # trained heads: MODELS_DIR/<version>/
LOCALISER_DIR = MODELS_DIR / "localiser"  # the shipped localiser, kept in git: training's default
MODEL_LOCALISER = "localiser"  # the folder, inside a model, of the localiser it was trained with
# A model's networks as ONNX graphs, by name: each file's sha256 is in metadata.json's "graphs"
GRAPHS = {"localiser": "localiser.onnx", "backbone": "backbone.onnx", "head": "head.onnx"}
EXPORT_HINT = "`python manage.py export_model MODEL_DIR` writes them (docs/training.md, \"export_model\")"


@dataclass(frozen=True)
class ArtifactFormat:
    """The files of one kind of artifact and the metadata schema this code reads."""

    weights: str
    metadata: str
    schema_version: int


HEAD = ArtifactFormat("head.safetensors", "metadata.json", 1)
LOCALISER = ArtifactFormat("localiser.safetensors", "localiser.json", 1)


@dataclass(frozen=True)
class BackboneSpec:
    """Which backbone and which weights: what a trained head depends on."""

    name: str
    weights_id: str  # "sha256:<hex>" of a local file, torchvision's enum name, or "random"


@dataclass(frozen=True)
class DocumentType:
    """One type a model answers with, as the service lists it for people and programs."""

    code: str  # the class folder name, e.g. "lva_passport"
    name: str  # in plain words, e.g. "Passport of Latvia"
    training_images: int | None  # None: the model did not record it
    validation_accuracy: float | None  # share of its validation views answered with it; None: none, or not recorded


@dataclass
class ModelInfo:
    """A trained model's metadata.json, read: what it answers and how."""

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
        return Preprocessing.from_metadata(self.metadata["preprocessing"])

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

    @property
    def designs(self) -> dict | None:
        """Its design references' "sha256", and how its answers use them (``design_rule``); None for a model
        trained before them, whose answers' bands come from the score alone."""
        return self.metadata.get("designs")

    @property
    def design_rule(self) -> DesignRule | None:
        designs = self.designs
        return DesignRule.from_dict(designs) if designs else None

    @property
    def graphs(self) -> dict[str, str]:
        """The sha256 of each of its ONNX graphs (``GRAPHS``); empty for a model exported before them."""
        return self.metadata.get("graphs", {})


def read_model(model_dir: Path) -> ModelInfo:
    """A model's metadata, checked: everything serving needs but the networks."""
    model_dir = Path(model_dir)
    metadata = read_metadata(HEAD, model_dir, "No trained model in {dir}. Train one with "
                                               "`python manage.py train_classifier DATA_DIR` (see README.md).")

    def build(meta: dict) -> ModelInfo:
        model = ModelInfo(meta)
        _ = model.backbone, model.preprocessing, model.calibration, model.version, model.open_set  # fail now
        _ = model.designs and (model.designs["sha256"], model.design_rule)
        _ = meta["head"]["in_features"], len(model.classes), dict(model.display_names)
        return model

    return _build(HEAD, model_dir, metadata, build)


def graph_file(model_dir: Path, model: ModelInfo, name: str) -> Path:
    """One of the model's ONNX graphs (``GRAPHS``), checked against the sha256 its metadata records."""
    path = Path(model_dir) / GRAPHS[name]
    if name not in model.graphs:
        raise ModelMismatch(f"The model in {model_dir} has no ONNX graphs (it was trained before idclass served "
                            f"them); {EXPORT_HINT}.")
    if not path.is_file() or f"sha256:{file_sha256(path)}" != model.graphs[name]:
        raise ModelUnreadable(f"{path} is missing, damaged or not the graph this model was exported with; "
                              f"{EXPORT_HINT}.")
    return path


def designs_file(model_dir: Path, model: ModelInfo) -> Path:
    """The model's design references (``designs.DESIGNS_FILE``), checked against the sha256 its metadata records."""
    path = Path(model_dir) / DESIGNS_FILE
    if not path.is_file() or f"sha256:{file_sha256(path)}" != model.designs["sha256"]:
        raise ModelUnreadable(f"{path} is missing, damaged or not the one this model was trained with. "
                              "Retrain the model.")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    Any file of the folder replaced (the head, its localiser, a graph) makes another identity;
    files being written (``*.tmp``) and hidden ones are not the model's."""
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


def read_localiser(folder: Path = LOCALISER_DIR) -> dict:
    """A localiser's ``localiser.json``, checked."""
    folder = Path(folder)
    config = read_metadata(LOCALISER, folder, "No document localiser in {dir}; "
                                              "`python manage.py train_localiser` makes one.")

    def check(c: dict) -> dict:
        _ = int(c["image_size"]), int(c["pad"]), float(c["found_threshold"]), tuple(c["widths"]), decode_version(c)
        return c

    return _build(LOCALISER, folder, config, check)


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


def model_localiser_dir(model_dir: Path, prep: Preprocessing) -> Path | None:
    """The folder of the localiser a model was trained with: its own copy (``MODEL_LOCALISER``), or,
    for a model trained before models carried one, the shipped one where that is the same. Another
    would show the head other inputs than it learned from, so that is refused."""
    if not prep.localiser:
        return None
    own = Path(model_dir) / MODEL_LOCALISER
    if own.exists():
        if localiser_id(own) != prep.localiser:
            raise ModelMismatch(f"The localiser in {own} is missing, damaged or not the one this model was "
                                f"trained with ({prep.localiser}). Retrain the model.")
        return own
    if localiser_id(LOCALISER_DIR) != prep.localiser:
        raise ModelMismatch(
            f"This model was trained with localiser {prep.localiser} and holds no copy of it (models trained "
            f"before idclass copied it into them); {LOCALISER_DIR} holds {localiser_id(LOCALISER_DIR) or 'none'}. "
            f"Put that localiser's two files in {own}/ (docs/training.md, \"Models trained before\", says how "
            "to find them in git), or retrain the model.")
    return LOCALISER_DIR


def copy_localiser(localiser_dir: Path, expected_id: str, out_dir: Path) -> None:
    """The localiser a model was trained with (``expected_id``), copied into the model's folder, or
    the folder's earlier copy removed for a model that does not localise (``expected_id`` "")."""
    own = Path(out_dir) / MODEL_LOCALISER
    if not expected_id:
        if own.exists():
            shutil.rmtree(own)  # left by an earlier model in this folder
        return
    if localiser_dir is None or localiser_id(localiser_dir) != expected_id:
        raise ModelMismatch(f"{localiser_dir} does not hold the localiser this model was trained with "
                            f"({expected_id}).")
    own.mkdir(parents=True, exist_ok=True)
    for name in (LOCALISER.weights, LOCALISER.metadata):  # each replaced atomically, the metadata last
        tmp = own / (name + ".tmp")
        shutil.copyfile(Path(localiser_dir) / name, tmp)
        os.replace(tmp, own / name)


def write_metadata(fmt: ArtifactFormat, out_dir: Path, metadata: dict) -> None:
    """The metadata that makes a folder an artifact, with its schema version, replaced atomically:
    written after everything else, so a reader never takes a half-written folder for one."""
    tmp = Path(out_dir) / (fmt.metadata + ".tmp")
    tmp.write_text(json.dumps(metadata | {"schema_version": fmt.schema_version}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, Path(out_dir) / fmt.metadata)


def read_metadata(fmt: ArtifactFormat, folder: Path, missing: str) -> dict:
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

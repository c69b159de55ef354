"""Labelled image folders: DATA_DIR/<type>/<image>, with an optional labels.json."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from classifier.errors import DatasetError
from classifier.images import image_files

# MIDV-2020's ten types, the reference task; any other folder name is shown as
# labels.json says, or as the folder name itself.
DEFAULT_DISPLAY_NAMES = {
    "alb_id": "ID Card of Albania",
    "aze_passport": "Passport of Azerbaijan",
    "esp_id": "ID Card of Spain",
    "est_id": "ID Card of Estonia",
    "fin_id": "ID Card of Finland",
    "grc_passport": "Passport of Greece",
    "lva_passport": "Passport of Latvia",
    "rus_internalpassport": "Internal passport of Russia",
    "srb_passport": "Passport of Serbia",
    "svk_id": "ID Card of Slovakia",
}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str
    sha256: str


@dataclass
class Dataset:
    images: list[LabelledImage]
    classes: list[str]
    display_names: dict[str, str]
    dirs: list[Path]  # the folders it was read from

    def targets(self) -> list[int]:
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[img.label] for img in self.images]

    def fingerprint(self) -> str:
        """Changes whenever an image or its label does."""
        digest = hashlib.sha256()
        for img in sorted(self.images, key=lambda i: (i.label, i.sha256)):
            digest.update(f"{img.label}:{img.sha256}\n".encode())
        return digest.hexdigest()


def scan(data_dirs: list[Path], classes: list[str] | None = None) -> Dataset:
    """All labelled images under the given folders; folders of the same name merge.

    With `classes`, images of other types are left out (evaluating a model on
    data that has types it never learned).
    """
    images: list[LabelledImage] = []
    names: dict[str, str] = {}
    others: set[str] = set()  # type folders left out: not in `classes`
    dirs = [Path(d) for d in data_dirs]
    for data_dir in dirs:
        if not data_dir.is_dir():
            raise DatasetError(f"{data_dir} is not a folder of class folders")
        labels_file = data_dir / "labels.json"
        if labels_file.is_file():
            names.update(json.loads(labels_file.read_text()))
        for class_dir in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if classes is not None and class_dir.name not in classes:
                others.add(class_dir.name)
                continue
            for path in image_files(class_dir):
                images.append(LabelledImage(path, class_dir.name, hashlib.sha256(path.read_bytes()).hexdigest()))
    found = sorted({img.label for img in images})
    if not found and others:
        raise DatasetError(f"none of the types under {', '.join(map(str, data_dirs))} is one this model knows: "
                           f"found {', '.join(sorted(others))}; the model knows {', '.join(classes)}. To check "
                           "that images of other types are turned away, pass their folder with --unknown.")
    if not found:
        raise DatasetError(f"no labelled images under {', '.join(map(str, data_dirs))} "
                           "(expected DATA_DIR/<type>/<image>.jpg)")
    display = {c: names.get(c) or DEFAULT_DISPLAY_NAMES.get(c) or c for c in found}
    return Dataset(images, classes if classes is not None else found, display, dirs)

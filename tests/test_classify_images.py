"""classify_images: a folder or files in, one CSV row per image out, bad files included."""
import csv
import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from classifier.predictor import Predictor
from classifier.results import BATCH_COLUMNS, SCORE_DECIMALS
from tests.web import jpeg

# A batched forward pass may differ from a single image's in the score's last float32 bit
# (measured: at most 1.2e-7), which can move the CSV's last decimal by one.
LAST_DIGIT = 1.01 * 10 ** -SCORE_DECIMALS
BROKEN = {"empty.jpg": (b"", "empty"), "truncated.jpg": (jpeg(800, 600)[:1500], "corrupt"),
          "notes.jpg": (b"just some text, not a picture", "not_an_image")}


@pytest.fixture(scope="module")
def backlog(demo_train_dir, tmp_path_factory):
    """A few demo photos in nested folders, and broken files among them."""
    root = tmp_path_factory.mktemp("backlog")
    for folder in sorted(p for p in demo_train_dir.iterdir() if p.is_dir())[:3]:
        (root / folder.name).mkdir()
        for image in sorted(folder.glob("*.jpg"))[:2]:
            shutil.copy(image, root / folder.name / image.name)
    for name, (data, _) in BROKEN.items():
        (root / "incoming" / name).parent.mkdir(exist_ok=True)
        (root / "incoming" / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def served(trained_model_dir, backbone_weights):
    """The session's model as the served one, for the whole module."""
    with override_settings(IDCLASS_MODEL_DIR=trained_model_dir, IDCLASS_BACKBONE_WEIGHTS=backbone_weights):
        yield


@pytest.fixture(scope="module")
def batched(served, backlog) -> tuple[list[dict], str]:
    """The backlog in batches of 4: rows and what went to stderr."""
    return classify(backlog, "--batch-size", "4")


def classify(*args) -> tuple[list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("classify_images", *map(str, args), stdout=out, stderr=err)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    return rows, err.getvalue()


def test_rows_match_predict_and_broken_files_get_codes(batched, backlog, trained_model_dir, backbone_weights):
    rows, err = batched
    files = sorted(p for p in backlog.rglob("*") if p.is_file())
    assert sorted(r["path"] for r in rows) == [str(p) for p in files]
    assert list(rows[0]) == list(BATCH_COLUMNS)
    assert f"{len(files)} images, {len(BROKEN)} errors" in err and "images/s" in err
    predictor = Predictor(trained_model_dir, weights=backbone_weights)
    for row in rows:
        name = row["path"].rsplit("/", 1)[-1]
        if name in BROKEN:
            assert row["error"] == BROKEN[name][1] and row["document_type"] == row["score"] == ""
            continue
        expected = predictor.predict(row["path"])
        assert row["error"] == ""
        assert (row["document_type"], row["label"], row["band"]) == (expected.document_type, expected.label,
                                                                      expected.band.value)
        assert float(row["score"]) == pytest.approx(expected.score, abs=LAST_DIGIT)
        loc = expected.localisation
        assert row["outline_found"] == str(loc.found).lower()
        assert (json.loads(row["corners"]) if row["corners"] else None) == (
            loc.quad.round(1).tolist() if loc.found else None)


def test_batch_size_does_not_change_the_rows(batched, backlog, tmp_path, capsys):
    call_command("classify_images", str(backlog), "--batch-size", "1", "--csv", str(tmp_path / "out.csv"))
    assert f"rows written to {tmp_path / 'out.csv'}" in capsys.readouterr().out
    with open(tmp_path / "out.csv", newline="") as fh:
        one_by_one = list(csv.DictReader(fh))
    assert [without_scores(r) for r in one_by_one] == [without_scores(r) for r in batched[0]]
    for single, batch in zip(one_by_one, batched[0]):
        for column in ("score", "novelty"):
            assert float(single[column] or 0) == pytest.approx(float(batch[column] or 0), abs=LAST_DIGIT)


def without_scores(row: dict) -> dict:
    """A row without the numbers a batched forward pass may change in their last digit."""
    return {k: v for k, v in row.items() if k not in ("score", "novelty")}


def test_files_named_one_by_one_and_a_missing_one(served, backlog, tmp_path):
    image = sorted(backlog.glob("*/*.jpg"))[0]
    rows, _ = classify(image, tmp_path / "gone.jpg")
    assert [r["path"] for r in rows] == [str(image), str(tmp_path / "gone.jpg")]
    assert rows[0]["error"] == "" and rows[0]["document_type"]
    assert rows[1]["error"] == "missing"


def test_without_model_says_how_to_train(tmp_path, backlog, settings):
    settings.IDCLASS_MODEL_DIR = tmp_path / "no-model"
    with pytest.raises(CommandError, match="train_classifier"):
        call_command("classify_images", str(backlog))

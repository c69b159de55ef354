import json

import pytest
from django.core.management import call_command

from classifier.training.dataset import scan
from idclass.models import Prediction
from classifier.training.train import train_classifier
from benchmarks.quick_model import quick_config
from tests.web import make_prediction

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(demo_image, media_root):
    data = demo_image[1]
    confirmed = make_prediction(data, "vel_id", review_status=Prediction.Review.CONFIRMED, reviewed_label="vel_id")
    corrected = make_prediction(data, "vel_id", review_status=Prediction.Review.CORRECTED, reviewed_label="lun_id")
    make_prediction(data, "mar_id")  # unreviewed
    make_prediction(None, "mar_id", review_status=Prediction.Review.CONFIRMED, reviewed_label="mar_id")  # no image
    return confirmed, corrected


def test_export(reviewed, tmp_path, capsys):
    confirmed, corrected = reviewed
    out = tmp_path / "reviewed"
    call_command("export_reviewed", str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted([
        f"lun_id/{corrected.id}.jpg", "labels.json", f"vel_id/{confirmed.id}.jpg"])
    assert json.loads((out / "labels.json").read_text()) == {"lun_id": "Label of lun_id", "vel_id": "Label of vel_id"}
    stdout = capsys.readouterr().out
    assert "exported 2 reviewed images" in stdout
    assert "skipped 1 reviewed predictions whose image was not stored" in stdout


def test_export_trains_beside_the_original_data(reviewed, demo_train_dir, tmp_path):
    out = tmp_path / "reviewed"
    call_command("export_reviewed", str(out))
    original = scan([demo_train_dir])
    both = scan([demo_train_dir, out])
    assert len(both.images) == len(original.images) + 2
    assert both.classes == original.classes
    assert {(img.path.parent.name, img.label) for img in both.images if out in img.path.parents} == {
        ("vel_id", "vel_id"), ("lun_id", "lun_id")}


def test_export_again_after_a_correction_moves_the_image(reviewed, tmp_path):
    confirmed, _ = reviewed
    out = tmp_path / "reviewed"
    call_command("export_reviewed", str(out))
    confirmed.record_review("mar_id", None)
    confirmed.save()
    call_command("export_reviewed", str(out))
    assert not (out / "vel_id" / f"{confirmed.id}.jpg").exists()
    assert (out / "mar_id" / f"{confirmed.id}.jpg").is_file()


def test_a_new_type_from_review_is_exported_with_its_name_and_learned(
        demo_train_dir, demo_image, media_root, backbone_weights, feature_cache_dir, tmp_path):
    new = make_prediction(demo_image[1], "", 0.4, "unsupported")
    new.record_review("aze_id", None, "ID Card of Azerbaijan")
    new.save()
    nothing = make_prediction(demo_image[1], "", 0.3, "unsupported")
    nothing.record_review("", None)  # confirmed: no supported document
    nothing.save()
    out = tmp_path / "reviewed"
    call_command("export_reviewed", str(out))
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.jpg")] == [f"aze_id/{new.id}.jpg"]
    assert json.loads((out / "labels.json").read_text())["aze_id"] == "ID Card of Azerbaijan"
    result = train_classifier([demo_train_dir, out], quick_config(backbone_weights, feature_cache_dir),
                              out_dir=tmp_path / "model", log=lambda _: None)
    assert "aze_id" in result.model.classes
    assert result.model.display_names["aze_id"] == "ID Card of Azerbaijan"


def test_a_known_types_name_is_kept_unless_the_operator_lets_reviewers_rename_it(demo_image, media_root, tmp_path):
    """A record from before new codes were checked: a reviewer named a known type anew."""
    renamed = make_prediction(demo_image[1], "vel_id", review_status=Prediction.Review.CORRECTED,
                              reviewed_label="lun_id", reviewed_name="Passport of Elsewhere")
    make_prediction(demo_image[1], "lun_id", review_status=Prediction.Review.CONFIRMED, reviewed_label="lun_id")
    call_command("export_reviewed", str(tmp_path / "kept"))
    assert json.loads((tmp_path / "kept" / "labels.json").read_text())["lun_id"] == "Label of lun_id"
    call_command("export_reviewed", str(tmp_path / "renamed"), "--reviewer-names")
    assert json.loads((tmp_path / "renamed" / "labels.json").read_text())["lun_id"] == renamed.reviewed_name

"""The training and evaluation commands as an operator runs them."""
import json
import urllib.error

import pytest
from django.core.management import CommandError, call_command

from classifier import weights


def test_train_then_evaluate(demo_train_dir, backbone_weights, settings, tmp_path, capsys):
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    out = tmp_path / "model"
    call_command("train_classifier", str(demo_train_dir), "--backbone", "small", "--epochs", "30", "--out", str(out),
                 "--views-per-class", "10", "--input-size", "160", "--rotations", "1")
    assert weights.load_model(out).metadata["backbone"]["name"] == "small"
    assert not (tmp_path / "current").exists()  # --out writes exactly there and nothing else
    call_command("evaluate_classifier", str(demo_train_dir), "--model", str(out), "--report-dir", str(tmp_path / "r"))
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "bands: high" in printed
    assert json.loads((tmp_path / "r" / "report.json").read_text())["n"] > 0


def test_offline_without_weights_says_exactly_what_to_do(demo_train_dir, settings, monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    settings.IDCLASS_BACKBONE_WEIGHTS = ""
    with pytest.raises(CommandError, match="set IDCLASS_BACKBONE_WEIGHTS to a torchvision mobilenet_v3_small "
                                           r"state_dict file, for example torchvision's own "
                                           r"mobilenet_v3_small-.*\.pth") as err:
        call_command("train_classifier", str(demo_train_dir), "--backbone", "small", "--out", str(tmp_path / "m"))
    assert "shared" not in str(err.value)  # a path only this project's developers have


def test_evaluate_without_model_says_how_to_train(tmp_path, demo_train_dir):
    with pytest.raises(CommandError, match="train_classifier"):
        call_command("evaluate_classifier", str(demo_train_dir), "--model", str(tmp_path),
                     "--report-dir", str(tmp_path))


def test_missing_data_dir_is_a_clear_error(tmp_path, settings, backbone_weights):
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    with pytest.raises(CommandError, match="not a folder"):
        call_command("train_classifier", str(tmp_path / "nope"), "--backbone", "small", "--out", str(tmp_path / "m"))


def test_evaluating_on_types_the_model_does_not_know_says_which(trained_model_dir, settings, backbone_weights,
                                                                 tmp_path):
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    (tmp_path / "data" / "xyz_passport").mkdir(parents=True)
    (tmp_path / "data" / "xyz_passport" / "a.png").write_bytes(b"an image of a type no model knows")
    known = weights.load_model(trained_model_dir).classes
    with pytest.raises(CommandError, match=f"found xyz_passport; the model knows {', '.join(known)}.*--unknown"):
        call_command("evaluate_classifier", str(tmp_path / "data"), "--model", str(trained_model_dir),
                     "--report-dir", str(tmp_path / "r"))

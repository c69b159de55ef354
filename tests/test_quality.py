"""Capture quality: each check flags its condition where it is plain, and a good photo nothing."""
import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

from classifier import quality
from classifier.localise import Localisation
from classifier.synth.demo import render_document

DOCUMENT = np.array([[120, 100], [520, 100], [520, 352], [120, 352]], float)  # where it lies in the photo


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A sharp, well-lit photo of a document on a plain desk."""
    canvas = Image.new("RGB", (640, 480), (90, 110, 100))
    canvas.paste(render_document("vel_id", np.random.default_rng(5)).resize((400, 252)), (120, 100))
    return canvas


def view(photo: Image.Image) -> Image.Image:
    """The model's view of the document in ``photo``."""
    return photo.crop((120, 100, 520, 352)).resize((224, 224))


def codes(photo, quad=DOCUMENT, original=None):
    found = Localisation(None if quad is None else np.asarray(quad, float), 0.9)
    measures = quality.measure(view(photo), found, photo, original or photo.size)
    return [issue.code for issue in quality.assess(measures)]


def test_a_good_photo_has_nothing_wrong(photo):
    assert codes(photo) == []


def test_a_blurred_photo_is_blurred(photo):
    assert codes(photo.filter(ImageFilter.GaussianBlur(2.5))) == ["blurred"]


def test_a_shaken_camera_is_blurred(photo):
    """Smeared along one direction only: across it the print stays sharp, which a Laplacian (the sum of
    both directions) took for a sharp photo."""
    streak = np.zeros((9, 9), np.float32)
    streak[4] = 1 / 9
    smeared = Image.fromarray(cv2.filter2D(np.asarray(photo), -1, streak))
    assert codes(smeared) == ["blurred"]


def test_too_dark_and_overexposed(photo):
    a = np.asarray(photo, np.float32)
    assert "too_dark" in codes(Image.fromarray((a * 0.2).astype(np.uint8)))
    assert "overexposed" in codes(Image.fromarray((255 - (255 - a) * 0.15).astype(np.uint8)))


def test_glare_is_a_blown_out_patch(photo):
    a = np.asarray(photo).copy()
    a[140:220, 200:330] = 255  # a lamp's reflection, clipped by the camera
    assert codes(Image.fromarray(a)) == ["glare"]


def test_framing(photo):
    assert codes(photo, DOCUMENT + [300, 0]) == ["partly_out_of_frame"]  # most of it past the right edge
    assert codes(photo, (DOCUMENT - DOCUMENT[0]) / 4 + DOCUMENT[0]) == ["too_small"]  # a sixteenth of the area
    assert codes(photo, original=(160, 120)) == ["too_small"]  # a tiny photo: too few pixels


def test_without_an_outline_only_the_photo_is_judged(photo):
    assert codes(photo, quad=None) == []
    assert codes(photo.filter(ImageFilter.GaussianBlur(2.5)), quad=None) == ["blurred"]
    a = np.asarray(photo).copy()
    a[140:220, 200:330] = 255
    assert codes(Image.fromarray(a), quad=None) == []  # a white patch, but not known to be on a document


def test_issues_come_most_important_first_with_what_to_do(photo):
    blurred = photo.filter(ImageFilter.GaussianBlur(2.5))
    issues = quality.assess(quality.measure(view(blurred), Localisation(DOCUMENT + [300, 0], 0.9), blurred,
                                            blurred.size))
    assert [i.code for i in issues] == ["partly_out_of_frame", "blurred"]
    assert issues[0].as_json() == {"code": "partly_out_of_frame", "value": pytest.approx(issues[0].value, abs=1e-4),
                                   "message": quality.MESSAGES["partly_out_of_frame"]}


def test_the_quality_benchmark_scores_every_check(capsys):
    """benchmarks.quality end to end at its smallest: it keeps running; its figures are not asserted."""
    from benchmarks import quality as benchmark

    benchmark.main(["--per-class", "2", "--sides", "512", "192"])
    lines = capsys.readouterr().out.splitlines()
    for code in quality.CODES:
        assert any(line.startswith(f"{code:20} ") for line in lines), code
    assert lines[-5].startswith("clean captures")
    assert [line.split()[0] for line in lines[-2:]] == ["512", "192"]


def test_sharpness_measured_smaller_reads_a_blurred_document_sharper(photo):
    """Why a decode with fewer pixels needs the blurred check fitted again: reduced, the blur shrinks too."""
    blurred = photo.filter(ImageFilter.GaussianBlur(2))
    assert quality.sharpness(blurred, DOCUMENT, side=128) > 2 * quality.sharpness(blurred, DOCUMENT)

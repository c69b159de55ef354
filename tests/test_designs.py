"""The printed design check: a high answer needs the document's keypoints to match its type's."""
import json
import math
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

from benchmarks.reference_files import SCANS
from classifier import artifact, quality
from classifier.bands import Calibration, ConfidenceBand
from classifier.designs import (DESIGNS_FILE, MAX_MISSED, MAX_MISSED_OF_A_TYPE, MIN_CHECKED, MIN_POINTS, SIDE,
                                DesignReferences, DesignRule, blurred_only, design_of, matched_points, most_typical,
                                plausible, readable)
from classifier.errors import ModelUnreadable
from classifier.images import image_files, load_image
from classifier.localise import Localisation
from classifier.quality import QualityIssue


def photographed(img: Image.Image) -> Image.Image:
    """The document as a cut-out of a phone photo shows it: seen a little in perspective, softer, darker."""
    w, h = img.size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0.04 * w, 0.02 * h], [0.97 * w, 0.06 * h], [0.93 * w, 0.95 * h], [0.02 * w, 0.99 * h]])
    warped = cv2.warpPerspective(np.asarray(img.convert("RGB")), cv2.getPerspectiveTransform(src, dst), (w, h))
    soft = cv2.GaussianBlur(warped, (3, 3), 0)
    return Image.fromarray((soft * 0.8).astype(np.uint8)).resize((SIDE, SIDE))


def first_of_each_type(folder) -> dict[str, Image.Image]:
    firsts = {}
    for path in image_files(folder):
        firsts.setdefault(path.parent.name, load_image(path))
    return firsts


def test_a_document_matches_its_own_design_photographed_best(demo_train_dir):
    """The fictional demo types share fonts, labels and emblems: another type may match a little."""
    documents = first_of_each_type(demo_train_dir)
    references = {code: design_of(img) for code, img in documents.items()}
    for code, img in documents.items():
        query = design_of(photographed(img))
        own = matched_points(query, references[code])
        others = {other: matched_points(query, ref) for other, ref in references.items() if other != code}
        assert own >= MIN_POINTS and own > 2 * max(others.values()), (code, own, others)


def test_the_references_kept_are_the_documents_most_others_match(demo_train_dir):
    img = next(iter(first_of_each_type(demo_train_dir).values()))
    sharp, photo = design_of(img), design_of(photographed(img))
    smeared = design_of(img.filter(ImageFilter.GaussianBlur(40)))  # too soft to match anything
    kept = most_typical([smeared, sharp, photo], 2, MIN_POINTS)
    assert len(kept) == 2 and kept[0] is sharp and kept[1] is photo


@pytest.mark.skipif(not SCANS.is_dir(), reason=f"no real scans at {SCANS} (IDCLASS_TEST_SCANS)")
def test_real_documents_match_their_own_design_and_no_other_type():
    documents = first_of_each_type(SCANS)
    references = {code: design_of(img) for code, img in documents.items()}
    for code, img in documents.items():
        query = design_of(photographed(img))
        assert matched_points(query, references[code]) >= MIN_POINTS, code
        others = {other: matched_points(query, ref) for other, ref in references.items() if other != code}
        assert max(others.values()) < MIN_POINTS, (code, others)


def test_only_a_mapping_that_shows_a_document_in_perspective_is_plausible():
    assert plausible(np.eye(3))
    assert plausible(cv2.getPerspectiveTransform(
        np.float32([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]]),
        np.float32([[10, 5], [SIDE - 5, 15], [SIDE - 20, SIDE - 10], [5, SIDE]])))
    assert not plausible(np.diag([4.0, 4.0, 1.0]))  # the reference 16 times the cut-out's size
    assert not plausible(np.array([[1.0, 2.5, 0], [0, 1, 0], [0, 0, 1]]))  # sheared flat: sharp corners
    assert not plausible(np.zeros((3, 3)))


def test_types_turn_away_where_their_readable_validation_photos_carried_their_design_within_the_budget():
    over_own = math.floor(MAX_MISSED_OF_A_TYPE * 40) + 1
    rule = DesignRule.fit({"a": (40, 0), "b": (40, 1), "c": (40, over_own), "d": (MIN_CHECKED - 1, 0)}, MIN_POINTS)
    assert rule.turns_away == {"a", "b"}  # c missed too often for itself; d was checked on too few photos to tell
    n = 50  # photos of each of four types: the budget is MAX_MISSED of all 200
    budget = math.floor(MAX_MISSED * 4 * n)
    checked = {"a": (n, 0), "b": (n, 1), "c": (n, budget - 1), "d": (n, budget - 1)}
    assert DesignRule.fit(checked, MIN_POINTS).turns_away == {"a", "b", "c"}  # c first (a tie), d then overspends
    # trained before: no type turns away, nor does any answer below the high band
    assert DesignRule.from_dict({"min_points": 12, "sha256": "x"}) == DesignRule(12, unsure_needs_design=False)
    assert DesignRule.from_dict(rule.to_dict()) == rule
    found, missed = Localisation(np.float32([[0, 0], [90, 0], [90, 60], [0, 60]]), 0.9), Localisation(None, 0.1)
    glare, blurred = (QualityIssue(code, 0.0, quality.MESSAGES[code]) for code in ("glare", "blurred"))
    assert readable(found, [glare]) and not readable(found, [glare, blurred])
    assert blurred_only(found, [glare, blurred]) and not blurred_only(found, [glare])
    assert not blurred_only(None, [blurred])  # nothing cut out: no design to hide
    assert not readable(missed, []) and not readable(None, [])  # no outline: no document to compare


def test_a_trained_model_keeps_its_references_with_their_checksum(trained_model_dir, tmp_path):
    model = artifact.read_model(trained_model_dir)
    assert model.designs["min_points"] == MIN_POINTS
    checked = model.designs["checked"]
    assert sorted(checked) == sorted(model.classes) and all(n >= missed >= 0 for n, missed in checked.values())
    assert model.design_rule == DesignRule.fit({code: tuple(c) for code, c in checked.items()}, MIN_POINTS)
    references = DesignReferences.load(artifact.designs_file(trained_model_dir, model))
    assert sorted(references.by_type) == sorted(model.classes)
    assert all(1 <= len(designs) <= model.designs["per_type"] for designs in references.by_type.values())

    damaged = tmp_path / "model"
    shutil.copytree(trained_model_dir, damaged)
    (damaged / DESIGNS_FILE).write_bytes(b"not the references")
    with pytest.raises(ModelUnreadable, match="designs.npz"):
        artifact.designs_file(damaged, artifact.read_model(damaged))
    metadata = json.loads((damaged / "metadata.json").read_text())
    assert model.design_rule.unsure_needs_design and metadata["designs"]["unsure_needs_design"]
    del metadata["designs"]["unsure_needs_design"]  # a model kept before it: turns away by type alone
    (damaged / "metadata.json").write_text(json.dumps(metadata))
    assert not artifact.read_model(damaged).design_rule.unsure_needs_design
    del metadata["designs"]
    (damaged / "metadata.json").write_text(json.dumps(metadata))
    assert artifact.read_model(damaged).designs is None  # a model trained before them


def test_a_high_score_for_a_document_of_another_design_is_medium(session_predictor, demo_train_dir, monkeypatch):
    answers = {}
    for path in image_files(demo_train_dir):
        answer = session_predictor.predict(path)
        if answer.band is ConfidenceBand.HIGH:
            answers[path] = answer
    if not answers:
        pytest.skip("the test model answers none of its training images in the high band (random weights)")
    path, answer = next(iter(answers.items()))
    own = session_predictor.designs.by_type
    others = [code for code in own if code != answer.document_type]
    swapped = DesignReferences(own | {answer.document_type: own[others[0]]})  # the type's design is another's
    monkeypatch.setattr(session_predictor, "designs", swapped)
    monkeypatch.setattr(session_predictor, "design_rule", DesignRule(MIN_POINTS))  # no type turns away
    medium = session_predictor.predict(path)
    assert (medium.document_type, medium.band, medium.score) == (answer.document_type, ConfidenceBand.MEDIUM,
                                                                  answer.score)
    assert medium.timings_ms["design_ms"] > 0
    monkeypatch.setattr(session_predictor, "designs", None)  # a model trained before design references
    assert session_predictor.predict(path).band is ConfidenceBand.HIGH


def test_the_design_is_not_looked_at_where_the_open_set_names_no_type(session_predictor, demo_train_dir,
                                                                       monkeypatch):
    looked = []
    carries = session_predictor.designs.carries
    monkeypatch.setattr(session_predictor.designs, "carries", lambda *args: looked.append(args) or carries(*args))
    answers = ((path, session_predictor.predict(path)) for path in image_files(demo_train_dir))
    path = next((path for path, a in answers if a.document_type and readable(a.localisation, a.quality)), None)
    if path is None:
        pytest.skip("the test model gives none of its training images a type (random weights)")
    assert looked  # a readable photo answered with a type: its design is looked at
    looked.clear()
    monkeypatch.setattr(session_predictor, "open_set", replace(session_predictor.open_set, threshold=-1.0))
    novel = session_predictor.predict(path)  # everything too novel
    assert (novel.document_type, novel.reason, looked) == (None, "unsupported_type", [])


def test_a_readable_photo_without_the_design_of_a_type_that_turns_away_is_not_supported(
        session_predictor, demo_train_dir, monkeypatch):
    answers = ((path, session_predictor.predict(path)) for path in image_files(demo_train_dir))
    path, answer = next((path, a) for path, a in answers
                        if a.document_type and readable(a.localisation, a.quality))
    own = session_predictor.designs.by_type
    other = next(code for code in own if code != answer.document_type)
    monkeypatch.setattr(session_predictor, "designs", DesignReferences(own | {answer.document_type: own[other]}))
    monkeypatch.setattr(session_predictor, "design_rule", DesignRule(MIN_POINTS, frozenset([answer.document_type])))
    turned_away = session_predictor.predict(path)
    assert (turned_away.document_type, turned_away.band, turned_away.reason) == (
        None, ConfidenceBand.UNSUPPORTED, "unsupported_type")
    assert turned_away.top_k[0].document_type == answer.document_type  # the closest known type, as ever

    blurred = [QualityIssue("blurred", 0.0, quality.MESSAGES["blurred"])]
    with monkeypatch.context() as m:  # a photo too soft to show its design: sure enough, no reason to doubt the type
        m.setattr(quality, "assess", lambda measures: blurred)
        m.setattr(session_predictor, "calibration", Calibration(answer.score, 0.0, 10))  # high
        assert session_predictor.predict(path).document_type == answer.document_type
        m.setattr(session_predictor, "calibration", Calibration(1.0, 0.0, 10))  # the same score low: cannot tell
        soft = session_predictor.predict(path)
        assert (soft.document_type, soft.band, soft.reason, soft.label) == (
            None, ConfidenceBand.UNSUPPORTED, "too_blurred", "Too blurred to tell")
    # a type not measured to turn away: sure enough, the type stands; below the high band neither the head nor the
    # design speaks for it, but a model kept before every type turned such photos away keeps it
    high, medium, low = (Calibration(answer.score, 0.0, 10), Calibration(1.01, 1.01 - answer.score / 2, 10),
                         Calibration(1.01, 0.0, 10))
    for calibration, expected in ((high, (answer.document_type, None)), (medium, (None, "unsupported_type")),
                                  (low, (None, "unsupported_type"))):
        monkeypatch.setattr(session_predictor, "calibration", calibration)
        monkeypatch.setattr(session_predictor, "design_rule", DesignRule(MIN_POINTS))
        answered = session_predictor.predict(path)
        assert (answered.document_type, answered.reason) == expected
        monkeypatch.setattr(session_predictor, "design_rule", DesignRule(MIN_POINTS, unsure_needs_design=False))
        kept = session_predictor.predict(path)
        assert (kept.document_type, kept.reason) == (answer.document_type, None)

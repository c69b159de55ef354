"""The band rule: high >= m, medium >= m - s, low below."""
import numpy as np
import pytest

from classifier.bands import FALLBACK_MEAN, Calibration, ConfidenceBand


def test_band_rule_at_the_edges():
    cal = Calibration(mean=0.9, std=0.1, n_correct=50)
    assert cal.band(0.95) is ConfidenceBand.HIGH
    assert cal.band(0.9) is ConfidenceBand.HIGH
    assert cal.band(0.8999) is ConfidenceBand.MEDIUM
    assert cal.band(0.8) is ConfidenceBand.MEDIUM
    assert cal.band(0.7999) is ConfidenceBand.LOW


def test_fit_uses_only_correct_predictions():
    scores = np.array([0.9, 0.8, 0.7, 0.99, 0.95, 0.2, 0.3])
    correct = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
    cal = Calibration.fit(scores, correct)
    assert cal.mean == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.99, 0.95]))
    assert cal.std == pytest.approx(np.std([0.9, 0.8, 0.7, 0.99, 0.95]))
    assert cal.n_correct == 5 and not cal.fallback


def test_too_few_correct_predictions_fall_back():
    cal = Calibration.fit(np.array([0.9, 0.4, 0.5]), np.array([True, False, False]))
    assert cal.fallback and cal.mean == FALLBACK_MEAN and cal.n_correct == 1


def test_every_band_has_a_word_a_colour_and_a_meaning():
    assert {b.value for b in ConfidenceBand} == {"high", "medium", "low", "unsupported"}
    assert len({b.colour for b in ConfidenceBand}) == 4 and ConfidenceBand.UNSUPPORTED.colour == "grey"
    assert all(b.hex_colour.startswith("#") and b.meaning for b in ConfidenceBand)
    assert "retake" in ConfidenceBand.LOW.meaning.lower()


def test_round_trip_through_dict():
    cal = Calibration(0.93, 0.04, 120)
    assert Calibration.from_dict(cal.to_dict()) == cal

"""benchmarks.localise end to end at its smallest: one capture a type of each kind, two localisers
compared in one run. It keeps the code running; its figures are not asserted."""
import sys

import pytest

from benchmarks import localise
from benchmarks.reference_files import PHOTOS
from classifier.artifact import LOCALISER_DIR


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"no natural photos at {PHOTOS} (IDCLASS_TEST_PHOTOS)")
def test_the_localisation_benchmark_compares_localisers_per_kind_of_capture(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["localise", "--per-class", "1", "--localiser", str(LOCALISER_DIR),
                                      str(LOCALISER_DIR)])
    localise.main()
    out = capsys.readouterr().out
    for capture in localise.FRAMINGS.values():
        for method in ("learned 1", "learned 2", "classical"):
            assert any(line.startswith(f"{capture:12} {method:10}") for line in out.splitlines()), (capture, method)

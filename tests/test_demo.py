import io
import json
from itertools import combinations

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from classifier.synth import demo
from classifier.localise import visible_share
from classifier.synth.augment import MIN_VISIBLE, background_photos
from classifier.synth.demo import DOC_TYPES, make_demo_dataset, render_document


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    out = tmp_path_factory.mktemp("captured")
    summary = make_demo_dataset(out, per_class=2, seed=3, workers=2, progress=False)
    return out, summary


def test_types_are_fictional_documents_with_distinct_names():
    assert len(DOC_TYPES) >= 8
    names = [t.name for t in DOC_TYPES.values()]
    assert len(set(names)) == len(names)
    assert {t.kind for t in DOC_TYPES.values()} >= {"id", "passport"}
    # three-letter codes from the range ISO 3166 never assigns to a state
    assert all(t.code.startswith("Q") and len(t.code) == 3 for t in DOC_TYPES.values())


def test_some_types_share_colours_but_not_layout():
    alike = [(a, b) for (a, ta), (b, tb) in combinations(DOC_TYPES.items(), 2)
             if (ta.primary, ta.secondary, ta.paper) == (tb.primary, tb.secondary, tb.paper)
             and ta.aspect == tb.aspect and (ta.header, ta.photo) != (tb.header, tb.photo)]
    assert len(alike) >= 2


@pytest.mark.parametrize("key", DOC_TYPES)
def test_render_has_document_proportions_and_varies_with_the_generator(key):
    img = render_document(key, np.random.default_rng(1))
    assert img.mode == "RGB" and img.width == 640
    expected = 125 / 88 if DOC_TYPES[key].kind == "passport" else 85.6 / 54
    assert img.width / img.height == pytest.approx(expected, abs=0.01)
    assert img.tobytes() == render_document(key, np.random.default_rng(1)).tobytes()
    assert img.tobytes() != render_document(key, np.random.default_rng(2)).tobytes()


def test_render_falls_back_to_pillows_own_font(monkeypatch):
    monkeypatch.setattr(demo, "_FONT_DIRS", ())
    demo._font.cache_clear()
    try:
        assert render_document("vel_passport", np.random.default_rng(0)).width == 640
    finally:
        demo._font.cache_clear()


def test_mrz_check_digits_follow_icao():
    # ICAO 9303 example values
    assert demo._check_digit("L898902C3") == "6"
    assert demo._check_digit("740812") == "2"
    assert demo._check_digit("120415") == "9"
    t = DOC_TYPES["vel_passport"]
    rng = np.random.default_rng(0)
    lines = demo._mrz(t, demo._person(t, rng), rng)
    assert [len(line) for line in lines] == [44, 44]
    assert lines[0].startswith("P<QVL")


def test_dataset_layout_labels_and_corners(captured):
    out, summary = captured
    assert summary["images"] == 2 * len(DOC_TYPES) and summary["classes"] == len(DOC_TYPES)
    assert json.loads((out / "labels.json").read_text()) == {k: t.name for k, t in DOC_TYPES.items()}
    for key in DOC_TYPES:
        for i in range(2):
            img = Image.open(out / key / f"{key}_{i:04d}.jpg")
            assert img.format == "JPEG" and img.mode == "RGB"
            quad = np.array(json.loads((out / key / f"{key}_{i:04d}.json").read_text())["quad"])
            assert quad.shape == (4, 2)
            # a badly framed photo may cut the document, never by more than 40%
            assert visible_share(quad, img.size) >= MIN_VISIBLE - 0.01
            assert img.size != (640, round(640 / DOC_TYPES[key].aspect))  # a photo, not the flat render


def test_dataset_is_identical_for_any_worker_count_and_differs_by_seed(captured, tmp_path):
    out, _ = captured
    make_demo_dataset(tmp_path / "one", per_class=2, seed=3, workers=1, progress=False)
    assert files(tmp_path / "one") == files(out)
    make_demo_dataset(tmp_path / "other", per_class=2, seed=4, workers=1, progress=False)
    other = files(tmp_path / "other")
    assert all(other[name] != data for name, data in files(out).items() if name.endswith(".jpg"))


def test_flat_dataset_holds_the_renders_and_their_own_corners(tmp_path):
    make_demo_dataset(tmp_path, per_class=1, seed=5, flat=True, workers=1, progress=False)
    for t, key in enumerate(DOC_TYPES):
        img = Image.open(tmp_path / key / f"{key}_0000.jpg")
        render = render_document(key, np.random.default_rng([5, t, 0]))
        assert img.size == render.size
        assert np.abs(np.asarray(img, dtype=float) - np.asarray(render)).mean() < 4
        quad = json.loads((tmp_path / key / f"{key}_0000.json").read_text())["quad"]
        w, h = render.size
        assert quad == [[0, 0], [w, 0], [w, h], [0, h]]


def test_command_writes_a_dataset_with_background_photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (320, 240), (90, 60, 30)).save(photos / "desk.jpg")
    stdout = io.StringIO()
    call_command("make_demo_dataset", str(tmp_path / "out"), "--per-class", "1", "--seed", "2",
                 "--backgrounds", str(photos), "--workers", "1", verbosity=0, stdout=stdout)
    assert f"{len(DOC_TYPES)} images of {len(DOC_TYPES)} document types" in stdout.getvalue()
    assert len(list((tmp_path / "out").rglob("*.jpg"))) == len(DOC_TYPES)


@pytest.mark.parametrize("command", [["make_demo_dataset", "out"], ["train_localiser"], ["train_classifier", "data"]])
def test_backgrounds_mean_the_same_in_every_command(tmp_path, command):
    """--backgrounds DIR: every image under DIR; a folder with none (only notes, say) is refused."""
    (tmp_path / "README.md").write_text("not a photo")
    with pytest.raises(CommandError, match="no images .* to use as backgrounds"):
        call_command(*command, "--backgrounds", str(tmp_path), verbosity=0)
    (tmp_path / "photos" / "2024").mkdir(parents=True)
    for name in ("a.JPEG", "2024/b.png", "notes.txt"):
        (tmp_path / "photos" / name).write_bytes(b"")
    assert [p.name for p in background_photos(tmp_path / "photos")] == ["b.png", "a.JPEG"]

import cv2
import numpy as np
import pytest
from PIL import Image

from classifier.localise import visible_share
from classifier.synth.demo import render_document
from classifier.synth.augment import (MIN_VISIBLE, augment, corners_outside, random_background,
                                     simulate_capture)

SEEDS = range(24)


def signed_area(quad: np.ndarray) -> float:
    """Shoelace area; positive when the points run clockwise on screen (y pointing down)."""
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def redness(img: Image.Image, point: np.ndarray) -> float:
    x, y = np.round(point).astype(int)
    r, g, b = np.asarray(img, dtype=float)[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
    return r - (g + b) / 2


def inside(quad: np.ndarray, size: tuple[int, int], slack: float = 1) -> bool:
    w, h = size
    return bool(np.all(quad >= -slack) and np.all(quad[:, 0] <= w + slack) and np.all(quad[:, 1] <= h + slack))


@pytest.mark.parametrize("seed", SEEDS)
def test_capture_is_an_rgb_photo_with_the_document_in_frame(doc, seed):
    img, quad = simulate_capture(doc, np.random.default_rng(seed), framing="whole")
    assert img.mode == "RGB"
    assert img.size in {(640, 480), (480, 640), (800, 600), (600, 800)}
    assert quad.shape == (4, 2) and quad.dtype == np.float32
    w, h = img.size
    assert inside(quad, img.size, slack=0)
    # The document's long edges (top and bottom in its own frame) span roughly 30-80% of the frame.
    long_edge = (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    assert 0.22 <= long_edge / max(w, h) <= 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_a_partial_capture_has_one_or_two_corners_outside_and_most_of_the_document_in(doc, seed):
    img, quad = simulate_capture(doc, np.random.default_rng(seed), framing="partial")
    assert 1 <= corners_outside(quad, img.size) <= 2
    assert MIN_VISIBLE - 0.01 <= visible_share(quad, img.size) < 1


def test_some_captures_cut_off_part_of_the_document(doc):
    captures = (simulate_capture(doc, np.random.default_rng(seed)) for seed in range(80))
    cut = sum(not inside(quad, img.size) for img, quad in captures)
    assert 8 <= cut <= 32  # a quarter of them, PARTIAL_PROBABILITY


def test_a_second_card_lies_beside_the_document_in_some_captures(doc):
    other = Image.new("RGB", (500, 320), (250, 0, 250))  # magenta: found nowhere else in a capture
    magenta = 0
    for seed in range(40):
        img, quad = simulate_capture(doc, np.random.default_rng(seed), distractors=[other], framing="whole")
        a = np.asarray(img, dtype=int)
        magenta += ((a[..., 0] > 170) & (a[..., 2] > 170) & (a[..., 1] < 90)).mean() > 0.002
    assert 3 <= magenta <= 16  # DISTRACTOR_PROBABILITY of them, less those lying out of frame


@pytest.mark.parametrize("seed", SEEDS)
def test_a_scan_is_the_document_filling_the_frame(doc, seed):
    img, quad = simulate_capture(doc, np.random.default_rng(seed), framing="scan")
    assert img.mode == "RGB" and quad.shape == (4, 2) and quad.dtype == np.float32 and signed_area(quad) > 0
    w, h = img.size
    extent = quad.max(axis=0) - quad.min(axis=0)
    assert np.all(extent >= 0.78 * np.array([w, h])) and np.all(extent <= 1.15 * np.array([w, h]))
    assert inside(quad, img.size, slack=0.08 * max(w, h))  # at most just past the border


def test_scans_come_with_a_margin_a_border_no_margin_or_past_the_border(doc):
    kinds = set()
    for seed in range(40):
        img, quad = simulate_capture(doc, np.random.default_rng(seed), framing="scan")
        out = corners_outside(quad, img.size)
        fill = (quad.max(axis=0) - quad.min(axis=0)) / np.array(img.size)
        kinds.add("beyond" if out == 4 else "margin" if fill.max() < 0.975 else "edge")
    assert kinds == {"beyond", "margin", "edge"}


def test_unknown_framing_is_refused(doc):
    with pytest.raises(ValueError, match="framing"):
        simulate_capture(doc, np.random.default_rng(0), framing="tight")


def test_capture_quad_starts_at_the_documents_top_left_and_runs_clockwise(doc):
    marked = 0
    for seed in SEEDS:
        img, quad = simulate_capture(doc, np.random.default_rng(seed), framing="whole")
        assert signed_area(quad) > 0
        centre = quad.mean(axis=0)
        near = quad + 0.12 * (centre - quad)  # a little in from each corner
        if inside(near, img.size, slack=-2):
            marker, *others = (redness(img, p) for p in near)
            marked += marker > max(others) + 20  # casts and shadows tint the page, never like the red block
    # Fingers, glare, a hologram's sheen and shadows sometimes hide the marker; the order must show in most.
    assert marked >= len(SEEDS) - 5


def test_capture_uses_the_requested_size_and_covers_all_orientations(doc):
    angles = []
    for seed in range(40):
        img, quad = simulate_capture(doc, np.random.default_rng(seed), out_size=(320, 240))
        assert img.size == (320, 240)
        top = quad[1] - quad[0]
        angles.append(np.degrees(np.arctan2(top[1], top[0])) % 360)
    quadrants = {int(((a + 45) % 360) // 90) for a in angles}
    assert quadrants == {0, 1, 2, 3}


def test_random_background_is_procedural_or_a_crop_of_a_given_photo(tmp_path):
    photo = tmp_path / "green.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(photo)
    for seed in range(5):
        bg = random_background(np.random.default_rng(seed), (160, 120))
        assert bg.mode == "RGB" and bg.size == (160, 120)
    green = 0
    for seed in range(20):
        bg = np.asarray(random_background(np.random.default_rng(seed), (160, 120), [photo]), dtype=int)
        green += np.mean(np.abs(bg - (10, 200, 30)).sum(axis=2) < 30) > 0.5
    assert 3 <= green <= 19  # photos are used often, but not always


@pytest.mark.parametrize("capture_probability", [0.0, 0.5, 1.0])
def test_augment_is_deterministic_for_a_seed(doc, capture_probability):
    def view(seed):
        img = augment(doc, np.random.default_rng(seed), capture_probability=capture_probability)
        assert img.mode == "RGB"
        return img.tobytes(), img.size

    assert view(7) == view(7)
    assert view(7) != view(8)


def test_augment_keeps_output_small_and_accepts_any_mode(doc):
    big = doc.resize((2400, 1600)).convert("L")
    for seed in range(8):
        img = augment(big, np.random.default_rng(seed))
        assert img.mode == "RGB"
        assert max(img.size) <= 850


def test_scan_view_keeps_most_of_the_document(doc):
    for seed in range(10):
        img = augment(doc, np.random.default_rng(seed), capture_probability=0.0)
        a = np.asarray(img, dtype=int)
        red = (a[..., 0] > a[..., 1] + 60) & (a[..., 0] > a[..., 2] + 60)
        lines = (a[..., 2] > a[..., 0] + 20) & (a.sum(axis=2) < 400)
        assert red.mean() > 0.002 and lines.mean() > 0.01


def test_captures_record_how_much_of_the_document_the_light_washed_out():
    """What the glare check is scored against (``metrics.QUALITY_TRUTH``): white pixels of the document
    in the photo that were not white before the light fell on it, so never more than are white."""
    washed = []
    for i in range(30):
        rng = np.random.default_rng([31, i])
        conditions = {}
        img, quad = simulate_capture(render_document("vel_id", rng), rng, conditions=conditions)
        document = np.zeros((img.height, img.width), np.uint8)
        cv2.fillConvexPoly(document, np.round(quad).astype(np.int32), 1)
        white = (np.asarray(img).min(axis=2) >= 250)[document > 0].mean()
        assert 0 <= conditions["washed_share"] <= white + 1e-3
        washed.append(conditions["washed_share"])
    assert 0 < max(washed) and min(washed) == 0  # the light washes some out of some documents

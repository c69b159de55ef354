import itertools

import cv2
import numpy as np
import pytest
from PIL import Image

from benchmarks.localise import locate_classical
from benchmarks.reference_files import PHOTOS
from classifier.artifact import LOCALISER, LOCALISER_DIR
from classifier.weights import load_localiser
from classifier.images import load_image
from classifier.localise import (DECODE_VERSION, STRIDE, Localiser, _best_quad, completed, decode_heatmaps,
                                 order_corners, found_outline, plausible, quad_mask, rectify, to_input)
from classifier.synth.augment import random_background, simulate_capture
from classifier.synth.demo import DOC_TYPES, render_document
from classifier.training.metrics import localisation_metrics, polygon_iou

SQUARE = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)


def photograph(doc: Image.Image, quad, size=(640, 480), background=(40, 60, 50)) -> Image.Image:
    """``doc`` warped so its own corners (TL, TR, BR, BL) land on ``quad``, on a plain background."""
    w, h = doc.size
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))
    out = cv2.warpPerspective(np.asarray(doc), m, size, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    return Image.fromarray(out)


@pytest.fixture(scope="module")
def localiser() -> Localiser:
    return load_localiser()


def test_order_corners_is_clockwise_from_the_top_left():
    shuffled = np.array([[300, 350], [100, 80], [320, 90], [90, 340]], float)
    assert order_corners(shuffled).tolist() == [[100, 80], [320, 90], [300, 350], [90, 340]]


def test_polygon_iou_on_known_shapes():
    assert polygon_iou(SQUARE, SQUARE) == pytest.approx(1.0)
    assert polygon_iou(SQUARE, SQUARE + [1, 0]) == pytest.approx(1 / 3)  # overlap 2 of union 6
    assert polygon_iou(SQUARE, SQUARE + [5, 5]) == 0.0
    assert polygon_iou(SQUARE, np.roll(SQUARE, 1, axis=0)) == pytest.approx(1.0)  # order does not matter
    assert polygon_iou(None, SQUARE) == 0.0
    diamond = np.array([[1, 0], [2, 1], [1, 2], [0, 1]], float)
    assert polygon_iou(SQUARE, diamond) == pytest.approx(0.5)


def test_localisation_metrics_count_misses_as_zero():
    m = localisation_metrics([SQUARE, SQUARE + [1, 0], None, SQUARE], [SQUARE] * 4)
    assert m == {"mean_iou": pytest.approx((1 + 1 / 3 + 0 + 1) / 4), "share_iou_0_8": 0.5,
                 "share_not_found": 0.25, "n": 4}


def test_rectify_restores_an_upright_document_of_the_right_proportions(doc):
    # The document turned a quarter clockwise: its own top-left is at the image's top-right.
    quad = np.array([[500, 60], [520, 420], [280, 430], [260, 70]], float)
    flat = rectify(photograph(doc, quad), quad, long_side=600)
    assert max(flat.size) == 600 and flat.width > flat.height
    assert flat.width / flat.height == pytest.approx(1.5, rel=0.03)
    a = np.asarray(flat.resize((600, 400)), dtype=float)
    red = a[..., 0] - (a[..., 1] + a[..., 2]) / 2
    assert red[10:70, 10:110].mean() > 150  # the red block is back at the top-left
    assert red[300:, 300:].mean() < 20


def test_rectify_squashes_to_a_size_in_one_warp(doc):
    quad = np.array([[500, 60], [520, 420], [280, 430], [260, 70]], float)
    flat = rectify(photograph(doc, quad), quad, size=(224, 224))
    assert flat.size == (224, 224)
    a = np.asarray(flat, dtype=float)
    red = a[..., 0] - (a[..., 1] + a[..., 2]) / 2
    assert red[5:40, 5:40].mean() > 150 and red[150:, 150:].mean() < 20  # the red block is back at the top-left


def test_rectify_reads_the_photo_to_the_documents_very_edge():
    """Only the quad's box of the photo is copied: no seam of black where the box was cut too tight,
    and black only where the quad leaves the photo."""
    white = Image.new("RGB", (750, 1000), (255, 255, 255))
    inside = np.array([[100.6, 200.3], [399.2, 180.7], [420.9, 389.5], [90.1, 410.8]])
    assert (np.asarray(rectify(white, inside, size=(224, 224))) == 255).all()
    assert (np.asarray(rectify(white, inside, long_side=300)) == 255).all()
    beyond = inside - [150, 0]  # its left quarter off the photo's left edge
    flat = np.asarray(rectify(white, beyond, size=(224, 224)))
    assert (flat[:, :30] == 0).all() and (flat[:, 80:] == 255).all()


def test_the_localisers_input_is_the_photo_squashed_and_padded():
    gradient = np.tile(np.linspace(0, 255, 1000, dtype=np.float32), (700, 1))
    photo = np.repeat(gradient[..., None], 3, axis=2).astype(np.uint8)
    x = to_input(photo, 160, 56)
    assert x.shape == (3, 272, 272) and x.dtype == np.float32
    assert (x[:, :56] == 0).all() and (x[:, :, -56:] == 0).all()  # mid-grey padding
    row = x[0, 56 + 80, 56:-56] * 64 + 127.5  # back to pixel values
    assert np.abs(row - np.linspace(0, 255, 160)).max() < 4  # the box reduction keeps the picture


def heatmap_logits(peaks: list[tuple[int, int, float]], mask_quad: np.ndarray, cells: int = 56) -> np.ndarray:
    """Network output (1, 6, cells, cells) with the any-corner map peaking at (x, y) cells with
    probability p, the first four peaks also on their own corner's map, and the document mask."""
    prob = np.full((6, cells, cells), 1e-4, np.float32)
    for k, (x, y, p) in enumerate(peaks):
        prob[4, y, x] = p
        if k < 4:
            prob[k, y, x] = p
    cv2.fillPoly(prob[5], [np.int32(mask_quad)], 0.99)
    return np.log(prob / (1 - prob))[None]


def test_decoding_prefers_the_corners_that_close_the_document_over_stronger_stray_peaks():
    true = [(10, 10, 0.9), (40, 10, 0.9), (40, 30, 0.9), (10, 30, 0.4)]  # one corner seen weakly (a finger?)
    strays = [(25, 20, 0.85), (44, 34, 0.8)]  # a corner-like spot inside the document, a second peak by a corner
    edges = np.array([[10, 10], [41, 10], [41, 31], [10, 31]])  # cell (x, y) spans [x, x + 1)
    for decode in (2, DECODE_VERSION):  # localisers of either decoding read these heatmaps alike
        corners, peaks, agreement = decode_heatmaps(heatmap_logits(true + strays, edges), 40, decode=decode)[:3]
        expected = (np.array([(x, y) for x, y, _ in true]) + 0.5) * STRIDE
        assert np.abs(corners[0] - expected).max() < 1  # the document's own order, at the cell centres
        assert peaks[0] == pytest.approx([0.9, 0.9, 0.9, 0.4], abs=1e-3)
        assert agreement[0] > 0.85


def test_three_strong_corners_and_an_agreeing_mask_vouch_for_a_weak_fourth():
    true = [(10, 10, 0.9), (40, 10, 0.9), (40, 30, 0.9), (10, 30, 0.1)]  # a thumb over the fourth
    edges = np.array([[10, 10], [41, 10], [41, 31], [10, 31]])
    read = decode_heatmaps(heatmap_logits(true, edges), 40)
    quad, confidence = found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=DECODE_VERSION)
    assert quad is not None and confidence == pytest.approx(0.9, abs=1e-3)
    quad, confidence = found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=2)
    assert quad is None and confidence == pytest.approx(0.1, abs=1e-3)  # before decoding 3 the weakest vetoed it
    # the mask a third smaller: no longer agreeing, so the weak corner counts again
    read = decode_heatmaps(heatmap_logits(true, edges * [1, 0.6] + [0, 4]), 40)
    assert found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=DECODE_VERSION)[0] is None


def test_a_corner_the_heatmap_misses_is_completed_from_the_other_three():
    true = [(10, 10, 0.9), (40, 10, 0.9), (40, 30, 0.9)]  # no peak at all where (10, 30) is
    edges = np.array([[10, 10], [41, 10], [41, 31], [10, 31]])
    corners, _, agreement = decode_heatmaps(heatmap_logits(true, edges), 40)[:3]
    expected = (np.array([(10, 10), (40, 10), (40, 30), (10, 30)]) + 0.5) * STRIDE
    assert np.abs(order_corners(corners[0]) - expected).max() < 1 and agreement[0] > 0.85


def test_a_document_filling_the_photo_has_the_photos_border_for_outline():
    # 56 cells, the photo the middle 40 (8 to 47): corners seen faintly in its corners, strays inside
    faint = [(8, 8, 0.35), (47, 8, 0.35), (47, 47, 0.35), (8, 47, 0.35)]
    strays = [(20, 15, 0.8), (35, 15, 0.8), (36, 30, 0.8), (21, 30, 0.8)]
    read = decode_heatmaps(heatmap_logits(strays + faint, np.array([[8, 8], [48, 8], [48, 48], [8, 48]])), 40)
    quad, _ = found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=DECODE_VERSION)
    assert np.abs(order_corners(quad) - np.array([[8, 8], [48, 8], [48, 48], [8, 48]]) * STRIDE).max() < 1


def test_skipping_quads_with_weak_corners_never_changes_the_chosen_outline():
    """The decoder stops once even a perfect fit could not lift a quad to the best score: the
    outline and its IoU are the ones scoring every quad would give."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        points = rng.uniform(0, 40, (7, 2))
        true = rng.permutation(7)[:4]  # weak peaks where the mask says the document is
        strengths = rng.uniform(0.5, 1, 7).astype(np.float32)
        strengths[true] = rng.uniform(0, 0.5, 4)
        mask = np.zeros((40, 40), np.float32)
        cv2.fillConvexPoly(mask, np.int32(cv2.convexHull(np.float32(points[true]))), 0.9)
        quads = [np.array(q) for q in itertools.combinations(range(7), 4)]
        scored = []
        for idx in quads:
            hull = cv2.convexHull(np.float32(points[idx]), returnPoints=False)
            if len(hull) == 4:
                area = quad_mask(points[idx[hull[:, 0]]], mask.shape)
                inter = float((area * mask).sum())
                iou = inter / max(float(area.sum() + mask.sum()) - inter, 1e-6)
                scored.append((iou + float(strengths[idx].mean()), iou, sorted(idx)))
        chosen, iou = _best_quad(points, strengths, mask, quads, None, 1600.0)
        score, expected_iou, expected = max(scored, key=lambda s: s[0])
        assert sorted(chosen) == expected and iou == pytest.approx(expected_iou)


def test_an_outline_no_document_can_have_is_refused():
    # Two corners almost on one another: a triangle spanning half the photo (seen on real photos).
    triangle = [(10, 10, 0.9), (44, 11, 0.9), (47, 14, 0.9), (12, 40, 0.9)]
    mask = np.array([[10, 10], [44, 11], [47, 14], [12, 40]])
    read = decode_heatmaps(heatmap_logits(triangle, mask), 40)
    assert found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=DECODE_VERSION)[0] is None
    read = decode_heatmaps(heatmap_logits(triangle, mask), 40, decode=2)
    assert found_outline(*(a[0] for a in read[:3]), threshold=0.3, decode=2)[0] is not None  # taken before decoding 3


@pytest.mark.parametrize("quad, expected", [
    ([[0, 0], [86, 0], [86, 54], [0, 54]], True),  # an ID-1 card, flat
    ([[10, 0], [76, 0], [86, 54], [0, 54]], True),  # in perspective
    ([[0, 0], [86, 0], [0, 54], [86, 54]], False),  # a bow tie
    ([[0, 0], [86, 0], [87, 1], [0, 54]], False),  # two corners on one another
    ([[0, 0], [200, 0], [200, 10], [0, 10]], False),  # a sliver
    ([[0, 0], [86, 0], [60, 54], [26, 54]], False),  # opposite sides too unlike
    ([[0, 0], [8, 0], [8, 5], [0, 5]], False),  # too small a part of the photo
])
def test_plausible_outlines(quad, expected):
    assert plausible(np.array(quad, float), image_area=100 * 100) is expected


def test_learned_localiser_finds_simulated_captures(localiser):
    keys = list(DOC_TYPES)
    preds, truths = [], []
    for i in range(12):
        rng = np.random.default_rng([4242, i])
        img, quad = simulate_capture(render_document(keys[i % len(keys)], rng), rng)
        result = localiser.locate(img)
        preds.append(result.quad if result.found else None)
        truths.append(quad)
    m = localisation_metrics(preds, truths)
    assert m["share_iou_0_8"] >= 10 / 12 and m["mean_iou"] >= 0.85


def test_learned_corners_come_in_geometric_order_at_every_quarter_turn(localiser):
    rng = np.random.default_rng([77, 0])
    doc = render_document("vel_id", rng)
    w, h = 360, 360 / doc.width * doc.height
    upright = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    rot = np.array([[0, -1], [1, 0]])  # (x, y) -> (-y, x): a quarter turn clockwise with y down
    for turns in range(4):
        quad = upright @ np.linalg.matrix_power(rot, turns).T + (320, 240)  # the document's own order
        result = localiser.locate(photograph(doc, quad))
        assert result.found
        assert np.abs(result.quad - order_corners(quad)).max() < 20, turns


def test_a_document_photographed_from_far_away_is_found_in_a_corner_window(localiser):
    """Decoding 4 looks again at the photo's corner windows, enlarged, where the whole photo shows no
    outline; a localiser read with decoding 3 does not."""
    found, seen_by_3 = [], []
    whole_photo_only = Localiser(localiser.config | {"decode": 3}, localiser.forward)
    for seed in range(6):
        rng = np.random.default_rng([91, seed])
        doc = render_document("vel_id", rng)
        w = 130  # of 1000 px: the document covers 1.4% of the photo
        quad = np.array([[0, 0], [w, 0], [w, w / doc.width * doc.height], [0, w / doc.width * doc.height]])
        quad += (150 + 40 * seed, 160)
        desk = np.asarray(random_background(rng, (1000, 750)))
        inside = np.asarray(photograph(Image.new("L", doc.size, 255), quad, (1000, 750), 0))[..., None] > 0
        img = Image.fromarray(np.where(inside, np.asarray(photograph(doc, quad, (1000, 750))), desk))
        seen_by_3.append(whole_photo_only.locate(img).found)
        result = localiser.locate(img)
        found.append(result.found and polygon_iou(result.quad, quad) > 0.8)
    assert localiser.decode >= 4 and not any(seen_by_3)
    assert sum(found) >= 3, found


def _card(aspect: float, long_side: float, degrees: float, centre) -> np.ndarray:
    """A document's clockwise corners, ``aspect`` (long / short) lying across, turned by ``degrees``."""
    w, h = long_side, long_side / aspect
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 @ turn.T + centre


@pytest.mark.parametrize("aspect, outside", [(85.6 / 54, (1, 2)), (125 / 88, (2, 3)), (85.6 / 54, (3, 0))])
def test_corners_outside_the_photo_are_slid_back_to_a_documents_shape(aspect, outside):
    """The network guesses the corners it cannot see too close to the photo; their sides' directions
    show in it, and a document's shape (ID-1, ID-3) says how far they run."""
    true = order_corners(_card(aspect, 500, 8, (320, 240)))
    shift = {(1, 2): (250, 0), (2, 3): (0, 180), (3, 0): (-250, 0)}[outside]
    true = true + shift
    assert [k for k in range(4) if not (0 <= true[k, 0] <= 640 and 0 <= true[k, 1] <= 480)] == sorted(outside)
    guessed = true.copy()
    for k in outside:  # each outside corner 4% closer to its neighbour inside the photo, as the network's are
        inside = next(j for j in ((k - 1) % 4, (k + 1) % 4) if j not in outside)
        guessed[k] = true[inside] + 0.96 * (true[k] - true[inside])
    assert np.abs(guessed - true).max() > 10
    assert np.abs(completed(guessed, (640, 480)) - true).max() < 3


def test_outlines_without_two_corners_outside_the_photo_stay_as_found():
    in_frame = order_corners(_card(85.6 / 54, 300, 10, (320, 240)) * [1, 1.3] - [0, 70])  # not a card's shape
    one_out = order_corners(_card(85.6 / 54, 400, 20, (500, 300)))
    filling = order_corners(_card(125 / 88, 900, 0, (320, 240)))  # every corner just past the border
    for quad in (in_frame, one_out, filling):
        assert np.array_equal(completed(quad, (640, 480)), quad)


def test_partly_out_of_frame_captures_are_outlined_closer_to_the_truth(localiser):
    """Decoding 5 against 4 on simulated captures with one or two corners outside the photo."""
    read_by_4 = Localiser(localiser.config | {"decode": 4}, localiser.forward)
    keys, truths, by_4, by_5 = list(DOC_TYPES), [], [], []
    for i in range(16):
        rng = np.random.default_rng([5151, i])
        img, quad = simulate_capture(render_document(keys[i % len(keys)], rng), rng, framing="partial")
        truths.append(quad)
        by_4.append(read_by_4.locate(img).quad)
        by_5.append(localiser.locate(img).quad)
    assert localiser.decode >= 5
    assert sum(not np.array_equal(a, b) for a, b in zip(by_4, by_5)) >= 8
    assert all(np.array_equal(order_corners(q), q) for q in by_5 if q is not None)
    m4, m5 = localisation_metrics(by_4, truths), localisation_metrics(by_5, truths)
    assert m5["mean_iou"] > m4["mean_iou"], (m4, m5)


def test_plain_image_is_not_a_document(localiser):
    grey = Image.new("RGB", (640, 480), (128, 128, 128))
    result = localiser.locate(grey)
    assert not result.found and result.quad is None and 0 <= result.confidence < 1
    assert not locate_classical(grey).found


def test_natural_photos_are_rarely_taken_for_documents(localiser):
    """The shipped weights trained with these photos as backgrounds and as document-free images;
    on photos it never saw, ``benchmarks/localise.py --half`` with a half-trained localiser measures it."""
    photos = sorted(PHOTOS.glob("*.JPEG"))
    if not photos:
        pytest.skip(f"no natural photos at {PHOTOS} (IDCLASS_TEST_PHOTOS)")
    found = [localiser.locate(load_image(p)).found for p in photos[::2]]
    assert np.mean(found) <= 0.1


def test_classical_baseline_finds_a_document_on_a_plain_desk(doc):
    quad = np.array([[150, 100], [500, 120], [480, 360], [140, 340]], float)
    result = locate_classical(photograph(doc, quad))
    assert result.found
    assert polygon_iou(result.quad, quad) > 0.9
    assert np.allclose(result.quad, order_corners(result.quad))


def test_default_weights_are_small():
    assert (LOCALISER_DIR / LOCALISER.weights).stat().st_size < 5_000_000

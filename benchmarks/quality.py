"""Capture-quality checks (``classifier.quality``) against simulated captures whose conditions are
known (``simulate_capture``'s record), some of them darkened or brightened afterwards as a dim
room or a flash does, some with a flash's reflection burnt in, and some taken from further away.
For each check it counts the captures where its condition is clearly present
and those where it is clearly absent (``metrics.QUALITY_TRUTH``: the cases in between are left
out), then

- fits: on captures of one seed, the threshold with the best recall at a precision of at least
  ``--precision``, and
- scores: on captures of another seed, the precision and recall of the shipped thresholds and of
  the fitted ones, and how many clean captures (every condition clearly absent) carry any flag.

Where ``--sides`` names sizes, the blurred check is scored again with the document measured at most
that many pixels long (as a decode with fewer pixels would leave it), the truth as shipped.

    .venv/bin/python -m benchmarks.quality [--per-class 40] [--fit-seed 8101] [--seed 8102] [--sides 256 192]
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps
from sklearn.metrics import roc_auc_score

from benchmarks.reference_files import PHOTOS
from classifier import quality
from classifier.images import image_files
from classifier.localise import Localisation
from classifier.preprocessing import Preprocessing, document_view
from classifier.synth.augment import simulate_capture
from classifier.synth.demo import DOC_TYPES, render_document
from classifier.training.metrics import QUALITY_TRUTH as TRUTH
from classifier.weights import load_localiser

EXPOSED_SHARE = 0.3  # of the captures, darkened or brightened afterwards (half each)
BURNT_SHARE = 0.15  # of the captures without glare of their own, a patch of the document burnt white
FAR_SHARE = 0.2  # of the captures with the whole document in view, taken from 2-4 times as far


def captures(per_class: int, seed: int, photos) -> list[tuple[Image.Image, dict]]:
    """Simulated captures of every demo type with what each applied; some exposed afterwards."""
    out = []
    for t, key in enumerate(DOC_TYPES):
        for i in range(per_class):
            rng = np.random.default_rng([seed, t, i])
            conditions = {}
            img, quad = simulate_capture(render_document(key, rng), rng, backgrounds=photos, conditions=conditions)
            if "glare" not in conditions and rng.random() < BURNT_SHARE:
                img = glare(img, quad, conditions, rng)
            if conditions["outside_share"] == 0 and rng.random() < FAR_SHARE:
                img = further(img, conditions, rng, photos)
            if rng.random() < EXPOSED_SHARE:
                conditions["exposure"] = "dark" if rng.random() < 0.5 else "bright"
                img = expose(img, conditions["exposure"], rng)
            out.append((img, conditions))
    return out


def further(img: Image.Image, conditions: dict, rng: np.random.Generator, photos) -> Image.Image:
    """The same capture from 2-4 times as far: shrunk onto another photo, its edge feathered (a
    sharp edge there would look like a document's outline)."""
    factor = rng.uniform(0.25, 0.5)
    scene = (ImageOps.fit(Image.open(photos[int(rng.integers(len(photos)))]).convert("RGB"), img.size)
             if photos else Image.new("RGB", img.size, (120, 110, 100)))
    small = img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.BOX)
    edge = max(2, round(0.08 * min(small.size)))
    alpha = Image.new("L", small.size, 0)
    alpha.paste(255, (edge, edge, small.width - edge, small.height - edge))
    offset = rng.uniform(0, 1, 2) * (np.array(img.size) - small.size)
    scene.paste(small, tuple(int(v) for v in offset), alpha.filter(ImageFilter.GaussianBlur(edge / 2)))
    conditions["document_share"] = round(conditions["document_share"] * factor ** 2, 4)
    conditions["document_px"] = round(conditions["document_px"] * factor, 1)
    conditions["blur"] = {k: v * factor for k, v in conditions.get("blur", {}).items()}
    conditions["far"] = round(1 / factor, 2)
    return scene


def glare(img: Image.Image, quad: np.ndarray, conditions: dict, rng: np.random.Generator) -> Image.Image:
    """A flash's reflection that burns a patch of the document to white (3-12% of it)."""
    a = np.asarray(img).copy()
    document = np.zeros(a.shape[:2], np.uint8)
    cv2.fillConvexPoly(document, np.round(quad).astype(np.int32), 1)
    radius = np.sqrt(rng.uniform(0.03, 0.12) * document.sum() / np.pi)
    weights = np.asarray(document, float).ravel() / document.sum()
    centre = np.unravel_index(rng.choice(document.size, p=weights), document.shape)[::-1]
    spot = np.zeros_like(document)
    cv2.ellipse(spot, centre, (int(radius * 1.4), int(radius / 1.4)), rng.uniform(0, 180), 0, 360, 1, -1)
    washed = (spot > 0) & (document > 0) & (a.min(axis=2) < 245)
    a[spot > 0] = 255
    conditions["glare"] = {"clipped": True}
    conditions["washed_share"] = round(conditions["washed_share"] + float(washed.sum() / document.sum()), 4)
    return Image.fromarray(a)


def expose(img: Image.Image, exposure: str, rng: np.random.Generator) -> Image.Image:
    """The photo as taken in a dim room (darkened to 20-40%), or washed out by too much light."""
    a = np.asarray(img, np.float32) / 255
    if exposure == "dark":
        a = a * rng.uniform(0.2, 0.4)
    else:
        a = 1 - (1 - a) * rng.uniform(0.15, 0.35)
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))


def measures(images, localiser) -> tuple[list[dict[str, float]], list[Localisation]]:
    """Every capture's measures, and where its document was found."""
    prep = Preprocessing()
    out, outlines = [], []
    for img, _ in images:
        view, found = document_view(img, localiser, prep)
        out.append(quality.measure(view, found, img, img.size))
        outlines.append(found)
    return out, outlines


def sharpness_at(side: int, images, outlines) -> list[dict[str, float]]:
    """The documents' sharpness measured at most ``side`` pixels long (where an outline was found):
    what a decode with fewer pixels would leave the blurred check."""
    return [{"sharpness": quality.sharpness(img, found.quad, side)} if found.found else {}
            for (img, _), found in zip(images, outlines)]


def print_sides(sides, fitting, fit_outlines, testing, test_outlines, precision: float) -> None:
    """The blurred check with the document measured smaller, the truth as shipped: fitted on one seed's
    captures, scored on the other's."""
    print(f"blurred, the document measured at most N pixels long (truth at {quality.SHARPNESS_SIDE}):")
    print(f"{'side':>6} {'AUROC fit':>10} {'AUROC score':>12} {'fitted':>9} {'precision':>10} {'recall':>7}")
    for side in sides:
        fit_values, fit_labels = labelled("blurred", fitting, sharpness_at(side, fitting, fit_outlines))
        values, labels = labelled("blurred", testing, sharpness_at(side, testing, test_outlines))
        fitted = fit(fit_values, fit_labels, True, precision)
        p, r = scores(values, labels, fitted, True)
        print(f"{side:6} {auroc(fit_values, fit_labels):10.3f} {auroc(values, labels):12.3f} "
              f"{fitted:9.4f} {p:10.3f} {r:7.3f}")


def auroc(values: np.ndarray, labels: np.ndarray) -> float:
    """How well a low measure tells present (1) from absent (0); NaN without both."""
    return float(roc_auc_score(labels, -values)) if len(set(labels.tolist())) == 2 else float("nan")


def labelled(check: str, images, measured) -> tuple[np.ndarray, np.ndarray]:
    """A check's measure on the captures where its condition is clearly present (1) or absent (0)."""
    truth = TRUTH[check]
    values, labels = [], []
    for (_, conditions), m in zip(images, measured):
        if truth.measure not in m:
            continue  # no outline: nothing to measure
        for label, holds in ((1, truth.present), (0, truth.absent)):
            if holds(conditions):
                values.append(m[truth.measure])
                labels.append(label)
    return np.array(values), np.array(labels)


def flagged(values: np.ndarray, threshold: float, below: bool) -> np.ndarray:
    return values < threshold if below else values > threshold


def scores(values, labels, threshold, below) -> tuple[float, float]:
    flags = flagged(values, threshold, below)
    precision = (flags & (labels == 1)).sum() / max(flags.sum(), 1)
    recall = (flags & (labels == 1)).sum() / max((labels == 1).sum(), 1)
    return float(precision), float(recall)


def fit(values, labels, below: bool, precision: float) -> float:
    """The threshold with the best recall at that precision (ties: the most conservative)."""
    best, best_recall = None, -1.0
    for threshold in np.unique(values):
        p, r = scores(values, labels, threshold, below)
        if p >= precision and r > best_recall:
            best, best_recall = float(threshold), r
    return best if best is not None else float(values.min() if below else values.max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--fit-seed", type=int, default=8101)
    parser.add_argument("--seed", type=int, default=8102)
    parser.add_argument("--precision", type=float, default=0.95, help="the precision fitted thresholds keep")
    parser.add_argument("--sides", type=int, nargs="*", default=[],
                        help="also score the blurred check with the document measured at most this many pixels long")
    args = parser.parse_args(argv)
    photos = image_files(PHOTOS) if PHOTOS.is_dir() else []
    localiser = load_localiser()
    fitting = captures(args.per_class, args.fit_seed, photos)
    testing = captures(args.per_class, args.seed, photos)
    fit_measures, fit_outlines = measures(fitting, localiser)
    test_measures, test_outlines = measures(testing, localiser)
    print(f"{len(fitting)} captures to fit on (seed {args.fit_seed}), {len(testing)} to score on (seed {args.seed}); "
          f"backgrounds: {len(photos)} photos")
    print(f"{'check':20} {'present':>8} {'absent':>7} {'shipped':>9} {'precision':>10} {'recall':>7} "
          f"{'fitted':>9} {'precision':>10} {'recall':>7}")
    for check, truth in TRUTH.items():
        fitted = fit(*labelled(check, fitting, fit_measures), truth.below, args.precision)
        values, labels = labelled(check, testing, test_measures)
        shipped = getattr(quality, truth.threshold)
        (sp, sr), (fp, fr) = (scores(values, labels, t, truth.below) for t in (shipped, fitted))
        print(f"{check:20} {(labels == 1).sum():8} {(labels == 0).sum():7} {shipped:9.4f} {sp:10.3f} {sr:7.3f} "
              f"{fitted:9.4f} {fp:10.3f} {fr:7.3f}")
    clean = [m for (_, c), m in zip(testing, test_measures)
             if "outside_share" in m and all(t.absent(c) for t in TRUTH.values())]
    flags = [quality.assess(m) for m in clean]
    print(f"clean captures (every condition clearly absent): {len(clean)}, with any flag: "
          f"{np.mean([bool(f) for f in flags]) if clean else 0:.1%}"
          + "".join(f"; {code} {sum(any(i.code == code for i in f) for f in flags)}" for code in quality.CODES))
    if args.sides:
        print_sides(args.sides, fitting, fit_outlines, testing, test_outlines, args.precision)


if __name__ == "__main__":
    main()

"""Document localisation on held-out captured demo images with natural-photo backgrounds:
the learned localiser against the classical baseline, on documents wholly in frame and on
documents partly outside it (one or two corners out, at least 60% in view; IoU is of the whole
document, the part outside the frame included). Also how often each claims a document in the
natural photos themselves (which hold none).

    .venv/bin/python -m benchmarks.localise [--per-class 20] [--seed 7919] [--threads 1]

The seed must be one the localiser never trained on (training uses 0 and 10000). The
classical baseline (edges, contours, polygons) lives here: nothing else uses it.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from benchmarks.reference_files import PHOTOS
from classifier.artifact import LOCALISER_DIR, load_localiser
from classifier.images import image_files, load_image
from classifier.localise import Localisation, order_corners
from classifier.synth.demo import make_demo_dataset
from classifier.training.metrics import localisation_metrics


def locate_classical(img: Image.Image, work_side: int = 320, min_area: float = 0.04) -> Localisation:
    """Edges, contours and polygon approximation: the largest convex four-sided contour
    covering at least ``min_area`` of the image. Geometric corner order; confidence is how
    well the contour fills its quad."""
    a = np.asarray(img.convert("L"))
    f = work_side / max(a.shape)
    small = cv2.resize(a, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    median = float(np.median(small))
    edges = cv2.Canny(small, 0.66 * median, 1.33 * median)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    total = small.shape[0] * small.shape[1]
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:10]:
        area = cv2.contourArea(contour)
        if area < min_area * total:
            break
        poly = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
        if len(poly) == 4 and cv2.isContourConvex(poly):
            quad = order_corners(poly.reshape(4, 2).astype(float) / f)
            confidence = min(1.0, area / max(cv2.contourArea(poly.astype(np.float32)), 1e-6))
            return Localisation(quad, confidence)
    return Localisation(None, 0.0)


def run(locate, images):
    """Predicted quads (None when not found) and per-image milliseconds."""
    quads, times = [], []
    for img in images:
        start = time.perf_counter()
        result = locate(img)
        times.append((time.perf_counter() - start) * 1000)
        quads.append(result.quad if result.found else None)
    return quads, times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7919)
    parser.add_argument("--localiser", type=Path, default=LOCALISER_DIR, help="the localiser's folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--half", choices=["all", "even", "odd"], default="all",
                        help="only every other photo (sorted by name): measure on the half a localiser "
                             "trained with --backgrounds never saw")
    args = parser.parse_args()
    photos = image_files(PHOTOS) if PHOTOS.is_dir() else []
    photos = photos if args.half == "all" else photos[args.half == "odd"::2]
    if not photos:
        sys.exit(f"skipped: no natural photos at {PHOTOS} (IDCLASS_TEST_PHOTOS; needed as capture backgrounds)")
    if args.threads:
        torch.set_num_threads(args.threads)
    negatives = [load_image(p) for p in photos]
    localiser = load_localiser(args.localiser)
    print(f"held-out captures (seed {args.seed}, natural-photo backgrounds), {len(negatives)} natural photos "
          f"without a document; torch threads: {torch.get_num_threads()}")
    print(f"{'framing':8} {'method':10} {'n':>4} {'mean IoU':>9} {'IoU>=0.8':>9} {'not found':>10} "
          f"{'found in photos':>16} {'median ms':>10} {'p90 ms':>7}")
    claims = {}
    for framing in ("whole", "partial"):
        images, truths = held_out_captures(args.per_class, args.seed, photos, framing)
        localiser.locate(images[0])  # warm-up
        for name, locate in (("learned", localiser.locate), ("classical", locate_classical)):
            quads, times = run(locate, images)
            if name not in claims:
                claims[name] = sum(q is not None for q in run(locate, negatives)[0]) / len(negatives)
            m = localisation_metrics(quads, truths)
            print(f"{framing:8} {name:10} {m['n']:4} {m['mean_iou']:9.3f} {m['share_iou_0_8']:9.1%} "
                  f"{m['share_not_found']:10.1%} {claims[name]:16.1%} {statistics.median(times):10.1f} "
                  f"{np.percentile(times, 90):7.1f}")


def held_out_captures(per_class: int, seed: int, photos, framing: str):
    """Captures made for this run, decoded, with their true corners."""
    with tempfile.TemporaryDirectory() as tmp:
        make_demo_dataset(Path(tmp), per_class, seed, backgrounds=photos, framing=framing, workers=1, progress=False)
        paths = sorted(Path(tmp).glob("*/*.jpg"))
        return ([load_image(p) for p in paths],
                [np.array(json.loads(p.with_suffix(".json").read_text())["quad"]) for p in paths])


if __name__ == "__main__":
    main()

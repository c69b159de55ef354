"""Document localisation on held-out captured demo images with natural-photo backgrounds, per
kind of capture: documents wholly in frame, partly outside it (one or two corners out, at least
60% in view; IoU is of the whole document, the part outside the frame included), and filling
the frame as a scan or a tight crop does. Each learned localiser given (several: compared in
one run) against the classical baseline: how often each finds an outline, how well it fits, how
many found outlines no document could have (``degenerate``, not ``localise.plausible``), and its
cost per photo as a server runs it (its network as an ONNX graph on ONNX Runtime). Also how
often each claims a document in the natural photos themselves (which hold none), and, where
IDCLASS_TEST_SCANS names them, the real flat scans: found, IoU with the image's border, and with
``--model`` the answer given.

    .venv/bin/python -m benchmarks.localise [--localiser DIR [DIR ...]] [--per-class 20] [--seed 7919]
        [--threads 1] [--model DIR]

The seed must be one the localiser never trained on (training uses 0 to 5 and 10000 up). The
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
from PIL import Image

from benchmarks.reference_files import PHOTOS, SCANS
from classifier.artifact import LOCALISER_DIR
from classifier.export import export_graph, localiser_example
from classifier.graphs import open_session
from classifier.images import image_files, load_image
from classifier.localise import Localisation, Localiser, order_corners
from classifier.weights import load_localiser_network
from classifier.synth.demo import make_demo_dataset
from classifier.training.dataset import scan
from classifier.training.metrics import localisation_metrics

FRAMINGS = {"whole": "in frame", "partial": "partly out", "scan": "whole frame"}  # make_demo_dataset's, shown as


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


def run(locate, images) -> tuple[list[Localisation], list[float]]:
    """Each image's localisation and milliseconds."""
    results, times = [], []
    for img in images:
        start = time.perf_counter()
        results.append(locate(img))
        times.append((time.perf_counter() - start) * 1000)
    return results, times


def row(framing: str, method: str, results: list[Localisation], truths, images, in_photos: str = "",
        times=()) -> str:
    m = localisation_metrics([r.quad for r in results], truths, [img.width * img.height for img in images])
    timing = f"{statistics.median(times):10.1f} {np.percentile(times, 90):7.1f}" if times else ""
    return (f"{framing:12} {method:10} {m['n']:4} {1 - m['share_not_found']:7.1%} {m['mean_iou']:9.3f} "
            f"{m['share_iou_0_8']:9.1%} {m['degenerate']:11} {no_document(results):>12} {in_photos:>22} {timing}")


def no_document(results: list[Localisation]) -> str:
    """The share the localiser says hold no document at all, where it measures that."""
    if any(r.presence is None for r in results):
        return "-"
    return f"{np.mean([r.no_document for r in results]):.1%}"


def served(folder: Path, threads: int | None, path: Path) -> Localiser:
    """The localiser in ``folder`` as a server runs it: its network as an ONNX graph (written to ``path``)."""
    net, config = load_localiser_network(folder)
    export_graph(net, localiser_example(config), "image", ["heatmaps"], path)
    session = open_session(path, threads)
    return Localiser(config, lambda rows: session.run(None, {"image": rows})[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7919)
    parser.add_argument("--localiser", type=Path, nargs="+", default=[LOCALISER_DIR],
                        help="localisers' folders, measured in turn (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime's threads (0: every core)")
    parser.add_argument("--half", choices=["all", "even", "odd"], default="all",
                        help="only every other photo (sorted by name): measure on the half a localiser "
                             "trained with --backgrounds never saw")
    parser.add_argument("--model", type=Path, help="a model trained on the real scans' types: also say what it "
                                                   "answers each scan (backbone weights: IDCLASS_TEST_WEIGHTS)")
    args = parser.parse_args()
    photos = image_files(PHOTOS) if PHOTOS.is_dir() else []
    photos = photos if args.half == "all" else photos[args.half == "odd"::2]
    if not photos:
        sys.exit(f"skipped: no natural photos at {PHOTOS} (IDCLASS_TEST_PHOTOS; needed as capture backgrounds)")
    negatives = [load_image(p) for p in photos]
    captures = {framing: held_out_captures(args.per_class, args.seed, photos, framing) for framing in FRAMINGS}
    print(f"held-out captures (seed {args.seed}, natural-photo backgrounds), {len(negatives)} natural photos without "
          f"a document; ONNX Runtime threads: {args.threads or 'all'}")
    with tempfile.TemporaryDirectory() as tmp:
        methods = [(folder, served(folder, args.threads or None, Path(tmp) / f"localiser-{i}.onnx"))
                   for i, folder in enumerate(args.localiser)]
        for name, localiser in methods:
            print(f"learned: {name} ({localiser.network}, decoding {localiser.decode})")
        print(f"{'capture':12} {'method':10} {'n':>4} {'found':>7} {'mean IoU':>9} {'IoU>=0.8':>9} {'degenerate':>11} "
              f"{'no document':>12} {'photos: found/no doc':>22} {'median ms':>10} {'p90 ms':>7}")
        methods = [(f"learned {i + 1}" if len(methods) > 1 else "learned", loc.locate) for i, (_, loc) in
                   enumerate(methods)] + [("classical", locate_classical)]
        in_photos = {}
        for framing, label in FRAMINGS.items():
            images, truths = captures[framing]
            for name, locate in methods:
                locate(images[0])  # warm-up
                results, times = run(locate, images)
                if name not in in_photos:
                    negative = run(locate, negatives)[0]
                    in_photos[name] = f"{np.mean([r.found for r in negative]):.1%} / {no_document(negative)}"
                print(row(label, name, results, truths, images, in_photos[name], times))
        if SCANS.is_dir():
            real_scans(methods, args.model)
        else:
            print(f"real scans: skipped, no folder at {SCANS} (IDCLASS_TEST_SCANS)")


def real_scans(methods, model: Path | None) -> None:
    """The real flat scans: their true outline is the image's border."""
    data = scan([SCANS])
    images = [load_image(img.path) for img in data.images]
    truths = [np.array([[0, 0], [i.width, 0], [i.width, i.height], [0, i.height]], float) for i in images]
    for name, locate in methods:
        print(row("real scans", name, run(locate, images)[0], truths, images))
    if model is None:
        print("real scans' answers: pass --model (trained on their types) to see them")
        return
    from classifier.predictor import Predictor
    predictor = Predictor(model)
    answers = [predictor.predict(img.path) for img in data.images]
    right = sum(a.document_type == img.label for a, img in zip(answers, data.images))
    unsupported = sum(a.document_type is None for a in answers)
    bands = {b: sum(a.band.value == b for a in answers) for b in ("high", "medium", "low")}
    print(f"real scans' answers ({model}): {right} of {len(answers)} their own type ({bands}), "
          f"{unsupported} not supported, {len(answers) - right - unsupported} another type")


def held_out_captures(per_class: int, seed: int, photos, framing: str):
    """Captures made for this run, decoded, with their true corners."""
    with tempfile.TemporaryDirectory() as tmp:
        make_demo_dataset(Path(tmp), per_class, seed, backgrounds=photos, framing=framing, workers=1,
                          progress=False)
        paths = sorted(Path(tmp).glob("*/*.jpg"))
        return ([load_image(p) for p in paths],
                [np.array(json.loads(p.with_suffix(".json").read_text())["quad"]) for p in paths])


if __name__ == "__main__":
    main()

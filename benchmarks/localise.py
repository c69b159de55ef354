"""Document localisation on held-out captured demo images with natural-photo backgrounds:
the learned localiser against the classical baseline. Also how often each claims a
document in the natural photos themselves (which hold none).

    .venv/bin/python -m benchmarks.localise [--per-class 20] [--seed 7919] [--threads 1]

The seed must be one the localiser never trained on (training uses 0 and 10000).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from classifier.demo import make_demo_dataset
from classifier.images import load_image
from classifier.localise import DEFAULT_WEIGHTS, Localiser, locate_classical, localisation_metrics

NATURAL_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "natural-images"


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
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--half", choices=["all", "even", "odd"], default="all",
                        help="only every other photo (sorted by name): measure on the half a localiser "
                             "trained with --backgrounds never saw")
    args = parser.parse_args()
    photos = sorted(p for p in NATURAL_IMAGES.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    photos = photos if args.half == "all" else photos[args.half == "odd"::2]
    if not photos:
        sys.exit(f"skipped: no natural photos at {NATURAL_IMAGES} (needed as capture backgrounds)")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        make_demo_dataset(Path(tmp), args.per_class, args.seed, backgrounds=photos, workers=1, progress=False)
        paths = sorted(Path(tmp).glob("*/*.jpg"))
        images = [load_image(p) for p in paths]
        truths = [np.array(json.loads(p.with_suffix(".json").read_text())["quad"]) for p in paths]
    negatives = [load_image(p) for p in photos]
    localiser = Localiser.load(args.weights)
    localiser.locate(images[0])  # warm-up
    print(f"{len(images)} held-out captures (seed {args.seed}, natural-photo backgrounds), "
          f"{len(negatives)} natural photos without a document; torch threads: {torch.get_num_threads()}")
    print(f"{'method':10} {'mean IoU':>9} {'IoU>=0.8':>9} {'not found':>10} {'found in photos':>16} "
          f"{'median ms':>10} {'p90 ms':>7}")
    for name, locate in (("learned", localiser.locate), ("classical", locate_classical)):
        quads, times = run(locate, images)
        false_found = sum(q is not None for q in run(locate, negatives)[0]) / len(negatives)
        m = localisation_metrics(quads, truths)
        print(f"{name:10} {m['mean_iou']:9.3f} {m['share_iou_0_8']:9.1%} {m['share_not_found']:10.1%} "
              f"{false_found:16.1%} {statistics.median(times):10.1f} {np.percentile(times, 90):7.1f}")


if __name__ == "__main__":
    main()

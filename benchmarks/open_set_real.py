"""Open-set answers on real documents: are real documents of types a model never learned turned
away, and with which reason?

- Leave-out (``--splits``): train on all but ``--unknown-types`` of the real scans' types (one
  specimen each, IDCLASS_TEST_SCANS), then answer the left-out scans, flat and as simulated
  captures on the natural photos' backgrounds, and captures of the known ones.
- ``--model``: a model of other types (the demo model ``scripts/run.sh`` trains) answers every
  real scan, flat and captured.
- Natural photos (IDCLASS_TEST_PHOTOS) through each model: the share answered ``no_document``.

The real scans are for measuring only: nothing that ships is trained on them.

    .venv/bin/python -m benchmarks.open_set_real [--splits 3] [--captures 6] [--model models/current]
        [--split-models models/splits]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.reference_files import PHOTOS, SCANS, WEIGHTS
from classifier import artifact
from classifier.bands import ConfidenceBand
from classifier.images import image_files, load_image
from classifier.predictor import Predictor
from classifier.synth.augment import simulate_capture
from classifier.training.dataset import scan

CAPTURE_SEED = 2020


def captures(images, per_image: int, photos) -> list:
    """``per_image`` simulated photos of each (label, path), on the natural photos as backgrounds."""
    out = []
    for i, (label, path) in enumerate(images):
        doc = load_image(path)
        for k in range(per_image):
            rng = np.random.default_rng([CAPTURE_SEED, i, k])
            out.append((label, simulate_capture(doc, rng, backgrounds=photos, framing="whole")[0]))
    return out


def answers(predictor: Predictor, items: list) -> list:
    return [predictor.predict(image) for _, image in items]


def summary(name: str, items: list, got: list, expect_known: bool) -> dict:
    """How many were turned away, typed right, typed in the high band, and the reasons given."""
    rejected = np.array([a.band is ConfidenceBand.UNSUPPORTED for a in got])
    right = np.array([a.document_type == label for (label, _), a in zip(items, got)])
    high = np.array([a.band is ConfidenceBand.HIGH for a in got])
    row = {"set": name, "n": len(got), "rejected": float(rejected.mean()), "high": float(high.mean()),
           "reasons": dict(Counter(a.reason for a in got if a.reason))}
    if expect_known:
        row["right_type"] = float(right.mean())
    return row


def print_row(row: dict) -> None:
    extra = f", right type {row['right_type']:.1%}" if "right_type" in row else ""
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(row["reasons"].items())) or "none"
    print(f"  {row['set']:34} n={row['n']:4}  turned away {row['rejected']:6.1%}  high band {row['high']:6.1%}"
          f"{extra}; reasons: {reasons}")


def leave_out(data, split: int, n_unknown: int, per_image: int, photos, weights: Path, models: Path,
              work: Path) -> list:
    """``data``: the real scans (``dataset.scan``). The split's model is ``models``/model{split}, trained
    there unless it is there already (training is not repeatable bit for bit: to compare answers, keep it)."""
    from classifier.training.train import TrainConfig, train_classifier

    types = sorted({img.label for img in data.images})
    unknown = set(np.random.default_rng(split).choice(types, n_unknown, replace=False).tolist())
    model_dir = models / f"model{split}"
    if not (model_dir / artifact.HEAD.metadata).is_file():
        train_dir = work / f"split{split}"
        train_dir.mkdir()
        labels = json.loads((SCANS / "labels.json").read_text())
        for t in types:
            if t not in unknown:
                (train_dir / t).symlink_to(SCANS / t)
        (train_dir / "labels.json").write_text(json.dumps({t: labels[t] for t in types if t not in unknown}))
        config = TrainConfig(backbone="small", weights=str(weights), cache_dir=work / "features")  # --backbone small
        train_classifier([train_dir], config, out_dir=model_dir, log=lambda _: None)
    predictor = Predictor(model_dir, weights=weights)
    known = [(img.label, img.path) for img in data.images if img.label not in unknown]
    left = [(img.label, img.path) for img in data.images if img.label in unknown]
    print(f"split {split}: unknown {', '.join(sorted(unknown))}")
    rows = []
    for name, items, expect in (("known captures", captures(known, per_image, photos), True),
                                ("unknown flat", [(lbl, load_image(p)) for lbl, p in left], False),
                                ("unknown captures", captures(left, per_image, photos), False)):
        rows.append(summary(name, items, answers(predictor, items), expect))
        print_row(rows[-1])
    rows.append(natural(predictor, photos))
    return rows


def natural(predictor: Predictor, photos) -> dict:
    items = [(None, p) for p in photos]
    row = summary("natural photos", items, answers(predictor, items), False)
    print_row(row)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=3, help="leave-out splits (0 for none)")
    parser.add_argument("--unknown-types", type=int, default=4)
    parser.add_argument("--captures", type=int, default=6, help="simulated captures per scan")
    parser.add_argument("--model", type=Path, help="a model of other types, to answer every real scan")
    parser.add_argument("--split-models", type=Path,
                        help="keep the leave-out models here (model0, model1, ...), or answer with those already here")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if not SCANS.is_dir():
        parser.error(f"no real scans at {SCANS}: set IDCLASS_TEST_SCANS")
    photos = image_files(PHOTOS) if PHOTOS.is_dir() else []
    data = scan([SCANS])
    report = {}
    if args.model:
        predictor = Predictor(args.model, weights=WEIGHTS if WEIGHTS.is_file() else None)
        everything = [(img.label, img.path) for img in data.images]
        print(f"model {args.model} ({', '.join(predictor.model.classes)}) on the real scans")
        report["other_types"] = [summary(name, items, answers(predictor, items), False) for name, items in
                                 (("real scans flat", [(lbl, load_image(p)) for lbl, p in everything]),
                                  ("real scans captured", captures(everything, args.captures, photos)))]
        for row in report["other_types"]:
            print_row(row)
        report["other_types"].append(natural(predictor, photos))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["leave_out"] = [leave_out(data, split, args.unknown_types, args.captures, photos, WEIGHTS,
                                         args.split_models or work, work) for split in range(args.splits)]
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

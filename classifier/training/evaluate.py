"""Evaluating a trained model on a labelled folder, through the serving code path."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import matplotlib
from sklearn.metrics import roc_auc_score

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from classifier.bands import ConfidenceBand  # noqa: E402
from classifier.errors import DatasetError  # noqa: E402
from classifier.images import image_files  # noqa: E402
from classifier.predictor import Classification, Predictor  # noqa: E402
from classifier.results import RESULT_COLUMNS, csv_writer, result_fields  # noqa: E402
from classifier.training.dataset import scan  # noqa: E402
from classifier.training.errors_sheet import write_errors_sheet  # noqa: E402
from classifier.training.metrics import (classification_metrics, localisation_metrics, polygon_iou,  # noqa: E402
                                         quality_metrics)

# predictions.csv: document_type is the predicted type; see classifier.results for the rest
PREDICTION_COLUMNS = ("path", "true_type", *RESULT_COLUMNS, "iou")


def evaluate_classifier(predictor: Predictor, data_dirs: list[Path], report_dir: Path, batch_size: int = 32,
                        unknown_dirs: list[Path] = ()) -> dict:
    """``unknown_dirs``: images the model must answer "not a supported document" (``open_set``)."""
    classes = predictor.model.classes
    data = scan(data_dirs, classes=classes)
    targets = np.array(data.targets())
    probs, answers = predict_all(predictor, data, batch_size)
    report = classification_metrics(targets, probs, len(classes))
    report["supported"] = supported_metrics(answers, targets, classes)
    if unknown_dirs:
        report["open_set"] = open_set_metrics(predictor, answers, unknown_dirs, batch_size)
    true_quads = [true_quad(img.path) for img in data.images]
    conditions = [capture_conditions(img.path) for img in data.images]
    if all(c is not None for c in conditions):
        report["quality"] = quality_metrics([{i.code for i in a.quality} for a in answers], conditions,
                                            probs.argmax(1) == targets)
    if predictor.localiser is not None and all(q is not None for q in true_quads):
        report["localisation"] = localisation_metrics([found_quad(a) for a in answers], true_quads)
        whole, _ = predict_all(predictor, data, batch_size, localise=False)
        report["localisation"] |= {"accuracy_localised": report["accuracy"],
                                   "accuracy_whole_image": float((whole.argmax(1) == targets).mean())}
    correct = probs.argmax(1) == targets
    bands = np.array([a.band.value for a in answers])  # as people are shown them
    report["bands"] = {b.value: {"count": int((bands == b.value).sum()),
                                 "accuracy": float(correct[bands == b.value].mean())
                                 if (bands == b.value).any() else None}
                       for b in ConfidenceBand}
    report["classes"] = classes
    report["per_class"] = dict(zip(classes, report["per_class"]))
    report["model_version"] = predictor.version
    report["data_dirs"] = [str(d) for d in data.dirs]
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(report_dir / "predictions.csv", data, answers, true_quads)
    report["errors_sheet"] = write_errors_sheet(report_dir / "errors.png", [img.path for img in data.images],
                                                [img.label for img in data.images], answers)
    (report_dir / "report.json").write_text(json.dumps(report, indent=2))
    plot_confusion(report["confusion"], classes, report_dir / "confusion.png")
    plot_reliability(report["reliability"], report["ece"], report_dir / "reliability.png")
    return report


def supported_metrics(answers: list[Classification], targets: np.ndarray, classes: list[str]) -> dict:
    """Of the known-type images, how many got a type, and how many of those the right one."""
    named = np.array([a.document_type is not None for a in answers])
    right = np.array([a.document_type == classes[t] for a, t in zip(answers, targets)])
    return {"answered": int(named.sum()), "rejected": int((~named).sum()),
            "rejected_share": float((~named).mean()),
            "accuracy": float(right[named].mean()) if named.any() else None}


def open_set_metrics(predictor: Predictor, known: list[Classification], unknown_dirs: list[Path],
                     batch_size: int) -> dict:
    """How well novelty tells the known-type images from ``unknown_dirs``' images: AUROC, and the
    share of each the model answered "not a supported document"; and per unknown folder, its own
    (``per_folder``), with the reasons given."""
    folders = {d: image_files(d) for d in unknown_dirs}
    if not any(folders.values()):
        raise DatasetError(f"no images under {', '.join(map(str, unknown_dirs))} to use as unknowns")
    if predictor.open_set is None:
        raise DatasetError("this model was trained before open-set answers; retrain it to measure them")
    answers = {d: [item.classification for item in tqdm(predictor.predict_each(paths, batch_size), total=len(paths),
                                                        desc=f"evaluating unknowns in {d.name}", unit="img")
                   if item.classification] for d, paths in folders.items() if paths}
    unknown = [a for d in answers for a in answers[d]]
    report = _separation(known, unknown)
    return report | {"known_rejected": _rejected_share(known), "n_unknown": len(unknown),
                     "n_unreadable": sum(map(len, folders.values())) - len(unknown),
                     "threshold": predictor.open_set.threshold, "unknown_dirs": [str(d) for d in unknown_dirs],
                     "per_folder": {str(d): _separation(known, a) | {"n": len(a)} for d, a in answers.items()}}


def _separation(known: list[Classification], unknown: list[Classification]) -> dict:
    """Novelty's AUROC and false-positive rate at 95% of the unknowns caught, the share of the
    unknowns turned away, given a type in the high band, and the reasons given."""
    novelty = np.array([a.novelty for a in known] + [a.novelty for a in unknown])
    truth = np.array([0] * len(known) + [1] * len(unknown))
    reasons = Counter(a.reason for a in unknown if a.reason)
    return {"auroc": float(roc_auc_score(truth, novelty)),
            "fpr_at_95_tpr": float((novelty[truth == 0] >= np.quantile(novelty[truth == 1], 0.05)).mean()),
            "unknown_rejected": _rejected_share(unknown),
            "unknown_high": float(np.mean([a.band is ConfidenceBand.HIGH for a in unknown])),
            "reasons": dict(reasons)}


def _rejected_share(answers: list[Classification]) -> float:
    return float(np.mean([a.band is ConfidenceBand.UNSUPPORTED for a in answers]))


def predict_all(predictor: Predictor, data, batch_size: int, localise: bool = True):
    """Scores of every class the model ranked (top_k: all that accuracy, ECE and bands
    need), and every image's answer."""
    index = {c: i for i, c in enumerate(predictor.model.classes)}
    probs = np.zeros((len(data.images), len(index)), dtype=np.float32)
    answers = []
    desc = "evaluating" if localise else "evaluating whole images"
    for start in tqdm(range(0, len(data.images), batch_size), desc=desc, unit="batch"):
        batch = data.images[start:start + batch_size]
        for row, prediction in enumerate(predictor.predict_batch([img.path for img in batch], localise), start):
            for alt in prediction.top_k:
                probs[row, index[alt.document_type]] = alt.score
            answers.append(prediction)
    return probs, answers


def found_quad(answer: Classification) -> np.ndarray | None:
    """The document's corners where the localiser found them."""
    return answer.localisation.quad if answer.localisation else None


def write_predictions(path: Path, data, answers: list[Classification], true_quads: list) -> None:
    """predictions.csv, one ``PREDICTION_COLUMNS`` row per image, to sort and filter the answers
    behind the metrics. ``iou``: with the true corners, where a corner file and a localiser exist."""
    with open(path, "w", newline="") as fh:
        writer = csv_writer(fh, PREDICTION_COLUMNS)
        for img, answer, truth in zip(data.images, answers, true_quads, strict=True):
            located = truth is not None and answer.localisation is not None
            iou = f"{polygon_iou(found_quad(answer), truth):.4f}" if located else ""
            writer.writerow({"path": str(img.path), "true_type": img.label, **result_fields(answer), "iou": iou})


def true_quad(path: Path) -> np.ndarray | None:
    """The document's corners from the JSON beside an image (as make_demo_dataset writes)."""
    record = _record(path)
    return np.array(record["quad"], dtype=float) if record else None


def capture_conditions(path: Path) -> dict | None:
    """What the simulated capture applied, from the JSON beside an image (make_demo_dataset's photos)."""
    return (_record(path) or {}).get("capture")


def _record(path: Path) -> dict | None:
    beside = path.with_suffix(".json")
    return json.loads(beside.read_text()) if beside.is_file() else None


def format_table(report: dict) -> str:
    lines = [f"{'type':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<24} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8}")
    lines.append(f"\naccuracy {report['accuracy']:.4f} on {report['n']} images, ECE {report['ece']:.4f}")
    supported = report["supported"]
    lines.append(f"answered with a type: {supported['answered']} of {report['n']}, accuracy among them "
                 f"{_fraction(supported['accuracy'])}; {supported['rejected']} answered \"not a supported document\"")
    lines.append("bands: " + ", ".join(f"{band} {v['count']} ({_fraction(v['accuracy'])} correct)"
                                       for band, v in report["bands"].items()))
    if "localisation" in report:
        loc = report["localisation"]
        lines.append(f"localisation: mean IoU {loc['mean_iou']:.3f}, IoU >= 0.8 on {loc['share_iou_0_8']:.1%}, "
                     f"not found {loc['share_not_found']:.1%}; accuracy {loc['accuracy_localised']:.4f} localised, "
                     f"{loc['accuracy_whole_image']:.4f} on whole images")
    if "quality" in report:
        checks = {code: m for code, m in report["quality"].items() if code != "clean"}
        lines.append("capture quality (precision, recall; accuracy flagged / not flagged): " + ", ".join(
            f"{code} {_fraction(m['precision'])}, {_fraction(m['recall'])}; {_fraction(m['accuracy_flagged'])} / "
            f"{_fraction(m['accuracy_not_flagged'])}" for code, m in checks.items()))
        clean = report["quality"]["clean"]
        lines.append(f"clean captures: {clean['n']}, flagged {_fraction(clean['with_any_flag'])}")
    if "open_set" in report:
        o = report["open_set"]
        lines.append(f"open set: AUROC {o['auroc']:.3f} against {o['n_unknown']} unknown images; "
                     f"unknowns rejected {o['unknown_rejected']:.1%}, known images rejected {o['known_rejected']:.1%}")
        for folder, f in o["per_folder"].items():
            lines.append(f"  {folder}: {f['n']} images, AUROC {f['auroc']:.3f}, "
                         f"FPR at 95% TPR {f['fpr_at_95_tpr']:.3f}, rejected {f['unknown_rejected']:.1%}, "
                         f"high band {f['unknown_high']:.1%}, reasons "
                         + (", ".join(f"{r} {n}" for r, n in sorted(f["reasons"].items())) or "none"))
    return "\n".join(lines)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path) -> None:
    matrix = np.array(confusion)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 0.6 + 0.6 * len(classes)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > matrix.max() / 2 else "black")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(bins: list[dict], ece: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    used = [b for b in bins if b["count"]]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar([(b["lo"] + b["hi"]) / 2 for b in used], [b["accuracy"] for b in used],
           width=[b["hi"] - b["lo"] for b in used], edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o", color="C3", label="mean score")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("score (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, ECE {ece:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

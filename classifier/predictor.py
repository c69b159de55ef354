"""Serving: backbone, localiser and head loaded once, then any number of classifications. On the CPU
they run as the model's ONNX graphs, and this module never imports torch (``classifier.graphs``)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
from PIL import Image

from classifier import artifact, quality
from classifier.bands import ConfidenceBand
from classifier.designs import DesignReferences, blurred_only, readable
from classifier.device import describe, resolve_device
from classifier.errors import InvalidImage
from classifier.graphs import OnnxGraphs
from classifier.images import ImageSource, load_image
from classifier.inference import BatchedForward
from classifier.localise import Localisation, Localiser
from classifier.openset import NO_OUTLINE_NOVELTY, untyped_label
from classifier.preprocessing import document_view
from classifier.quality import QualityIssue


@dataclass(frozen=True)
class Alternative:
    document_type: str
    label: str
    score: float


@dataclass(frozen=True, kw_only=True)
class Classification:
    """The classifier's answer for one image: the best type first in ``top_k``. In the unsupported
    band it names no type (``document_type`` None), and ``top_k`` holds the closest known ones."""

    document_type: str | None  # the class folder name, e.g. "lva_passport"; None: the answer names no type
    label: str  # shown to people, e.g. "Passport of Latvia", or ``openset.untyped_label``
    score: float  # the top type's probability
    band: ConfidenceBand
    top_k: list[Alternative]
    model_version: str
    width: int  # the upright image's own size, in which ``localisation`` is given
    height: int
    image_format: str | None  # the file's format (``images.SUPPORTED_FORMATS``), None for a decoded image
    localisation: Localisation | None = None  # None when the model does not localise
    novelty: float | None = None  # how unlike the training images (``openset``); None for a model without
    reason: str | None = None  # why no type is named (a key of ``openset.REASONS``); None with a type
    quality: list[QualityIssue] = field(default_factory=list)  # what is wrong with the photo, most important first
    timings_ms: dict[str, float] = field(default_factory=dict)


class HeadVerdict(NamedTuple):
    """What the open set makes of an image before its printed design is looked at."""

    no_outline: bool  # no outline, taken for no document (a model of the earlier kind)
    novelty: float | None  # the answer's novelty
    reason: str | None  # why the open set names no type; None where it names one


@dataclass(frozen=True)
class BatchItem:
    """One image of ``Predictor.predict_each``: its answer, or why it has none."""

    source: ImageSource
    classification: Classification | None
    error: InvalidImage | None


class Predictor:
    """Thread-safe: decoding runs concurrently; the localiser's and the backbone's forward
    passes run one at a time each, over the images of every request waiting for one
    (``BatchedForward``)."""

    def __init__(self, model_dir: Path, weights: str | Path | None = None, threads: int | None = None,
                 top_k: int = 3, device: str = "cpu", runtime: str | None = None):
        """``threads``: the runtime's threads for one forward pass (None: its default).
        ``device``: where the backbone runs (``classifier.device``). ``runtime``: "onnx", every network
        as the model's ONNX graph, on the CPU only; or "torch", the backbone as its torch module, from
        ``weights``, the backbone weights file it was trained with (``IDCLASS_BACKBONE_WEIGHTS``), the
        localiser and the head still as their graphs (``torch_graphs``). None: ONNX on the CPU, torch
        on a GPU."""
        self.model = artifact.read_model(model_dir)
        self.prep = self.model.preprocessing
        device = resolve_device(device)
        if (runtime or ("onnx" if device == "cpu" else "torch")) == "onnx":
            if device != "cpu":
                raise ValueError("ONNX graphs run on the CPU; a GPU runs the torch modules")
            self.graphs = OnnxGraphs(model_dir, self.model, threads)
        else:
            from classifier.torch_graphs import TorchGraphs  # torch: only where it is asked for

            self.graphs = TorchGraphs(model_dir, self.model, weights, device, threads)
        self.device = describe(device, self.graphs.threads)
        self._passes = BatchedForward(self.graphs.features)
        localiser_dir = artifact.model_localiser_dir(model_dir, self.prep)
        self.localiser = (Localiser(artifact.read_localiser(localiser_dir), BatchedForward(self.graphs.localise))
                          if localiser_dir else None)
        self.calibration = self.model.calibration
        self.open_set = self.model.open_set  # None for a model trained before open-set answers
        self.design_rule = self.model.design_rule  # None for a model trained before them: the band is the score's
        self.designs = (DesignReferences.load(artifact.designs_file(model_dir, self.model))
                        if self.design_rule else None)
        self.top_k = top_k

    @property
    def version(self) -> str:
        return self.model.version

    def predict(self, image: ImageSource) -> Classification:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageSource], localise: bool = True) -> list[Classification]:
        """Raises InvalidImage for the first image that cannot be classified. With
        localise=False the whole image is classified (to measure what localising adds)."""
        t0 = time.perf_counter()
        decoded = [self.decode(img, localise) for img in images]
        return self.classify_decoded(decoded, localise, decode_s=time.perf_counter() - t0)

    def predict_each(self, images: Iterable[ImageSource], batch_size: int = 32,
                     localise: bool = True) -> Iterator[BatchItem]:
        """One item per image, in order, with its answer or the reason there is none: a bad
        file costs only its own answer, never its batch's. Lazy, so callers can show progress."""
        pending: list[ImageSource] = []
        for image in images:
            pending.append(image)
            if len(pending) == batch_size:
                yield from self._predict_chunk(pending, localise)
                pending = []
        if pending:
            yield from self._predict_chunk(pending, localise)

    def _predict_chunk(self, images: list[ImageSource], localise: bool) -> list[BatchItem]:
        t0 = time.perf_counter()
        decoded: dict[int, Image.Image] = {}
        errors: dict[int, InvalidImage] = {}
        for i, image in enumerate(images):
            try:
                decoded[i] = self.decode(image, localise)
            except InvalidImage as exc:
                errors[i] = exc
        answers = dict(zip(decoded, self.classify_decoded(list(decoded.values()), localise,
                                                          decode_s=time.perf_counter() - t0)))
        return [BatchItem(image, answers.get(i), errors.get(i)) for i, image in enumerate(images)]

    def decode(self, image: ImageSource, localise: bool = True) -> Image.Image:
        """The image as ``classify_decoded`` takes it, or InvalidImage: decoded once, at the
        size the model needs, with the file's own size and format kept in ``info``."""
        # a located document is a part of the photo: decode enough pixels to cut it out
        min_size = self.prep.size * (2 if localise and self.localiser else 1)
        return load_image(image, min_size=min_size)

    def classify_decoded(self, decoded: Sequence[Image.Image], localise: bool = True,
                         decode_s: float = 0.0) -> list[Classification]:
        """Classify images from ``decode`` in one forward pass. Not images from elsewhere: their
        ``info`` lacks the original size the corners are given in. ``decode_s``: the time their
        decoding took, shared out in the timings."""
        if not decoded:
            return []
        localiser = self.localiser if localise else None
        n = len(decoded)
        t_decoded = time.perf_counter()
        views = [document_view(img, localiser, self.prep) for img in decoded]
        t1 = time.perf_counter()
        issues = [quality.assess(quality.measure(view, found, img, img.info["original_size"]))
                  for img, (view, found) in zip(decoded, views)]
        t2 = time.perf_counter()
        batch = np.concatenate([self.prep.answer_inputs(view) for view, _ in views])
        features = self._passes(batch)
        t3 = time.perf_counter()
        logits, novelty = self.graphs.head(features)
        turns = self.prep.turns  # each view's answer: the mean over its turns
        probs = softmax(logits / self.model.temperature).reshape(n, turns, -1).mean(axis=1)
        novelty = novelty.reshape(n, turns).mean(axis=1).tolist() if self.open_set else [None] * n
        t4 = time.perf_counter()
        verdicts = [self._head_verdict(found, nov) for (_, found), nov in zip(views, novelty)]
        designs = [(False, None) if verdict.reason else self._design_check(view, p, found, iss)
                   for (view, found), p, iss, verdict in zip(views, probs, issues, verdicts)]
        t5 = time.perf_counter()
        per_image = {"decode_ms": decode_s * 1000 / n, "localise_ms": (t1 - t_decoded) * 1000 / n,
                     "quality_ms": (t2 - t1) * 1000 / n, "features_ms": (t3 - t2) * 1000 / n,
                     "head_ms": (t4 - t3) * 1000 / n, "design_ms": (t5 - t4) * 1000 / n,
                     "total_ms": (decode_s + t5 - t_decoded) * 1000 / n}
        return [self._classification(p, img, found, head, found_issues, design, per_image) for p, img, (_, found),
                head, found_issues, design in zip(probs, decoded, views, verdicts, issues, designs)]

    def _head_verdict(self, found: Localisation | None, novelty: float | None) -> HeadVerdict:
        """Looked at first: where the open set already names no type, the printed design is not looked at."""
        no_outline = (found is not None and not found.found
                      and (self.open_set is None or self.open_set.no_outline_rejected))
        if no_outline and novelty is not None:
            # A model of the earlier kind, whose head only ever saw cut-out documents, and no outline:
            # perhaps no document at all. An open set takes the photo for as novel as can be.
            novelty = NO_OUTLINE_NOVELTY
        no_document = no_outline or (found is not None and found.no_document)
        reason = self.open_set.turns_away(novelty, no_document) if self.open_set else None
        return HeadVerdict(no_outline, novelty, reason)

    def _design_check(self, view: Image.Image, probs: np.ndarray, found: Localisation | None,
                      issues: list[QualityIssue]) -> tuple[bool, str | None]:
        """(high withheld, reason): whether the document lacks the top type's printed design
        (``classifier.designs``) where that changes the answer: a score of the high band is medium; a readable
        photo is not a supported document (``unsupported_type``) below the high band, where neither the head
        nor the design speaks for the type, and for a type that turns away documents without its design; one
        below the high band where blur alone hides the design is too blurred to tell (``too_blurred``).
        Checked only there, and never for a model without references (nor where the open set names no type)."""
        if self.designs is None:
            return False, None
        top = self.model.classes[int(np.argmax(probs))]
        high = self.calibration.band(float(probs.max())) is ConfidenceBand.HIGH
        reason = None
        if self.design_rule.turns_away_answer(top, high):
            if readable(found, issues):
                reason = "unsupported_type"
            elif not high and blurred_only(found, issues):
                reason = "too_blurred"
        if not (high or reason) or self.designs.carries(view, top, self.design_rule.min_points):
            return False, None
        return high, reason

    def _classification(self, probs: np.ndarray, img, found: Localisation | None,
                        head: HeadVerdict, issues: list[QualityIssue],
                        design: tuple[bool, str | None], timings) -> Classification:
        classes, names = self.model.classes, self.model.display_names
        order = np.argsort(-probs, kind="stable")[: self.top_k]
        top = [Alternative(classes[i], names[classes[i]], float(probs[i])) for i in order]
        width, height = img.info["original_size"]
        high_withheld, design_reason = design
        # a document like the type, not of its printed design: not sure enough for high
        band = ConfidenceBand.MEDIUM if high_withheld else self.calibration.band(top[0].score)
        no_outline, novelty, reason = head
        if no_outline:  # perhaps no document at all: the head still answers, often with a high score
            band = ConfidenceBand.LOW
        document_type, label = top[0].document_type, top[0].label
        reason = reason or design_reason  # not of the design its type's photos carried
        if reason:
            band, document_type, label = ConfidenceBand.UNSUPPORTED, None, untyped_label(reason)
        localisation = found.scaled(width / img.width, height / img.height) if found is not None else None
        return Classification(document_type=document_type, label=label, score=top[0].score, band=band, top_k=top,
                              model_version=self.version, width=width, height=height,
                              image_format=img.info.get("format"), localisation=localisation, novelty=novelty,
                              reason=reason, quality=issues, timings_ms=dict(timings))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of probabilities (in float64, then float32: torch's softmax to float rounding)."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

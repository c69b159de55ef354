"""Does the document carry the printed design of the type the head answers?

The head's features say what a document looks like, not which document it is: a real document of
a type the model never learned, printed in a like style, can get a known type with a high score
(docs/measurements.md, "Real documents of unknown types"). Every document of a type shares its
printed design: background pattern, labels, emblems. Training keeps the keypoints of a few of each
type's training documents (``DesignReferences``); serving finds keypoints in the cut-out document
and counts those that one perspective mapping carries onto a reference of the answered type, where
that mapping also puts the reference's outline plausibly into the cut-out (``matched_points``).
An answer is in the high band only where at least ``MIN_POINTS`` match: a document of another design
is at most medium. Where training measured that a type's readable photos carry its design
(``DesignRule``), and for every type below the high band, a readable photo answered with the type that
does not carry it is a document of another type: not a supported one; one where blur alone hides the
design, answered below the high band, is too blurred to tell (unknown documents photographed soft are
nearly all below it, known ones mostly not: docs/measurements.md). Plain numpy and OpenCV (ORB keypoints,
USAC), no torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import cv2
import numpy as np
from PIL import Image

from classifier.errors import ModelUnreadable

if TYPE_CHECKING:
    from classifier.localise import Localisation
    from classifier.quality import QualityIssue

DESIGNS_FILE = "designs.npz"  # in a model's folder; its sha256 in metadata.json's "designs"
SIDE = 224  # documents are compared squashed to this square, as the head sees them
# ORB keypoints a document: 500 cost 0.9 ms more and left fewer demo photos without their design, but a photographed
# real passport then matched 12 points of another type's (docs/measurements.md)
KEYPOINTS = 300
# FAST corners at least this contrasted: 10 rather than 5 took a millisecond off the check, the same or more photos
# kept their design, also against references found at 5 (docs/measurements.md)
FAST_THRESHOLD = 10
RATIO = 0.8  # a match counts where its best reference keypoint is this much nearer than the second best
REPROJECTION_PX = 5.0  # how far a matched point may lie from where the mapping puts it
AREA_RATIO = (0.3, 3.0)  # the reference's outline mapped into the cut-out: this many times its area
MIN_CORNER_DEGREES = 45  # ... with no corner sharper than this (nor blunter than 180 minus it)
# matched points for "this design": real documents of unknown types matched at most 6 of another type's, 15 cost the
# demo model 6-8 more points of its captured photos' high band than 10 (docs/measurements.md)
MIN_POINTS = 10
REFERENCES_PER_TYPE = 8  # training documents kept a type (4: 35 of those 222 missed, against 28), ...
# ... those of this many (drawn at random) that most of the others match: drawn at random instead, a soft, glared or
# half-hidden one matched little, and the demo model's readable validation photos missed their type's design 56 times
# in 222, against 35 (docs/measurements.md)
CANDIDATES_PER_TYPE = 16
# capture-quality issues (``quality.CODES``) under which part of a document's design is lost, whatever it is
UNREADABLE = ("partly_out_of_frame", "too_small", "blurred")
# Types turn away readable photos without their design, from the one whose readable validation photos (simulated
# captures harder than most photos: glare, fingers, a second card) missed it least, as long as those turned away
# together missed at most this share of all the readable validation photos: the known photos the open-set issue
# lets go, ...
MAX_MISSED = 0.02
MAX_MISSED_OF_A_TYPE = 0.15  # ... and none more than this share of its own, out of ...
MIN_CHECKED = 16  # ... at least this many
CHECKED_PER_TYPE = 64  # validation photos of each type training checks (its held-out images, or captures of it)


def readable(found: Localisation | None, issues: Iterable[QualityIssue]) -> bool:
    """Whether a photo shows its document's design: cut out along a found outline (the design is compared
    on the document, not on a whole photo), with none of the ``UNREADABLE`` quality issues."""
    return _unreadable_because(found, issues) == set()


def blurred_only(found: Localisation | None, issues: Iterable[QualityIssue]) -> bool:
    """Whether blur alone hides a cut-out document's design: a sharper photo of it would show it."""
    return _unreadable_because(found, issues) == {"blurred"}


def _unreadable_because(found: Localisation | None, issues: Iterable[QualityIssue]) -> set[str] | None:
    """The ``UNREADABLE`` issues of a cut-out document; None where none was cut out."""
    if found is None or not found.found:
        return None
    return {issue.code for issue in issues} & set(UNREADABLE)


def most_typical(designs: list[Design], keep: int, min_points: int) -> list[Design]:
    """The ``keep`` of ``designs`` that most of the others match (at ``min_points``), in that order."""
    matched = [sum(matched_points(other, design) >= min_points for other in designs if other is not design)
               for design in designs]
    return [designs[i] for i in np.argsort(-np.array(matched), kind="stable")[:keep]]


@dataclass(frozen=True)
class DesignRule:
    """How a model's answers use its references: ``min_points`` matched for a document of the type's
    design; ``turns_away``, the types whose readable photos training found to carry their design,
    so that a readable photo answered with one of them that does not is of a type the model does not know."""

    min_points: int
    turns_away: frozenset[str] = frozenset()
    # below the high band every type turns away a photo without its design: the demo model's known photos answered
    # medium or low carried it, the real documents of types it does not know that it answered so nearly none
    # (docs/measurements.md)
    unsure_needs_design: bool = True

    @classmethod
    def fit(cls, checked: dict[str, tuple[int, int]], min_points: int) -> "DesignRule":
        """``checked``: for each type, its readable validation photos and how many of them missed its design
        at ``min_points``. One budget over all types, not a share for each: what counts is the known photos turned
        away, and a type left out lets through every unknown document answered with it (a real type missing 3 of
        22 was left out at 5% a type, and most of the unknown documents still answered were given it)."""
        budget = MAX_MISSED * sum(n for n, _ in checked.values())
        candidates = sorted((missed / n, code, missed) for code, (n, missed) in checked.items()
                            if n >= MIN_CHECKED and missed <= MAX_MISSED_OF_A_TYPE * n)
        turns_away: list[str] = []
        for _, code, missed in candidates:
            budget -= missed
            if budget < 0:
                break
            turns_away.append(code)
        return cls(min_points, frozenset(turns_away))

    def turns_away_answer(self, document_type: str, high: bool) -> bool:
        """Whether a photo answered with ``document_type`` (in the high band or not) whose document lacks the
        type's design names no type: where it is readable, or (below the high band) where blur alone hides it."""
        return document_type in self.turns_away or (not high and self.unsure_needs_design)

    def to_dict(self) -> dict:
        """The rule's part of metadata.json's "designs" (training adds the references' checksum and counts)."""
        return {"min_points": self.min_points, "turns_away": sorted(self.turns_away),
                "unsure_needs_design": self.unsure_needs_design}

    @classmethod
    def from_dict(cls, d: dict) -> "DesignRule":
        """Models trained before ``turns_away`` turn nothing away on their design; those kept before
        ``unsure_needs_design`` turned away by type alone."""
        return cls(int(d["min_points"]), frozenset(d.get("turns_away", ())), bool(d.get("unsure_needs_design", False)))


@dataclass(frozen=True)
class Design:
    """One document's keypoints, in a ``SIDE`` x ``SIDE`` view of it."""

    points: np.ndarray  # (n, 2) float32 positions
    descriptors: np.ndarray  # (n, 32) uint8 ORB descriptors


def design_of(view: Image.Image) -> Design:
    """The keypoints of a document view (``preprocessing.document_view``), contrast-equalised so the
    light of a photo and the white of a scan look alike."""
    rgb = np.asarray(view.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
    grey = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    orb = cv2.ORB_create(nfeatures=KEYPOINTS, fastThreshold=FAST_THRESHOLD, edgeThreshold=15, patchSize=15)
    detected, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None:
        return Design(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    return Design(np.float32([k.pt for k in detected]).reshape(-1, 2), descriptors)


def matched_points(query: Design, reference: Design) -> int:
    """How many of ``query``'s keypoints one plausible perspective mapping carries onto ``reference``'s."""
    if min(len(query.descriptors), len(reference.descriptors)) < 4:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, reference.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < 4:
        return 0
    mapping, inliers = cv2.findHomography(query.points[[m.queryIdx for m in good]],
                                          reference.points[[m.trainIdx for m in good]], cv2.USAC_FAST, REPROJECTION_PX)
    if mapping is None or inliers is None or not plausible(mapping):
        return 0
    return int(inliers.sum())


def plausible(mapping: np.ndarray) -> bool:
    """Whether the reference's outline, mapped into the query's view, is a document seen in perspective:
    convex, of a like size, with no corner far from square. Chance matches between documents of
    different designs give mappings that fold or stretch it."""
    try:
        inverse = np.linalg.inv(mapping)
    except np.linalg.LinAlgError:
        return False
    corners = np.c_[np.float64([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]]), np.ones(4)] @ inverse.T
    if np.any(corners[:, 2] * np.sign(corners[0, 2]) <= 0):  # a corner beyond the horizon
        return False
    quad = (corners[:, :2] / corners[:, 2:]).astype(np.float32)
    if not cv2.isContourConvex(quad):
        return False
    if not AREA_RATIO[0] <= cv2.contourArea(quad) / SIDE ** 2 <= AREA_RATIO[1]:
        return False
    edges_in, edges_out = np.roll(quad, 1, axis=0) - quad, np.roll(quad, -1, axis=0) - quad
    cosines = np.sum(edges_in * edges_out, axis=1) / (np.linalg.norm(edges_in, axis=1)
                                                      * np.linalg.norm(edges_out, axis=1) + 1e-9)
    return bool(np.all(np.abs(cosines) <= np.cos(np.radians(MIN_CORNER_DEGREES))))


class DesignReferences:
    """The kept training documents' keypoints, by type."""

    def __init__(self, by_type: dict[str, list[Design]]):
        self.by_type = by_type

    def carries(self, view: Image.Image, document_type: str, min_points: int) -> bool:
        """Whether ``view``'s document matches ``min_points`` or more of one reference of ``document_type``:
        the first that does ends the search (most photos of a type match its first)."""
        query = design_of(view)
        return any(matched_points(query, ref) >= min_points for ref in self.by_type.get(document_type, []))

    def save(self, path: Path) -> None:
        """One .npz of plain arrays (read without pickle), replaced atomically."""
        arrays = {}
        for code, designs in self.by_type.items():
            for i, design in enumerate(designs):
                arrays[f"{code}.{i}.points"], arrays[f"{code}.{i}.descriptors"] = design.points, design.descriptors
        tmp = Path(path).with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "DesignReferences":
        try:
            with np.load(path, allow_pickle=False) as arrays:
                by_type: dict[str, dict[int, Design]] = {}
                for key in (k for k in arrays.files if k.endswith(".points")):
                    code, i, _ = key.rsplit(".", 2)
                    by_type.setdefault(code, {})[int(i)] = Design(
                        arrays[key].astype(np.float32), arrays[f"{code}.{i}.descriptors"].astype(np.uint8))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnreadable(f"{path} cannot be read ({exc}). Retrain the model.") from exc
        return cls({code: [designs[i] for i in sorted(designs)] for code, designs in by_type.items()})

"""How an image becomes model input: stored with each model, used alike in training
and serving, so the head always sees the kind of input it learned from."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from classifier.images import to_array
from classifier.localise import Localisation, Localiser, rectify


VIEWS = 2  # bump when ``document_view`` changes what a view looks like: cached training features are remade


@dataclass(frozen=True)
class Preprocessing:
    # 224, one pass: the cut-out document fills the frame, and the head learns quarter turns from
    # its rotated training views; 320 and four turns averaged cost 8x as much for the same accuracy.
    size: int = 224
    resize: str = "squash"
    pooling: str = "gem"
    rotations: int = 1
    localiser: str = ""  # the localiser's identity (``artifact.localiser_id``) when photos are cut to the document
    # The finest detail a view keeps, in pixels across (``images.to_array``): a crisp scan and a soft phone
    # photo of one document then look alike to the head. Trained on captured photos only, the demo model
    # answered flat specimens 0.963 (19 of 300 "not supported") without it, 0.973 (4) with it, and its
    # captured test photos as well or better (docs/measurements.md). None: views as they come.
    detail: int | None = 112
    # The answer is the mean of the head's probabilities (and novelty) over this many quarter turns of
    # the view: the head learned every turn from its training views but answers each a little apart.
    # Four took the demo model's captured photos from 0.963 to 0.990 and 0.987 (docs/measurements.md),
    # for three more backbone passes a photo. Not ``rotations``, which averages features inside the pass.
    turns: int = 4

    @classmethod
    def from_metadata(cls, fields: dict) -> "Preprocessing":
        """A model's stored preprocessing; one written before a field existed is read as it was trained."""
        return cls(**{"detail": None, "turns": 1} | fields)

    def key(self) -> str:
        loc = hashlib.sha256(self.localiser.encode()).hexdigest()[:12] if self.localiser else "none"
        detail = f"-d{self.detail}" if self.detail else ""
        return f"{self.resize}{self.size}-{self.pooling}-r{self.rotations}-loc{loc}{detail}-v{VIEWS}"

    def model_input(self, view: Image.Image) -> np.ndarray:
        """The backbone's input for a view from ``document_view``: the one place training and serving make it."""
        return to_array(view, self.size, self.resize, self.detail)

    def answer_inputs(self, view: Image.Image) -> np.ndarray:
        """(turns, 3, S, S): the inputs whose answers are averaged into the view's answer, turn 0 first."""
        x = self.model_input(view)
        return np.stack([turned(x, k) for k in range(self.turns)])


def turned(x: np.ndarray, k: int) -> np.ndarray:
    """A (3, S, S) model input turned by ``k`` quarter turns."""
    return np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))) if k % 4 else x


def document_view(img: Image.Image, localiser: Localiser | None,
                  prep: Preprocessing) -> tuple[Image.Image, Localisation | None]:
    """What the classifier looks at, in training and in serving alike: the document cut
    out and straightened when the localiser finds it confidently, else the whole image. Squashed
    (the default), the document is warped straight to the model's input size, in one resampling."""
    if localiser is None:
        return img, None
    found = localiser.locate(img)
    if not found.found:
        return img, found
    size = (prep.size, prep.size) if prep.resize == "squash" else None
    return rectify(img, found.quad, size=size), found

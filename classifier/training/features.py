"""Backbone features of (image, view) pairs, computed once and cached on disk.

View 0 is the image as it is; view k >= 1 is augmentation number k, drawn from a
generator seeded by (seed, image content, k), so a view is the same every time and
its features can be cached under the image's hash, the augmentation settings and
the backbone weights. Training again on the same data then costs seconds.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm

from classifier.artifact import BackboneSpec
from classifier.backbone import FeatureExtractor
from classifier.images import load_image
from classifier.localise import Localiser, rectify
from classifier.preprocessing import Preprocessing, document_view, turned
from classifier.synth import augment
from classifier.synth.augment import AUGMENT_VERSION

DECODE_SIZE = 800  # augmentation works on a view of about this size, not the full photo
CUT_OUT_BELOW = 0.85  # a found outline covering less of a training image: it is a photo holding the document


@dataclass(frozen=True)
class Augmentation:
    seed: int = 0
    capture_probability: float = 0.6
    backgrounds: tuple[Path, ...] = ()

    def key(self) -> str:
        bg = hashlib.sha256("\n".join(sorted(p.name for p in self.backgrounds)).encode()).hexdigest()[:8]
        return f"v{AUGMENT_VERSION}-s{self.seed}-c{self.capture_probability}-bg{bg}"

    def view(self, img, sha256: str, k: int, document=None):
        """View ``k`` of ``img``: 0 the image itself. ``document``: its document cut out (``cut_out``),
        where it is a photo holding one: view 1 is that document as it is, as a scan of it would show
        it, and every other view starts from it instead of the whole photo."""
        if k == 0:
            return img
        if k == 1 and document is not None:
            return document
        rng = np.random.default_rng([self.seed, int(sha256[:15], 16), k])
        return augment.augment(document if document is not None and k % 2 else img, rng,
                               backgrounds=self.backgrounds, capture_probability=self.capture_probability)


class _Views(TorchDataset):
    """One item per image: its missing views, decoded once and augmented."""

    def __init__(self, jobs, augmentation: Augmentation, prep: Preprocessing, localiser: Localiser | None,
                 turn: int = 0):
        self.jobs, self.augmentation, self.prep, self.localiser, self.turn = jobs, augmentation, prep, localiser, turn

    def __len__(self):
        return len(self.jobs)

    def __getitem__(self, i):
        path, sha, first, last = self.jobs[i]
        views = []
        for photo in photos(path, sha, range(first, last), self.augmentation, self.localiser):
            view = document_view(photo, self.localiser, self.prep)[0]
            views.append(turned(self.prep.model_input(view), self.turn))
        return i, torch.from_numpy(np.stack(views))


def photos(path: Path, sha256: str, views: Iterable[int], augmentation: Augmentation,
           localiser: Localiser | None) -> Iterator[Image.Image]:
    """The training image's ``views`` (``Augmentation.view``), as photos for serving's pipeline: decoded once."""
    img = load_image(path, min_size=DECODE_SIZE)
    if max(img.size) > 2 * DECODE_SIZE:
        img.thumbnail((2 * DECODE_SIZE, 2 * DECODE_SIZE))
    document = cut_out(img, localiser)
    for k in views:
        yield augmentation.view(img, sha256, k, document)


def cut_out(img: Image.Image, localiser: Localiser | None) -> Image.Image | None:
    """The document of a training photo that holds more than it, flat, at the resolution it has in
    the photo, each colour channel stretched to its full range (1% clipped at each end) as a scanner
    shows paper white and ink black; None where the photo is the document (its outline covers
    ``CUT_OUT_BELOW`` or more of it) or none was found. Views of a captured photo alone would show
    the head documents only as captured, in the light of the photo, never filling the frame clean
    and flat, as a scan of one does: without the stretch, flat specimens scored 0.92 against 0.96."""
    if localiser is None:
        return None
    quad = localiser.locate(img).quad
    if quad is None:
        return None
    (ax, ay), (bx, by) = quad[2] - quad[0], quad[3] - quad[1]  # the diagonals
    area = abs(float(ax * by - ay * bx)) / 2
    if area >= CUT_OUT_BELOW * img.width * img.height:
        return None
    flat = rectify(img, quad, long_side=round(max(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1))))
    return ImageOps.autocontrast(flat, cutoff=1)  # per channel: also undoes a colour cast


class FeatureCache:
    """Features of every (image, view) under one backbone, preprocessing and augmentation:
    a folder per combination, one .npy of all views computed so far per image."""

    def __init__(self, root: Path, spec: BackboneSpec, prep: Preprocessing, augmentation: Augmentation,
                 localiser: Localiser | None = None, turn: int = 0):
        """``localiser``: the one ``prep.localiser`` names (its identity is part of the folder's name).
        ``turn``: every view turned by this many quarter turns (``Preprocessing.turns``)."""
        weights = hashlib.sha256(spec.weights_id.encode()).hexdigest()[:12]
        suffix = f"-t{turn}" if turn else ""
        self.dir = Path(root) / f"{spec.name}-{weights}" / prep.key() / f"{augmentation.key()}{suffix}"
        self.prep, self.augmentation, self.localiser, self.turn = prep, augmentation, localiser, turn

    def _path(self, sha256: str) -> Path:
        return self.dir / sha256[:2] / f"{sha256}.npy"

    def _cached(self, sha256: str) -> np.ndarray | None:
        path = self._path(sha256)
        return np.load(path) if path.is_file() else None

    def features(self, extractor: FeatureExtractor, items: Sequence[tuple[Path, str, int]]) -> list[np.ndarray]:
        """For each (path, sha256, n_views): an (n_views, D) array of views 0..n_views-1."""
        have = {sha: self._cached(sha) for _, sha, _ in items}
        need: dict[str, int] = {}
        paths = {}
        for path, sha, n in items:
            need[sha], paths[sha] = max(need.get(sha, 0), n), path
        done = {sha: 0 if have[sha] is None else len(have[sha]) for sha in need}
        jobs = [(paths[sha], sha, done[sha], n) for sha, n in need.items() if n > done[sha]]
        if jobs:
            self._compute(extractor, jobs, have)
        return [have[sha][:n] for _, sha, n in items]

    def _compute(self, extractor, jobs, have):
        workers = min(2, os.cpu_count() or 1)
        device = next(extractor.parameters()).device  # views are made on the CPU, features where the backbone is
        loader = DataLoader(_Views(jobs, self.augmentation, self.prep, self.localiser, self.turn), batch_size=None,
                            num_workers=workers, prefetch_factor=4 if workers else None,
                            pin_memory=device.type == "cuda")
        total = sum(last - first for _, _, first, last in jobs)
        with tqdm(total=total, desc="features", unit="view") as bar, torch.inference_mode():
            for i, views in loader:
                _, sha, first, _ = jobs[i]
                new = np.concatenate([extractor(chunk.to(device), self.prep.pooling, self.prep.rotations).cpu().numpy()
                                      for chunk in views.split(32)])
                old = have[sha] if have[sha] is not None else np.zeros((0, new.shape[1]), np.float32)
                have[sha] = np.concatenate([old[:first], new]).astype(np.float32)
                path = self._path(sha)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, have[sha])
                os.replace(tmp, path)
                bar.update(len(views))

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
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm

from classifier import augment
from classifier.backbone import BackboneMismatch, BackboneSpec, FeatureExtractor, file_sha256
from classifier.images import load_image, to_tensor
from classifier.localise import DEFAULT_WEIGHTS as LOCALISER_WEIGHTS
from classifier.localise import DECODE_VERSION, Localisation, Localiser, rectify

AUGMENT_VERSION = "2"  # bump when classifier.augment changes what a view looks like
DECODE_SIZE = 800  # augmentation works on a view of about this size, not the full photo


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a feature vector; stored with the model, used alike in
    training and serving."""

    size: int = 320
    resize: str = "squash"
    pooling: str = "gem"
    rotations: int = 4
    localiser: str = ""  # the localiser's identity (``localiser_id``) when photos are cut to the document first

    def key(self) -> str:
        loc = hashlib.sha256(self.localiser.encode()).hexdigest()[:12] if self.localiser else "none"
        return f"{self.resize}{self.size}-{self.pooling}-r{self.rotations}-loc{loc}"


def localiser_id() -> str:
    """The shipped localiser's identity: its weights and how their heatmaps become corners
    (either changes the documents it cuts out), or "" where the repository has none."""
    if not LOCALISER_WEIGHTS.is_file():
        return ""
    return f"sha256:{file_sha256(LOCALISER_WEIGHTS)}+decode{DECODE_VERSION}"


def load_localiser(prep: Preprocessing) -> Localiser | None:
    """The localiser a model was trained with; a different one would show the head
    other inputs than it learned from, so that is refused."""
    if not prep.localiser:
        return None
    if localiser_id() != prep.localiser:
        raise BackboneMismatch(f"This model was trained with localiser {prep.localiser}, but {LOCALISER_WEIGHTS} "
                               f"is missing or different ({localiser_id() or 'none'}). Retrain the model.")
    return Localiser.load(LOCALISER_WEIGHTS)


def document_view(img, localiser: Localiser | None) -> tuple[object, Localisation | None]:
    """What the classifier looks at, in training and in serving alike: the document cut
    out and straightened when the localiser finds it confidently, else the whole image."""
    if localiser is None:
        return img, None
    found = localiser.locate(img)
    return (rectify(img, found.quad) if found.found else img), found


@dataclass(frozen=True)
class Augmentation:
    seed: int = 0
    capture_probability: float = 0.6
    backgrounds: tuple[Path, ...] = ()

    def key(self) -> str:
        bg = hashlib.sha256("\n".join(sorted(p.name for p in self.backgrounds)).encode()).hexdigest()[:8]
        return f"v{AUGMENT_VERSION}-s{self.seed}-c{self.capture_probability}-bg{bg}"

    def view(self, img, sha256: str, k: int):
        if k == 0:
            return img
        rng = np.random.default_rng([self.seed, int(sha256[:15], 16), k])
        return augment.augment(img, rng, backgrounds=self.backgrounds,
                               capture_probability=self.capture_probability)


class _Views(TorchDataset):
    """One item per image: its missing views, decoded once and augmented."""

    def __init__(self, jobs, augmentation: Augmentation, prep: Preprocessing, localiser: Localiser | None):
        self.jobs, self.augmentation, self.prep, self.localiser = jobs, augmentation, prep, localiser

    def __len__(self):
        return len(self.jobs)

    def __getitem__(self, i):
        path, sha, first, last = self.jobs[i]
        img = load_image(path, min_size=DECODE_SIZE)
        if max(img.size) > 2 * DECODE_SIZE:
            img.thumbnail((2 * DECODE_SIZE, 2 * DECODE_SIZE))
        views = [to_tensor(document_view(self.augmentation.view(img, sha, k), self.localiser)[0],
                           self.prep.size, self.prep.resize) for k in range(first, last)]
        return i, torch.stack(views)


class FeatureCache:
    def __init__(self, root: Path, spec: BackboneSpec, prep: Preprocessing, augmentation: Augmentation):
        weights = hashlib.sha256(spec.weights_id.encode()).hexdigest()[:12]
        self.dir = Path(root) / f"{spec.name}-{weights}" / prep.key() / augmentation.key()
        self.prep, self.augmentation, self.localiser = prep, augmentation, load_localiser(prep)

    def _path(self, sha256: str) -> Path:
        return self.dir / sha256[:2] / f"{sha256}.npy"

    def _cached(self, sha256: str) -> np.ndarray | None:
        path = self._path(sha256)
        return np.load(path) if path.is_file() else None

    def features(self, extractor: FeatureExtractor, items: Sequence[tuple[Path, str, int]],
                 desc: str = "features", workers: int | None = None) -> list[np.ndarray]:
        """For each (path, sha256, n_views): an (n_views, D) array of views 0..n_views-1."""
        have = {sha: self._cached(sha) for _, sha, _ in items}
        need: dict[str, int] = {}
        paths = {}
        for path, sha, n in items:
            need[sha], paths[sha] = max(need.get(sha, 0), n), path
        done = {sha: 0 if have[sha] is None else len(have[sha]) for sha in need}
        jobs = [(paths[sha], sha, done[sha], n) for sha, n in need.items() if n > done[sha]]
        if jobs:
            self._compute(extractor, jobs, have, desc, workers)
        return [have[sha][:n] for _, sha, n in items]

    def _compute(self, extractor, jobs, have, desc, workers):
        workers = min(2, os.cpu_count() or 1) if workers is None else workers
        loader = DataLoader(_Views(jobs, self.augmentation, self.prep, self.localiser), batch_size=None,
                            num_workers=workers, prefetch_factor=4 if workers else None)
        total = sum(last - first for _, _, first, last in jobs)
        with tqdm(total=total, desc=desc, unit="view") as bar, torch.inference_mode():
            for i, views in loader:
                _, sha, first, _ = jobs[i]
                new = np.concatenate([extractor(chunk, self.prep.pooling, self.prep.rotations).numpy()
                                      for chunk in views.split(32)])
                old = have[sha] if have[sha] is not None else np.zeros((0, new.shape[1]), np.float32)
                have[sha] = np.concatenate([old[:first], new]).astype(np.float32)
                path = self._path(sha)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, have[sha])
                os.replace(tmp, path)
                bar.update(len(views))

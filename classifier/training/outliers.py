"""Documents of no type the model knows, for the head to be unsure of (outlier exposure).

A head trained only on its own types maps any document onto one of them, often confidently.
Shown also captures of fictional types drawn at random (``classifier.synth.demo.random_doc_type``)
with uniform targets, it learns that an unfamiliar layout means "none of these": on 8 demo
types with 2 held out, this took the novelty's AUROC for the unseen types from 0.75 to 0.82.

Every outlier image is a capture. Version 1 also showed each type as a crisp flat render, crisper
than any view of known types trained from photos (their flat views are cut out of them): the head
learned crispness as a sign of "none of these", and turned crisp scans of its own types away (demo
model: 4 of 300 flat specimens; 0-1 with captures only).

The images are made once per seed into the feature cache's folder, so their features are cached
like any other image's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from classifier.synth.augment import simulate_capture
from classifier.synth.demo import random_doc_type, render_document

OUTLIER_VERSION = "2"  # bump when what the outlier images look like changes


def outlier_images(cache_root: Path, types: int, views: int, seed: int) -> list[Path]:
    """``views`` simulated captures of each of ``types`` random fictional types, written under
    ``cache_root`` unless already there."""
    folder = Path(cache_root) / f"outliers-v{OUTLIER_VERSION}-s{seed}-t{types}-v{views}"
    done = folder / "done.json"
    paths = [folder / f"{t:04d}-{v}.jpg" for t in range(types) for v in range(views)]
    if done.is_file():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(types):
        rng = np.random.default_rng([seed, t])
        doc_type = random_doc_type(rng)
        for v in range(views):
            doc = render_document(doc_type, rng)
            simulate_capture(doc, rng)[0].save(folder / f"{t:04d}-{v}.jpg", quality=90)
    done.write_text(json.dumps({"types": types, "views": views, "seed": seed}) + "\n")
    return paths

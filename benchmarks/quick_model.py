"""A model trained in a minute or two for benchmarks that need one and find none: a tiny demo
set and few augmented views, so it is fast, not accurate. Timings do not depend on its accuracy."""
from __future__ import annotations

from pathlib import Path


def train_quick(out: Path, weights: str | None, backbone: str = "small", log=print) -> Path:
    """Train into `out` with the shipped preprocessing; `weights` as IDCLASS_BACKBONE_WEIGHTS."""
    from classifier.synth.demo import make_demo_dataset
    from classifier.training.train import TrainConfig, train_classifier

    log(f"training a quick {backbone} model into {out} (a minute or two)")
    data = out.parent / "demo-train"
    if not (data / "labels.json").is_file():
        make_demo_dataset(data, per_class=4, seed=1, flat=True, progress=False)
    config = TrainConfig(backbone=backbone, weights=weights, views_per_class=24, min_views=2, max_views=6,
                         val_views=1, epochs=100, patience=15, cache_dir=out.parent / "features")
    train_classifier([data], config, out_dir=out, log=lambda _: None)
    return out

"""A model trained in a minute or two, for the test suite and for benchmarks that need one and find
none: a tiny demo set and few augmented views, so it is fast, not accurate. Timings do not depend on
its accuracy; the full-size settings are measured by the commands in docs/measurements.md."""
from __future__ import annotations

from pathlib import Path


def quick_config(weights, cache_dir, **overrides):
    """Training settings that keep the test suite fast: the small backbone at the shipped 224 px and one
    orientation, few augmented views. ``weights`` as IDCLASS_BACKBONE_WEIGHTS."""
    from classifier.preprocessing import Preprocessing
    from classifier.training.train import TrainConfig

    # an untrained backbone's activations are nearly all below zero, where GeM pooling sees nothing
    pooling = "avg" if weights == "random" else "gem"
    settings = dict(backbone="small", weights=weights, views_per_class=24, min_views=2, max_views=6, val_views=1,
                    epochs=100, patience=15, cache_dir=cache_dir, preprocessing=Preprocessing(pooling=pooling))
    return TrainConfig(**(settings | overrides))


def train_quick(out: Path, weights: str | None, backbone: str = "small", log=print) -> Path:
    """Train into `out`, on a demo set made beside it the first time."""
    from classifier.synth.demo import make_demo_dataset
    from classifier.training.train import train_classifier

    log(f"training a quick {backbone} model into {out} (a minute or two)")
    data = out.parent / "demo-train"
    if not (data / "labels.json").is_file():
        make_demo_dataset(data, per_class=4, seed=1, flat=True, progress=False)
    train_classifier([data], quick_config(weights, out.parent / "features", backbone=backbone), out_dir=out,
                     log=lambda _: None)
    return out

"""Training the corner localiser from scratch on simulated captures.

Every training image is made on the fly: a rendered demo document photographed by
``classifier.synth.augment.simulate_capture``, which knows where the corners went. A few
images hold no document (so the localiser learns to say "not found") and a few are
the flat document alone (a scan: corners at the image's corners).

    python manage.py train_localiser [--images N] [--seed S] [--out DIR] [--backgrounds DIR]
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

from classifier import artifact
from classifier.localise import STRIDE, CornerNet, decode_heatmaps, image_to_canvas, quad_mask, to_input
from classifier.synth.augment import random_background, simulate_capture
from classifier.synth.demo import DOC_TYPES, render_document
from classifier.training.metrics import localisation_metrics

# -- configuration ---------------------------------------------------------
IMAGES = 96_000  # training images seen (each one new) from scratch: about 2 hours on the 2-core development machine
BATCH = 32
LR = 3e-3
FINE_TUNE_LR = 1e-3  # from a trained localiser's weights (--init): it needs adapting, not relearning
FINE_TUNE_IMAGES = 24_000  # what each fine-tuning of the shipped weights saw: about 40 minutes
WEIGHT_DECAY = 1e-4
WIDTHS = (16, 32, 48, 64, 96)
IMAGE_SIZE = 160  # the photo is squashed to this ...
# ... and padded by this much, so that corners outside the photo have a place on the heatmap: 35% of
# the photo's side holds the corners of 98% of documents framed with 60% or more of them in view.
PAD = 56
SIGMA = 1.0  # corner heatmap Gaussian, in heatmap cells
POSITIVE_WEIGHT = 30.0  # heatmap cells near a corner are rare; weigh them up
NO_DOCUMENT_SHARE = 0.08
FLAT_SHARE = 0.05
DOC_POOL = 200  # rendered documents kept per worker; one is replaced every RENEW_EVERY images
RENEW_EVERY = 4
FOUND_THRESHOLD = 0.3  # weakest corner's peak probability below this: "not found"
VAL_IMAGES = 300
# ---------------------------------------------------------------------------


def make_sample(rng: np.random.Generator, doc_pool: list,
                backgrounds: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
    """One (RGB array, quad or None) training or validation image."""
    r = rng.random()
    if r < NO_DOCUMENT_SHARE:
        size = ((640, 480), (480, 640))[int(rng.integers(2))]
        return np.asarray(random_background(rng, size, backgrounds)), None
    doc = doc_pool[int(rng.integers(len(doc_pool)))]
    if r < NO_DOCUMENT_SHARE + FLAT_SHARE:
        a = np.asarray(doc)
        return a, np.array([[0, 0], [a.shape[1], 0], [a.shape[1], a.shape[0]], [0, a.shape[0]]], float)
    img, quad = simulate_capture(doc, rng, backgrounds=backgrounds, distractors=doc_pool)
    return np.asarray(img), quad.astype(float)


def targets(quad: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """(6, G, G) float32: a Gaussian per corner (document's own order), their maximum (any
    corner) and the document mask."""
    g = (IMAGE_SIZE + 2 * PAD) // STRIDE
    out = np.zeros((6, g, g), np.float32)
    if quad is None:
        return out
    cells = image_to_canvas(quad, size, IMAGE_SIZE, PAD) / STRIDE - 0.5  # heatmap index units
    grid = np.arange(g, dtype=np.float32)
    for k, (x, y) in enumerate(cells):
        out[k] = np.exp(-((grid[None, :] - x) ** 2 + (grid[:, None] - y) ** 2) / (2 * SIGMA ** 2))
    out[4] = out[:4].max(axis=0)
    out[5] = quad_mask(cells + 0.5, (g, g))
    return out


class CaptureStream(IterableDataset):
    """Endless simulated captures as (input tensor, target tensor, quad-in-canvas or NaNs)."""

    def __init__(self, seed: int, backgrounds: Sequence[Path] = ()):
        self.seed = seed
        self.backgrounds = tuple(backgrounds)

    def __iter__(self):
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        rng = np.random.default_rng(self.seed)
        keys = list(DOC_TYPES)
        pool = [render_document(keys[i % len(keys)], rng) for i in range(DOC_POOL)]
        for i in range(10 ** 12):
            if i % RENEW_EVERY == 0:
                pool[int(rng.integers(DOC_POOL))] = render_document(keys[int(rng.integers(len(keys)))], rng)
            img, quad = make_sample(rng, pool, self.backgrounds)
            size = (img.shape[1], img.shape[0])
            canvas = image_to_canvas(quad, size, IMAGE_SIZE, PAD) if quad is not None else np.full((4, 2), np.nan)
            yield to_input(img, IMAGE_SIZE, PAD), torch.from_numpy(targets(quad, size)), torch.from_numpy(canvas)


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted BCE against Gaussian corner targets plus plain BCE on the mask."""
    corners = nn.functional.binary_cross_entropy_with_logits(
        logits[:, :5], target[:, :5], weight=1 + POSITIVE_WEIGHT * target[:, :5])
    mask = nn.functional.binary_cross_entropy_with_logits(logits[:, 5], target[:, 5])
    return corners + 0.5 * mask


@torch.inference_mode()
def validate(net: CornerNet, batches: list) -> dict:
    """Metrics in network-input coordinates (IoU does not care about the scale) plus how often
    the corners come out in the document's own order (among images found with IoU >= 0.5)."""
    net.eval()
    preds, truths, peaks_neg, orders = [], [], [], []
    for x, _, canvas in batches:
        corners, peaks = decode_heatmaps(net(x))
        for c, p, t in zip(corners, peaks, canvas.numpy()):
            if np.isnan(t).any():
                peaks_neg.append(p.min())
                continue
            found = p.min() >= FOUND_THRESHOLD
            preds.append(c if found else None)
            truths.append(t)
            if found:
                shifts = [np.linalg.norm(np.roll(c, s, axis=0) - t, axis=1).mean() for s in range(4)]
                orders.append(int(np.argmin(shifts)) == 0)
    net.train()
    metrics = localisation_metrics(preds, truths)
    metrics["own_order_share"] = float(np.mean(orders)) if orders else 0.0
    metrics["no_document_found_share"] = float(np.mean(np.array(peaks_neg) >= FOUND_THRESHOLD)) if peaks_neg else 0.0
    return metrics


def train_localiser(images: int | None = None, seed: int = 0, out: Path = artifact.LOCALISER_DIR,
                    backgrounds: Sequence[Path] = (), init: Path | None = None,
                    log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Train (from scratch, or from the localiser in ``init``), validate on held-out simulated
    captures, and write ``localiser.safetensors`` and ``localiser.json`` into ``out`` (default:
    the shipped localiser's folder). ``images``: by default ``IMAGES`` from scratch,
    ``FINE_TUNE_IMAGES`` from ``init``. Returns the validation metrics."""
    if images is None:
        images = IMAGES if init is None else FINE_TUNE_IMAGES
    torch.set_num_threads(1)  # one core for training, one DataLoader worker for the images
    torch.manual_seed(seed)
    start = time.perf_counter()
    val_stream = iter(CaptureStream(seed + 10_000))  # a different seed: images never trained on
    val = [next(val_stream) for _ in range(VAL_IMAGES)]
    val_batches = [tuple(torch.stack(t) for t in zip(*val[i:i + BATCH])) for i in range(0, len(val), BATCH)]
    loader = DataLoader(CaptureStream(seed, backgrounds), batch_size=BATCH, num_workers=1, prefetch_factor=4)
    net = CornerNet(WIDTHS)
    if init is not None:  # the network is fully convolutional: any input size and padding fit its weights
        net.load_state_dict(artifact.load_localiser(init).net.state_dict())
        net.train()
    steps = max(1, images // BATCH)
    lr = LR if init is None else FINE_TUNE_LR
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.05)
    bar = tqdm(zip(range(steps), loader), total=steps, unit="batch", disable=not progress)
    running = None
    for step, (x, target, _) in bar:
        loss = heatmap_loss(net(x), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.set_postfix(loss=f"{running:.4f}")
        if (step + 1) % max(1, steps // 5) == 0 and step + 1 < steps:
            log(f"step {step + 1}/{steps}: {json.dumps(validate(net, val_batches))}")
    metrics = validate(net, val_batches)
    seconds = time.perf_counter() - start
    log(f"final: {json.dumps(metrics)} in {seconds:.0f} s")
    net.eval()
    config = {"image_size": IMAGE_SIZE, "pad": PAD, "widths": list(WIDTHS), "found_threshold": FOUND_THRESHOLD,
              "trained": {"images": steps * BATCH, "seed": seed, "backgrounds": len(backgrounds),
                          "init": artifact.localiser_id(init) if init is not None else None,
                          "seconds": round(seconds), "validation": metrics}}
    artifact.save_localiser(net, config, out)
    artifact.load_localiser(out)  # what was written loads
    return metrics

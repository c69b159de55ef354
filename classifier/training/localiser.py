"""Training the corner localiser on simulated captures.

Every training image is made on the fly: a rendered demo document photographed by
``classifier.synth.augment.simulate_capture``, which knows where the corners went. Some
images hold no document (so the localiser learns to say "not found") and some show the
document filling the frame, as a scan or a tight crop does (corners at the image's edge or
past it). The network's encoder starts from ImageNet-pretrained MobileNetV3-Small weights.

    python manage.py train_localiser [--images N] [--seed S] [--out DIR] [--backgrounds DIR]
        [--encoder-weights FILE] [--init DIR]
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

from classifier import artifact, weights
from classifier.backbone import load_backbone
from classifier.localise import (DECODE_VERSION, STRIDE, decode_heatmaps, found_outline, image_to_canvas, network_name,
                                 quad_mask, to_input)
from classifier.networks import CornerNet, MobileCornerNet
from classifier.synth.augment import photo_crop, random_background, simulate_capture
from classifier.synth.demo import DOC_TYPES, render_document
from classifier.training.metrics import localisation_metrics

# -- configuration ---------------------------------------------------------
IMAGES = 24_000  # a new network's training images (each one new), from ImageNet weights: about 25 minutes here
BATCH = 32
LR = 3e-3
FINE_TUNE_LR = 1e-3  # from a trained localiser's weights (--init): it needs adapting, not relearning
FINE_TUNE_IMAGES = 48_000  # each fine-tuning of the shipped weights from the one before: about 50 minutes
WEIGHT_DECAY = 1e-4
NETWORK = "mobilenet_v3_small"  # ``localise.NETWORKS``: "unet" is the earlier localisers' CornerNet, from scratch
WIDTHS = {"unet": (16, 32, 48, 64, 96), "mobilenet_v3_small": (64, 48, 32)}
IMAGE_SIZE = 160  # the photo is squashed to this ...
# ... and padded by this much, so that corners outside the photo have a place on the heatmap: 35% of
# the photo's side holds the corners of 98% of documents framed with 60% or more of them in view.
PAD = 56
SIGMA = 1.0  # corner heatmap Gaussian, in heatmap cells
POSITIVE_WEIGHT = 30.0  # heatmap cells near a corner are rare; weigh them up
NO_DOCUMENT_SHARE = 0.12
SCAN_SHARE = 0.2  # the document filling the frame (``simulate_capture(framing="scan")``)
PARTIAL_SHARE = 0.15  # partly out of frame, on top of the share "any" framing has: the hardest to localise
# With background photos, documents whose portrait is a real photo's crop: real documents print
# photographs, the renders drawn faces, and a localiser that never saw one inside a document took
# the photo on real scans for what lies around documents.
PHOTO_PORTRAIT_SHARE = 0.35
DOC_POOL = 200  # rendered documents kept per worker; one is replaced every RENEW_EVERY images
RENEW_EVERY = 4
FOUND_THRESHOLD = 0.3  # weakest corner's peak probability below this: "not found"
VAL_IMAGES = 300
PRESENCE_IMAGES = 1500  # captures (with the training backgrounds) that set the presence threshold ...
PRESENCE_RECALL = 0.995  # ... so that this share of documents count as in view
# ---------------------------------------------------------------------------


def make_sample(rng: np.random.Generator, doc_pool: list,
                backgrounds: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
    """One (RGB array, quad or None) training or validation image."""
    r = rng.random()
    if r < NO_DOCUMENT_SHARE:
        size = ((640, 480), (480, 640))[int(rng.integers(2))]
        return np.asarray(random_background(rng, size, backgrounds)), None
    doc = doc_pool[int(rng.integers(len(doc_pool)))]
    if backgrounds and rng.random() < PHOTO_PORTRAIT_SHARE:
        doc = with_photo_portrait(doc, rng, backgrounds)
    framing = ("scan" if r < NO_DOCUMENT_SHARE + SCAN_SHARE else
               "partial" if r < NO_DOCUMENT_SHARE + SCAN_SHARE + PARTIAL_SHARE else "any")
    img, quad = simulate_capture(doc, rng, backgrounds=backgrounds, distractors=doc_pool, framing=framing)
    return np.asarray(img), quad.astype(float)


def with_photo_portrait(doc: Image.Image, rng: np.random.Generator, backgrounds: Sequence[Path]) -> Image.Image:
    """``doc`` with a crop of one of the ``backgrounds`` photos where a portrait goes, on its left or
    its right, in colour or grey."""
    a = np.array(doc)
    h, w = a.shape[:2]
    pw, ph = int(rng.uniform(0.22, 0.38) * w), int(rng.uniform(0.45, 0.72) * h)
    x0 = int(rng.uniform(0.03, 0.12) * w)
    x0 = x0 if rng.random() < 0.5 else w - pw - x0
    y0 = int(rng.uniform(0.12, 0.95 - ph / h) * h)
    crop = photo_crop(rng, (pw, ph), backgrounds[int(rng.integers(len(backgrounds)))])
    if rng.random() < 0.3:
        crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    a[y0:y0 + ph, x0:x0 + pw] = crop
    return Image.fromarray(a)


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
    """Endless simulated captures as (input tensor, target tensor, quad-in-canvas or NaNs, photo size)."""

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
            yield (torch.from_numpy(to_input(img, IMAGE_SIZE, PAD)), torch.from_numpy(targets(quad, size)),
                   torch.from_numpy(canvas),
                   torch.tensor(size))


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted BCE against Gaussian corner targets plus plain BCE on the mask."""
    corners = nn.functional.binary_cross_entropy_with_logits(
        logits[:, :5], target[:, :5], weight=1 + POSITIVE_WEIGHT * target[:, :5])
    mask = nn.functional.binary_cross_entropy_with_logits(logits[:, 5], target[:, 5])
    return corners + 0.5 * mask


@torch.inference_mode()
def validate(net: nn.Module, batches: list) -> dict:
    """Metrics in network-input coordinates (IoU does not care about the scale) plus how often
    the corners come out in the document's own order (among images found with IoU >= 0.5)."""
    net.eval()
    preds, truths, negatives_found, orders = [], [], [], []
    for x, _, canvas, sizes in batches:
        read = decode_heatmaps(net(x).numpy(), IMAGE_SIZE // STRIDE, sizes.numpy())
        for c, p, a, t in zip(read.corners, read.peaks, read.agreement, canvas.numpy()):
            quad = found_outline(c, p, a, FOUND_THRESHOLD, DECODE_VERSION)[0]
            if np.isnan(t).any():
                negatives_found.append(quad is not None)
                continue
            preds.append(quad)
            truths.append(t)
            if quad is not None:
                shifts = [np.linalg.norm(np.roll(quad, s, axis=0) - t, axis=1).mean() for s in range(4)]
                orders.append(int(np.argmin(shifts)) == 0)
    net.train()
    metrics = localisation_metrics(preds, truths)
    metrics["own_order_share"] = float(np.mean(orders)) if orders else 0.0
    metrics["no_document_found_share"] = float(np.mean(negatives_found)) if negatives_found else 0.0
    return metrics


@torch.inference_mode()
def fit_presence(net: nn.Module, seed: int, backgrounds: Sequence[Path] = ()) -> tuple[float, dict]:
    """The document presence (``decode_heatmaps``) below which a photo holds no document: the one
    that ``PRESENCE_RECALL`` of the documents in fresh simulated captures reach; and how many of
    the captures that hold none it turns away."""
    net.eval()
    stream = iter(CaptureStream(seed, backgrounds))
    with_document, without = [], []
    for _ in range(0, PRESENCE_IMAGES, BATCH):
        x, _, canvas, _ = (torch.stack(t) for t in zip(*(next(stream) for _ in range(BATCH))))
        for presence, truth in zip(decode_heatmaps(net(x).numpy(), IMAGE_SIZE // STRIDE).presence, canvas.numpy()):
            (without if np.isnan(truth).any() else with_document).append(presence)
    net.train()
    threshold = float(np.quantile(with_document, 1 - PRESENCE_RECALL))
    return threshold, {"documents": len(with_document), "no_document": len(without),
                       "no_document_rejected_share": float(np.mean(np.array(without) < threshold))}


def new_network(network: str, encoder_weights: str | Path | None) -> tuple[nn.Module, str]:
    """An untrained localiser network of kind ``network`` and where its weights started: the
    encoder's ImageNet weights (``encoder_weights`` as ``load_backbone`` takes them: a
    torchvision mobilenet_v3_small state_dict file, or None for torchvision's download)."""
    if network == "unet":
        return CornerNet(WIDTHS[network]), "scratch"
    extractor, spec = load_backbone("small", encoder_weights)
    return MobileCornerNet(WIDTHS[network], extractor.features.requires_grad_(True)), spec.weights_id


def train_localiser(images: int | None = None, seed: int = 0, out: Path = artifact.LOCALISER_DIR,
                    backgrounds: Sequence[Path] = (), init: Path | None = None, network: str = NETWORK,
                    encoder_weights: str | Path | None = None, log: Callable[[str], None] = print,
                    progress: bool = True) -> dict:
    """Train a new ``network`` (or fine-tune the localiser in ``init``), validate on held-out
    simulated captures, and write ``localiser.safetensors`` and ``localiser.json`` into ``out``
    (default: the shipped localiser's folder). ``images``: by default ``IMAGES`` for a new
    network, ``FINE_TUNE_IMAGES`` from ``init``. Returns the validation metrics."""
    if images is None:
        images = IMAGES if init is None else FINE_TUNE_IMAGES
    torch.set_num_threads(1)  # one core for training, one DataLoader worker for the images
    torch.manual_seed(seed)
    start = time.perf_counter()
    val_stream = iter(CaptureStream(seed + 10_000))  # a different seed: images never trained on
    val = [next(val_stream) for _ in range(VAL_IMAGES)]
    val_batches = [tuple(torch.stack(t) for t in zip(*val[i:i + BATCH])) for i in range(0, len(val), BATCH)]
    loader = DataLoader(CaptureStream(seed, backgrounds), batch_size=BATCH, num_workers=1, prefetch_factor=4)
    if init is None:
        net, started_from = new_network(network, encoder_weights)
    else:  # fully convolutional: any input size and padding fit its weights
        net, trained = weights.load_localiser_network(init)
        net, network, started_from = net.train(), network_name(trained), artifact.localiser_id(init)
    for layer in net.modules():  # torchvision's MobileNetV3 has 0.01: running statistics that lag the weights
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = 0.1
    steps = max(1, images // BATCH)
    lr = LR if init is None else FINE_TUNE_LR
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.05)
    bar = tqdm(zip(range(steps), loader), total=steps, unit="batch", disable=not progress)
    running = None
    for step, (x, target, _, _) in bar:
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
    presence_threshold, metrics["presence"] = fit_presence(net, seed + 20_000, backgrounds)
    seconds = time.perf_counter() - start
    log(f"final: {json.dumps(metrics)} in {seconds:.0f} s")
    net.eval()
    config = {"network": network, "image_size": IMAGE_SIZE, "pad": PAD, "widths": list(WIDTHS[network]),
              "found_threshold": FOUND_THRESHOLD, "decode": DECODE_VERSION, "presence_threshold": presence_threshold,
              "trained": {"images": steps * BATCH, "seed": seed, "backgrounds": len(backgrounds),
                          "init": started_from, "seconds": round(seconds), "validation": metrics}}
    weights.save_localiser(net, config, out)
    weights.load_localiser(out)  # what was written loads
    return metrics

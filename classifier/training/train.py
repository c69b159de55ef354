"""Training the MLP head on frozen MobileNetV3 features: the one training entry point.

    config = TrainConfig(cache_dir=Path(".cache/features"), backbone="small", weights="mobilenet_v3_small.pth")
    result = train_classifier([Path("data/train")], config)   # writes models/<version>/, points models/current at it

Each labelled image contributes its own view plus augmented views (rotations,
scale, perspective, blur, noise, lighting, JPEG, capture simulation). Types with
enough images hold some out for validation; a type with too few is validated on
simulated captures of its images that training never sees, as hard as real photos
(partly out of frame, glare, a second card), so that the bands and the open-set
threshold measure real difficulty rather than the ease of a specimen's own view.
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn
from tqdm import tqdm

from classifier import artifact, quality, weights
from classifier.artifact import BackboneSpec, file_sha256
from classifier.backbone import load_backbone
from classifier.bands import Calibration
from classifier.designs import (CANDIDATES_PER_TYPE, CHECKED_PER_TYPE, DESIGNS_FILE, MIN_POINTS, REFERENCES_PER_TYPE,
                                DesignReferences, DesignRule, design_of, most_typical, readable)
from classifier.device import describe, resolve_device
from classifier.head import MLPHead
from classifier.export import export_graphs
from classifier.localise import Localiser
from classifier.networks import TorchForward
from classifier.openset import REFERENCES_PER_CLASS, OpenSetRule
from classifier.images import load_image
from classifier.preprocessing import Preprocessing, document_view
from classifier.training.dataset import Dataset, scan
from classifier.training.features import DECODE_SIZE, Augmentation, FeatureCache, photos
from classifier.training.metrics import classification_metrics
from classifier.training.outliers import outlier_images


VALIDATION_SEED_OFFSET = 1_000_003  # validation captures' generator seed, apart from the training views'
# views of each held-out image the novelty threshold is set on: the photo as it is, its document flat
# (``features.Augmentation``) and augmented views, so a scan of a known type is not taken for an unknown one
OPEN_SET_VIEWS = 8


@dataclass
class TrainConfig:
    cache_dir: Path = field(kw_only=True)  # where backbone features of (image, view) pairs are kept
    backbone: str = "large"  # "large" (960 features) or "small" (576)
    weights: str | None = None  # local state_dict file, "random", or None for torchvision's download
    device: str = "auto"  # where the backbone runs: "auto" (a CUDA GPU when present), "cpu" or "cuda"
    seed: int = 0
    val_fraction: float = 0.2
    min_holdout: int = 5  # a type needs this many images before real ones are held out
    folds: int = 0  # >= 2: also report stratified K-fold cross-validation accuracy
    # augmentation: enough views that every type is seen ~views_per_class times. 960 rather than
    # 480 took three flat specimens per type from 0.963 to 0.980 on captured photos, at twice the
    # first training's time; max_views lets three images per type reach it.
    views_per_class: int = 960
    min_views: int = 4
    max_views: int = 320
    val_views: int = 16  # unseen simulated captures validating a type too small to hold images out
    capture_probability: float = 0.6
    backgrounds: tuple[Path, ...] = ()
    # outlier exposure: captures of random fictional types, which the head learns to be unsure of
    outlier_types: int = 40
    outlier_views: int = 5
    outlier_weight: float = 1.0
    # head and optimiser
    hidden: int = 256
    dropout: float = 0.3
    members: int = 3  # MLPs trained side by side, their probabilities averaged (``head.MLPHead``)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    epochs: int = 300
    patience: int = 25  # epochs without a better validation loss before stopping
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    localise: bool = True  # cut photos to the document first, with the localiser in localiser_dir
    localiser_dir: Path = artifact.LOCALISER_DIR  # copied into the model, which serves with its own copy


@dataclass
class Split:
    """Feature rows for training and validation, with their class indices."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    notes: list[str]
    train_view: np.ndarray  # each training row's view number (``features.Augmentation.view``)
    open_set_x: np.ndarray  # the validation views and more of the same images (``OPEN_SET_VIEWS``)
    # val_x and open_set_x again at each further quarter turn whose answers are averaged (``Preprocessing.turns``)
    val_turned: list[np.ndarray] = field(default_factory=list)
    open_set_turned: list[np.ndarray] = field(default_factory=list)
    outlier_x: np.ndarray | None = None  # documents of no known type (``outliers``)
    held: list[int] = field(default_factory=list)  # the images held out for validation (indices into the data)
    captured: list[int] = field(default_factory=list)  # the images validated on simulated captures of them

    @property
    def val_turns(self) -> list[np.ndarray]:
        """The validation rows at every turn the answer averages, turn 0 first."""
        return [self.val_x, *self.val_turned]

    @property
    def open_set_turns(self) -> list[np.ndarray]:
        return [self.open_set_x, *self.open_set_turned]


@dataclass
class TrainResult:
    model: weights.TrainedModel
    model_dir: Path
    seconds: float


def train_classifier(data_dirs: list[Path], config: TrainConfig, out_dir: Path | None = None,
                     log: Callable[[str], None] = print) -> TrainResult:
    """Train and save the model: exactly to ``out_dir``, or (by default) to
    ``models/<version>/``, then pointing ``models/current`` at it."""
    started = time.perf_counter()
    data = scan(data_dirs)
    counts = np.bincount(data.targets(), minlength=len(data.classes))
    log(f"{len(data.images)} images of {len(data.classes)} types: "
        + ", ".join(f"{c} {n}" for c, n in zip(data.classes, counts)))
    extractor, spec = load_backbone(config.backbone, config.weights)
    device = resolve_device(config.device)
    extractor.to(device)
    log(f"backbone on {describe(device, torch.get_num_threads())}; the head trains on the CPU")
    augmentation = Augmentation(config.seed, config.capture_probability, tuple(config.backgrounds))
    localiser_net = weights.load_localiser_network(config.localiser_dir) if config.localise else None
    localiser = Localiser(localiser_net[1], TorchForward(localiser_net[0])) if localiser_net else None
    prep = replace(config.preprocessing, localiser=artifact.localiser_id(config.localiser_dir) if localiser else "")
    caches = [(FeatureCache(config.cache_dir, spec, prep, augmentation, localiser, turn),
               FeatureCache(config.cache_dir, spec, prep, validation_captures(augmentation), localiser, turn))
              for turn in range(prep.turns)]
    (cache, val_cache), turned_caches = caches[0], caches[1:]

    split = make_split(data, config, cache, val_cache, extractor, turned_caches=turned_caches)
    split.outlier_x = outlier_features(config, cache, extractor)
    for note in split.notes:
        log(note)
    head, temperature = fit_head(split, len(data.classes), config, log)
    val_probs = predict_proba(head, split.val_turns, temperature)
    val_metrics = validation_metrics(val_probs, split.val_y, len(data.classes))
    log(f"validation: accuracy {val_metrics['accuracy']:.3f} on {len(split.val_y)} views, "
        f"loss {val_metrics['loss']:.3f}, temperature {temperature:.2f}")
    calibration = Calibration.fit(val_probs.max(1), val_probs.argmax(1) == split.val_y)
    open_set = fit_open_set(head, split, config.seed, localiser)
    notes = split.notes + [calibration_note(calibration), open_set_note(open_set)]
    log(notes[-2])
    log(notes[-1])

    cv = cross_validate(data, config, caches, extractor, log) if config.folds >= 2 else None
    val_metrics["per_class"] = dict(zip(data.classes, val_metrics["per_class"]))  # accuracy on each type's views
    metadata = model_metadata(data, config, spec, prep, head, split) | {
        "temperature": temperature, "calibration": calibration.to_dict(), "validation": val_metrics,
        "open_set": open_set.to_dict(), "cross_validation": cv}
    metadata["training"] |= {"notes": notes, "device": device}
    model = weights.TrainedModel(head.eval(), metadata)
    model_dir = Path(out_dir or artifact.MODELS_DIR / model.version)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.metadata["designs"] = keep_designs(model_dir, data, split, config.seed, augmentation, prep, localiser, log)
    graphs = export_graphs(model_dir, model.head, extractor, prep, localiser_net)
    weights.save_model(model, model_dir, config.localiser_dir, graphs)
    if out_dir is None:
        artifact.make_current(model_dir)
    return TrainResult(model, model_dir, time.perf_counter() - started)


def keep_designs(model_dir: Path, data: Dataset, split: Split, seed: int, augmentation: Augmentation,
                 prep: Preprocessing, localiser: Localiser | None, log: Callable[[str], None]) -> dict:
    """Write the model's design references and return its metadata's "designs": their checksum and
    the ``DesignRule`` its validation photos give (``classifier.designs``)."""
    references = design_references(data, split, seed, prep, localiser)
    references.save(model_dir / DESIGNS_FILE)
    checked = check_designs(data, split, references, MIN_POINTS, augmentation, prep, localiser)
    rule = DesignRule.fit(checked, MIN_POINTS)
    log(f"printed designs: {len(rule.turns_away)} of {len(data.classes)} types turn away readable photos "
        f"without theirs ({', '.join(sorted(rule.turns_away)) or 'none'})")
    return {"sha256": f"sha256:{file_sha256(model_dir / DESIGNS_FILE)}", **rule.to_dict(),
            "per_type": REFERENCES_PER_TYPE, "checked": checked}


def design_references(data: Dataset, split: Split, seed: int, prep: Preprocessing,
                      localiser: Localiser | None) -> DesignReferences:
    """The keypoints of ``REFERENCES_PER_TYPE`` training images' documents of each type (none held out for
    validation), cut out as serving cuts them: of ``CANDIDATES_PER_TYPE`` drawn, the most typical
    (``designs.most_typical``)."""
    rng = np.random.default_rng(seed)
    by_type = {}
    held = set(split.held)
    for code in data.classes:
        images = [img for i, img in enumerate(data.images) if img.label == code and i not in held]
        drawn = [images[i] for i in rng.permutation(len(images))[:CANDIDATES_PER_TYPE]]
        views = (document_view(load_image(img.path, min_size=DECODE_SIZE), localiser, prep)[0] for img in drawn)
        by_type[code] = most_typical([design_of(view) for view in views], REFERENCES_PER_TYPE, MIN_POINTS)
    return DesignReferences(by_type)


def check_designs(data: Dataset, split: Split, references: DesignReferences, min_points: int,
                  augmentation: Augmentation, prep: Preprocessing,
                  localiser: Localiser | None) -> dict[str, tuple[int, int]]:
    """For each type, how many of its validation photos show a readable document (``designs.readable``),
    and how many of those do not carry its design: ``CHECKED_PER_TYPE`` photos of its held-out images (as
    they are, their documents flat, augmented views), or else simulated captures training never saw."""
    jobs = []  # (image index, views, augmentation): as validation sees them, ``make_split``
    sources = ((split.held, 0, augmentation), (split.captured, 1, validation_captures(augmentation)))
    for code in data.classes:
        for indices, first, source in sources:
            members = [i for i in indices if data.images[i].label == code]
            per_image = math.ceil(CHECKED_PER_TYPE / len(members)) if members else 0
            jobs += [(i, range(first, first + per_image), source) for i in members]
    checked = {code: [0, 0] for code in data.classes}
    for i, views, source in tqdm(jobs, desc="printed designs", unit="image"):
        image = data.images[i]
        for photo in photos(image.path, image.sha256, views, source, localiser):
            view, found = document_view(photo, localiser, prep)
            issues = quality.assess(quality.measure(view, found, photo, photo.size))
            if readable(found, issues):
                checked[image.label][0] += 1
                checked[image.label][1] += not references.carries(view, image.label, min_points)
    return {code: (n, missed) for code, (n, missed) in checked.items()}


def calibration_note(calibration: Calibration) -> str:
    if calibration.fallback:
        return (f"calibration: only {calibration.n_correct} correct validation predictions; "
                f"using default bands (high >= {calibration.mean}, medium >= "
                f"{calibration.mean - calibration.std:.2f}) until there is more data")
    return (f"calibration: m={calibration.mean:.3f} s={calibration.std:.3f} from "
            f"{calibration.n_correct} correct validation predictions: high >= {calibration.mean:.3f}, "
            f"medium >= {calibration.mean - calibration.std:.3f}")


def outlier_features(config: TrainConfig, cache: FeatureCache, extractor) -> np.ndarray | None:
    """Features of the outlier images, as serving would see them; None with ``outlier_types`` 0."""
    if not config.outlier_types:
        return None
    paths = outlier_images(config.cache_dir, config.outlier_types, config.outlier_views, config.seed)
    items = [(path, file_sha256(path), 1) for path in paths]
    return np.concatenate(cache.features(extractor, items)).astype(np.float32)


def validation_captures(augmentation: Augmentation) -> Augmentation:
    """Every validation view a simulated capture, from a generator stream training never draws from."""
    return replace(augmentation, seed=augmentation.seed + VALIDATION_SEED_OFFSET, capture_probability=1.0)


def fit_open_set(head: MLPHead, split: Split, seed: int, localiser: Localiser | None) -> OpenSetRule:
    """Keep some training views of each type as the head's references, and set the novelty
    threshold from the validation views (``classifier.openset``). The references are the training
    images as they are and their documents flat (views 0 and 1) first, topped up with augmented
    views: a scan of a known type then has a reference like it, and an unknown document of the
    references' clean look is further from every one (demo model: AUROC 0.78 -> 0.85 against
    real documents). A localiser that does not measure whether a document is in view leaves a
    photo without an outline taken for none."""
    rng = np.random.default_rng(seed)
    plain = split.train_view <= 1
    kept = np.concatenate([np.concatenate([rng.permutation(np.flatnonzero((split.train_y == c) & views))
                                           for views in (plain, ~plain)])[:REFERENCES_PER_CLASS]
                           for c in np.unique(split.train_y)])
    with torch.no_grad():
        head.set_references(head.logits_and_hidden(torch.from_numpy(split.train_x[kept]))[1])
        novelty = np.mean([head.novelty(head.logits_and_hidden(torch.from_numpy(x))[1]).numpy()
                           for x in split.open_set_turns], axis=0)  # as served: the mean over the turns
    return replace(OpenSetRule.fit(novelty),
                   no_outline_rejected=localiser is not None and localiser.presence_threshold is None)


def open_set_note(rule: OpenSetRule) -> str:
    return (f"open set: novelty above {rule.threshold:.4f} (the {rule.quantile:.0%} quantile of "
            f"{rule.n_validation} validation views) is answered \"not a supported document\"")


def model_metadata(data: Dataset, config: TrainConfig, spec: BackboneSpec, prep: Preprocessing, head: MLPHead,
                   split: Split) -> dict:
    """What a model records about how it was made: enough to serve it and to tell it apart."""
    created = datetime.now(timezone.utc)
    counts = np.bincount(data.targets(), minlength=len(data.classes))
    return {
        "version": f"{created:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        "created": created.isoformat(),
        "classes": data.classes,
        "display_names": data.display_names,
        "backbone": asdict(spec),
        "preprocessing": asdict(prep),
        "head": {"in_features": int(split.train_x.shape[1]), "hidden": config.hidden, "dropout": config.dropout,
                 "references": int(head.references.shape[1]), "members": head.members},
        "dataset": {"fingerprint": data.fingerprint(), "n_images": len(data.images),
                    "per_class": {c: int(n) for c, n in zip(data.classes, counts)},
                    "data_dirs": [str(d) for d in data.dirs]},
        "training": {k: v for k, v in asdict(config).items()
                     if k not in ("preprocessing", "cache_dir", "backgrounds", "localiser_dir")}
                    | {"backgrounds": len(config.backgrounds)},
    }


def n_views(n_images: int, config: TrainConfig) -> int:
    """Augmented views per image, so that small types are not drowned by big ones."""
    return int(np.clip(math.ceil(config.views_per_class / max(1, n_images)), config.min_views, config.max_views))


def make_split(data: Dataset, config: TrainConfig, cache: FeatureCache, val_cache: FeatureCache, extractor,
               images=None, turned_caches: Sequence[tuple[FeatureCache, FeatureCache]] = ()) -> Split:
    """Stratified hold-out; `images` restricts to a subset of indices (cross-validation). Held-out
    images are validated as they are; a type too small to hold any out, on ``val_cache``'s views.
    ``turned_caches``: the two caches again at each further turn the answer averages, for the validation rows."""
    rng = np.random.default_rng(config.seed)
    targets = np.array(data.targets())
    indices = np.arange(len(data.images)) if images is None else np.asarray(images)
    train_items, held_items, capture_items, notes = [], [], [], []  # (image index, first view, last view)
    held_images, captured_images = [], []
    for c, name in enumerate(data.classes):
        members = indices[targets[indices] == c]
        members = members[rng.permutation(len(members))]
        if len(members) >= config.min_holdout:
            n_val = max(1, round(len(members) * config.val_fraction))
            held, kept = members[:n_val], members[n_val:]
            views = n_views(len(kept), config)
            train_items += [(i, 0, views + 1) for i in kept]
            # held-out images as they are (view 0) for validation and calibration, which must see what
            # serving will see; their further views for the novelty threshold only
            held_items += [(i, 0, OPEN_SET_VIEWS) for i in held]
            held_images += held.tolist()
        else:
            views = n_views(len(members), config)
            train_items += [(i, 0, views + 1) for i in members]
            capture_items += [(i, 1, 1 + config.val_views) for i in members]
            captured_images += members.tolist()
            notes.append(f"{name}: only {len(members)} image(s), too few to hold out; validating on "
                         f"{config.val_views} unseen simulated captures of each")

    def rows(part, source: FeatureCache):
        items = [(data.images[i].path, data.images[i].sha256, last) for i, _, last in part]
        xs = [f[first:last] for (i, first, last), f in zip(part, source.features(extractor, items))]
        ys = [np.full(len(x), targets[i]) for (i, _, _), x in zip(part, xs)]
        return xs, ys

    train_x, train_y = rows(train_items, cache)
    train_view = np.concatenate([np.arange(first, first + len(x)) for (_, first, _), x in zip(train_items, train_x)])
    held_x, held_y = rows(held_items, cache)
    capture_x, capture_y = rows(capture_items, val_cache)
    val_y = [y[:1] for y in held_y] + capture_y
    val_turns, open_set_turns = [], []
    for held, captures in [(held_x, capture_x)] + [(rows(held_items, turn_cache)[0], rows(capture_items, turn_val)[0])
                                                   for turn_cache, turn_val in turned_caches]:
        val_turns.append(np.concatenate([x[:1] for x in held] + captures).astype(np.float32))
        open_set_turns.append(np.concatenate(held + captures).astype(np.float32))
    return Split(np.concatenate(train_x).astype(np.float32), np.concatenate(train_y), val_turns[0],
                 np.concatenate(val_y), notes, train_view, open_set_turns[0], val_turns[1:], open_set_turns[1:],
                 held=held_images, captured=captured_images)


def fit_head(split: Split, n_classes: int, config: TrainConfig, log=print) -> tuple[MLPHead, float]:
    """AdamW with class weights against imbalance. Each member keeps its weights of its lowest
    validation loss; training stops once no member has bettered its own for ``patience`` epochs.
    Returns the head and the temperature that calibrates its scores."""
    torch.manual_seed(config.seed)  # the same head from the same features, cached or not
    gen = torch.Generator().manual_seed(config.seed)
    x, y = torch.from_numpy(split.train_x), torch.from_numpy(split.train_y).long()
    vx, vy = torch.from_numpy(split.val_x), torch.from_numpy(split.val_y).long()
    head = MLPHead(x.shape[1], n_classes, config.hidden, config.dropout, members=config.members)
    head.set_feature_stats(x)
    counts = torch.bincount(y, minlength=n_classes).float()
    weights = counts.sum() / (n_classes * counts.clamp_min(1))
    outliers = None if split.outlier_x is None else torch.from_numpy(split.outlier_x)
    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best = {name: p.detach().clone() for name, p in head.named_parameters()}
    best_loss, stale = torch.full((head.members,), math.inf), torch.zeros(head.members, dtype=torch.long)
    for epoch in range(config.epochs):
        head.train()
        for batch in torch.randperm(len(x), generator=gen).split(config.batch_size):
            optimiser.zero_grad()
            logits = head.member_logits_and_hidden(x[batch])[0]  # every member: the mean of their losses
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y[batch].repeat(head.members), weight=weights)
            if outliers is not None:  # cross-entropy against uniform scores (Hendrycks et al., 2019)
                drawn = outliers[torch.randint(len(outliers), (len(batch) // 4 + 1,), generator=gen)]
                outlier_logits = head.member_logits_and_hidden(drawn)[0]
                loss = loss - config.outlier_weight * torch.log_softmax(outlier_logits, -1).mean()
            loss.backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            val_loss = torch.stack([nn.functional.cross_entropy(logits, vy)
                                    for logits in head.member_logits_and_hidden(vx)[0]])
            better = val_loss < best_loss - 1e-4
            for name, p in head.named_parameters():
                best[name][better] = p[better]
        best_loss, stale = torch.where(better, val_loss, best_loss), torch.where(better, 0, stale + 1)
        if bool((stale >= config.patience).all()):
            break
    log(f"head: {head.members} member(s), stopped after {epoch + 1} epochs, best validation loss "
        + ", ".join(f"{loss:.4f}" for loss in best_loss.tolist()))
    with torch.no_grad():
        for name, p in head.named_parameters():
            p.copy_(best[name])
    head.eval()
    return head, fit_temperature(head, vx, vy)


def validation_metrics(probs: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
    """Accuracy, ECE and loss of the validation answers as served (``probs``: the mean over the
    turns), and each type's accuracy, which the list of document types shows."""
    metrics = classification_metrics(y, probs, n_classes)
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    per_class = [m["recall"] if m["support"] else None for m in metrics["per_class"]]
    return {"accuracy": metrics["accuracy"], "ece": metrics["ece"], "loss": loss, "n": int(len(y)),
            "per_class": per_class}


def fit_temperature(head: MLPHead, vx: torch.Tensor, vy: torch.Tensor) -> float:
    """One scalar that makes validation scores honest (Guo et al., 2017)."""
    with torch.no_grad():
        logits = head(vx)
    if bool((logits.argmax(1) == vy).all()):
        # Every answer right: the loss keeps falling as T -> 0, so a fit would sharpen scores
        # without limit (it stopped at T = 0.1-0.2 and scored photos of fish 1.000).
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure():
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), vy)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def predict_proba(head: MLPHead, turns: Sequence[np.ndarray], temperature: float) -> np.ndarray:
    """The answers as served: the mean of the probabilities over the rows at each turn."""
    with torch.no_grad():
        return np.mean([torch.softmax(head(torch.from_numpy(x)) / temperature, 1).numpy() for x in turns], axis=0)


def cross_validate(data: Dataset, config: TrainConfig, caches: list[tuple[FeatureCache, FeatureCache]], extractor,
                   log=print) -> dict | None:
    """Stratified K-fold accuracy on held-out images (their own view, no augmentation), each answered
    as served: the mean over its turns (``caches``: the training and validation views' cache at each)."""
    (cache, val_cache) = caches[0]
    targets = np.array(data.targets())
    smallest = np.bincount(targets).min()
    if smallest < config.folds:
        log(f"cross-validation skipped: the smallest type has {smallest} images, fewer than {config.folds} folds")
        return None
    folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
    scores = []
    for k, (train_idx, test_idx) in enumerate(folds.split(np.zeros(len(targets)), targets), 1):
        split = make_split(data, config, cache, val_cache, extractor, images=train_idx)
        head, temperature = fit_head(split, len(data.classes), config, log=lambda _: None)
        test = [(data.images[i].path, data.images[i].sha256, 1) for i in test_idx]
        probs = predict_proba(head, [np.concatenate(turn.features(extractor, test)).astype(np.float32)
                                     for turn, _ in caches], temperature)
        scores.append(float((probs.argmax(1) == targets[test_idx]).mean()))
        log(f"fold {k}/{config.folds}: accuracy {scores[-1]:.3f} on {len(test_idx)} images")
    result = {"folds": config.folds, "accuracy_mean": float(np.mean(scores)),
              "accuracy_std": float(np.std(scores)), "accuracy": scores}
    log(f"cross-validation: accuracy {result['accuracy_mean']:.3f} ± {result['accuracy_std']:.3f} "
        f"over {config.folds} folds")
    return result

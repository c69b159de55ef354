"""How the image becomes a square model input: squash, letterbox or centre crop.

A linear probe (logistic regression) on the backbone features of each image as it
is, trained on one labelled folder and scored on another; no augmentation, so the
numbers compare the three resize modes and nothing else.

    .venv/bin/python -m benchmarks.resize_modes TRAIN_DIR TEST_DIR --weights FILE [--size 320] [--localise]
"""
import argparse

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from classifier.weights import load_localiser
from classifier.backbone import load_backbone
from classifier.images import RESIZE_MODES, load_image, to_array
from classifier.preprocessing import Preprocessing, document_view
from classifier.training.dataset import scan


def features(extractor, images, size, mode, rotations, localiser):
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), 32), desc=mode, leave=False):
            prep = Preprocessing(size, mode)
            views = [document_view(load_image(i.path), localiser, prep)[0] for i in images[start:start + 32]]
            batch = torch.from_numpy(np.stack([to_array(view, size, mode) for view in views]))
            out.append(extractor(batch, "gem", rotations).numpy())
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("train_dir")
    parser.add_argument("test_dir")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--rotations", type=int, default=1)
    parser.add_argument("--localise", action="store_true", help="cut each photo to the found document first")
    args = parser.parse_args()
    extractor, _ = load_backbone(args.backbone, args.weights)
    train = scan([args.train_dir])
    test = scan([args.test_dir], classes=train.classes)
    localiser = load_localiser() if args.localise else None
    for mode in RESIZE_MODES:
        a = features(extractor, train.images, args.size, mode, args.rotations, localiser)
        b = features(extractor, test.images, args.size, mode, args.rotations, localiser)
        scaler = StandardScaler().fit(a)
        probe = LogisticRegression(max_iter=3000, C=0.5).fit(scaler.transform(a), train.targets())
        accuracy = (probe.predict(scaler.transform(b)) == np.array(test.targets())).mean()
        print(f"{mode:<12} linear-probe accuracy {accuracy:.3f} ({len(train.images)} train, {len(test.images)} test)")


if __name__ == "__main__":
    main()

"""Preprocessing a 4000x3000 JPEG to the model input: full decode against the draft
fast path, and the largest difference between the two inputs.

    .venv/bin/python -m benchmarks.preprocess [--repeat 20]
"""
import argparse
import statistics
import time

import numpy as np
from PIL import Image

from benchmarks.photos import encode
from classifier.images import IMAGENET_STD, load_image, to_array


def photo_like_jpeg(width=4000, height=3000) -> bytes:
    """Smooth shapes plus sensor-like noise: compresses like a real 12 MP photo."""
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    arr = np.asarray(small).astype(np.int16) + rng.normal(0, 6, (height, width, 3)).astype(np.int16)
    return encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), "JPEG", quality=92)


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data = photo_like_jpeg()
    print(f"input: 4000x3000 JPEG, {len(data) / 1e6:.1f} MB")
    full_ms, full = timed(lambda: to_array(load_image(data)), args.repeat)
    fast_ms, fast = timed(lambda: to_array(load_image(data, min_size=224)), args.repeat)
    pixels = (fast - full).abs() * max(IMAGENET_STD) * 255
    print(f"full decode + resize: {full_ms:7.1f} ms (median of {args.repeat})")
    print(f"draft fast path:      {fast_ms:7.1f} ms ({full_ms / fast_ms:.1f}x faster)")
    print(f"difference of model inputs in 8-bit pixel units: max {pixels.max():.1f}, "
          f"mean {pixels.mean():.2f}, 99.9th percentile {np.percentile(pixels.numpy(), 99.9):.1f}")


if __name__ == "__main__":
    main()

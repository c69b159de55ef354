"""The CPU one stored image costs to show: a 16 MP PNG (the largest PNG an upload may have) viewed
through the reviewers' image and thumbnail views, once and then again and again, in this process with
a database and media folder of its own. Prints CPU seconds, not a pass or fail.

    .venv/bin/python -m benchmarks.image_views [--views 20] [--side 4000]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

import numpy as np
from PIL import Image

from benchmarks.photos import encode


def png(side: int, seed: int) -> bytes:
    """Smooth shapes with a little noise: a PNG of ``side`` x ``side`` that fits the upload limit."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    arr = np.asarray(small).astype(np.int16) + rng.integers(-2, 3, (side, side, 3), dtype=np.int16)
    return encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), "PNG")


def cpu_of(fn) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=20, help="how often the image is shown")
    parser.add_argument("--side", type=int, default=4000, help="the PNG's width and height (4000: 16 MP)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="idclass-image-views-")
    os.environ.update(DJANGO_SETTINGS_MODULE="idclass.settings", DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
                      IDCLASS_MEDIA_ROOT=f"{tmp}/media", SECURE_SSL_REDIRECT="false", ALLOWED_HOSTS="testserver")
    import django
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()
    client.force_login(User.objects.create_superuser("reviewer", password=None))
    for seed, kind in enumerate(("image", "thumbnail")):  # an image of its own each: none viewed before
        prediction = stored(png(args.side, seed), args.side)
        url = f"/review/{prediction.id}/{kind}"

        def view():
            assert client.get(url).status_code == 200

        first = cpu_of(view)
        rest = [cpu_of(view) for _ in range(args.views - 1)]
        total = first + sum(rest)
        print(f"{kind:>9} of a {args.side}x{args.side} PNG ({prediction.size_bytes / 1e6:.1f} MB): first view "
              f"{first * 1000:.1f} ms CPU, each later one {np.median(rest) * 1000:.1f} ms (median); "
              f"{args.views} views {total * 1000:.1f} ms = {total / first:.2f}x the first")


def stored(data: bytes, side: int):
    """A prediction with ``data`` stored as an upload's image would be."""
    from idclass.models import Prediction

    digest = hashlib.sha256(data).hexdigest()
    prediction = Prediction(sha256=digest, size_bytes=len(data), width=side, height=side, document_type="demo_id",
                            score=0.5, band="low", model_version="benchmark", latency_ms=0,
                            top_k=[{"document_type": "demo_id", "label": "Demo", "score": 0.5}])
    prediction.image.name = f"{digest}.png"
    prediction.image.storage.save_document(prediction.image.name, data)
    prediction.save()
    return prediction


if __name__ == "__main__":
    main()

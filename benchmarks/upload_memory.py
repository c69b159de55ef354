"""What worst-case uploads cost a gunicorn worker in memory: 4 at once, several rounds of each
kind, against a real server on 127.0.0.1, with the worker's resident memory (RSS) before, at
its peak and after, and whether each upload got the answer it should.

    .venv/bin/python -m benchmarks.upload_memory [--model DIR] [--rounds 3] [--concurrency 4]
        [--kinds png-1bit-bomb,jpeg-cap,...] [--json OUT] [--train-quick] [--checkout DIR]

The server is this checkout's gunicorn.conf.py with one worker (its 4 threads), on a free
loopback port, serving `--model` (default models/current; `--train-quick` trains a small one
into a temporary folder when there is none, in a few minutes). The uploads are made here: a
7700x7700 1-bit PNG of a few KB (the decompression bomb a tester found), and images of each
format at the most pixels `classifier.images` lets it have. The worker's peak is its VmHWM
(reset per kind through /proc/PID/clear_refs) or, where that cannot be reset, the highest RSS
polled every few milliseconds. Growth is the peak over the RSS before that kind's rounds; the
overall figure is the highest peak over the RSS after warming up. `--checkout DIR` serves
another checkout (say a worktree of an older commit) with the same uploads, to compare.
Bounded: rounds x concurrency requests per kind, and `--time-limit` seconds in all.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.photos import encode
from benchmarks.quick_model import train_quick
from benchmarks.reference_files import WEIGHTS
from benchmarks.server import ROOT, gunicorn, request, worker_pids
from classifier import images
from idclass.settings import IDCLASS_UPLOAD_MAX_BYTES  # as the server it starts reads it

BOMB_SIDE = 7700


@dataclass
class Upload:
    kind: str
    description: str
    file_name: str
    data: bytes = field(repr=False)
    expected_status: int
    expected_code: str | None = None  # the error code expected with a 4xx


@dataclass
class KindResult:
    kind: str
    description: str
    file_bytes: int
    expected: str
    answers: dict[str, int]  # "201" or "400 too_many_pixels" -> how many
    as_expected: int
    requests: int
    rss_before_mb: float
    peak_mb: float
    rss_after_mb: float
    peak_source: str  # "VmHWM" or "polled"
    seconds: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.rss_before_mb


# --------------------------------------------------------------------------
# The uploads
# --------------------------------------------------------------------------

def pixel_limit_of(sample: bytes) -> int:
    """The most pixels `classifier.images` lets a file like `sample` have (same format, mode, sampling)."""
    if not hasattr(images, "pixel_limit"):  # a checkout from before per-format limits
        return images.MAX_PIXELS
    return int(images.pixel_limit(Image.open(io.BytesIO(sample)), images.MAX_PIXELS)[0])


def size_at(pixels: int, aspect: float = 4 / 3) -> tuple[int, int]:
    """The largest w x h with w / h about `aspect` and at most `pixels` pixels (JPEG sides: up to 65500)."""
    h = max(images.MIN_SIDE, int(math.sqrt(pixels / aspect)))
    w = min(pixels // h, 65_500)
    return w, h


def document_photo(width: int, height: int) -> Image.Image:
    """A light card with lines of text on a darker desk, drawn small and enlarged: it
    compresses to little in every format, and the classifier takes it for a document."""
    sw, sh = max(16, width // 16), max(16, height // 16)
    small = Image.new("RGB", (sw, sh), (90, 110, 80))
    draw = ImageDraw.Draw(small)
    draw.rectangle([sw * 0.2, sh * 0.25, sw * 0.8, sh * 0.75], fill=(230, 225, 210))
    for y in range(int(sh * 0.35), int(sh * 0.7), max(2, sh // 30)):
        draw.line([(sw * 0.3, y), (sw * 0.75, y)], fill=(30, 30, 90), width=1)
    return small.resize((width, height), Image.Resampling.NEAREST)


def _tiff_one_strip(img: Image.Image) -> bytes:
    # one strip for the whole image: libtiff decodes it into a buffer of its own first
    return encode(img, "TIFF", compression="tiff_deflate", strip_size=2**31 - 1)


# kind -> (description, suffix, mode, encoder, size for the limit); "size" None: the bomb's own
KIND_SPECS = {
    "png-1bit-bomb": ("1-bit PNG, all white", ".png", "1", lambda im: encode(im, "PNG", optimize=True), None),
    "png-1bit-cap": ("1-bit PNG", ".png", "1", lambda im: encode(im, "PNG"), size_at),
    "png-rgb-cap": ("8-bit RGB PNG", ".png", "RGB", lambda im: encode(im, "PNG"), size_at),
    "png-rgba-cap": ("8-bit RGBA PNG", ".png", "RGBA", lambda im: encode(im, "PNG"), size_at),
    "jpeg-cap": ("baseline JPEG", ".jpg", "RGB", lambda im: encode(im, "JPEG", quality=90), size_at),
    # CMYK, every channel at full resolution: the most coefficients a progressive decoder keeps per pixel
    "jpeg-progressive-cap": ("progressive CMYK JPEG", ".jpg", "CMYK",
                             lambda im: encode(im, "JPEG", quality=90, progressive=True), size_at),
    # too thin for a JPEG's draft to help, unless the long side is reduced too
    "jpeg-elongated": ("baseline JPEG, 36:1", ".jpg", "RGB", lambda im: encode(im, "JPEG", quality=90),
                       lambda n: size_at(n, 36)),
    "tiff-cap": ("RGB TIFF, deflate", ".tif", "RGB", lambda im: encode(im, "TIFF", compression="tiff_deflate"),
                 size_at),
    "tiff-one-strip-cap": ("CMYK TIFF, deflate, one strip", ".tif", "CMYK", _tiff_one_strip, size_at),
    "bmp-cap": ("1-bit BMP", ".bmp", "1", lambda im: encode(im, "BMP"), size_at),
    "webp-cap": ("lossy WebP", ".webp", "RGB", lambda im: encode(im, "WEBP", quality=80), size_at),
    "gif-cap": ("GIF", ".gif", "P", lambda im: encode(im, "GIF"), size_at),
}
KINDS = tuple(KIND_SPECS)


def make_uploads(kinds=KINDS, bomb_side: int = BOMB_SIDE) -> list[Upload]:
    """One upload per kind, at the most pixels the loader allows that kind (asked with a small
    sample of it), with the answer the server should give: 201, or 400 "too_many_pixels" over it."""
    uploads = []
    for kind in kinds:
        if kind not in KIND_SPECS:
            raise ValueError(f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
        what, suffix, mode, save, size = KIND_SPECS[kind]
        limit = pixel_limit_of(save(_picture(1024, 768, mode)))
        if size is None:
            w = h = bomb_side
            data = save(Image.new(mode, (w, h), 1))
        else:
            for _ in range(3):  # where the limit depends on how the file is laid out (TIFF strips), ask again
                w, h = size(limit)
                data = save(_picture(w, h, mode))
                if (w, h) == size(pixel_limit_of(data)):
                    break
                limit = pixel_limit_of(data)
        if len(data) > IDCLASS_UPLOAD_MAX_BYTES:
            expected, code = 413, "too_large"
        elif w * h > limit:
            expected, code = 400, "too_many_pixels"
        else:
            expected, code = 201, None
        uploads.append(Upload(kind, f"{w}x{h} {what}", f"{kind}{suffix}", data, expected, code))
    return uploads


def _picture(width: int, height: int, mode: str) -> Image.Image:
    img = document_photo(width, height)
    return img.quantize(16) if mode == "P" else img.convert(mode) if mode != "RGB" else img


def warm_up_upload() -> Upload:
    return Upload("warm-up", "640x480 JPEG", "warm-up.jpg", encode(document_photo(640, 480), "JPEG"), 201)


# --------------------------------------------------------------------------
# Memory of a process
# --------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of `pid`, in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(pid: int) -> bool:
    """Set `pid`'s VmHWM back to its RSS now (Linux 4.0+, the process's owner); False where refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakSampler:
    """The highest RSS of `pid` while running: VmHWM when it could be reset, also polled."""

    def __init__(self, pid: int, interval: float = 0.003):
        self.pid, self.interval = pid, interval
        self.hwm = reset_peak(pid)
        self.polled = proc_status(pid)["VmRSS"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.polled = max(self.polled, proc_status(self.pid)["VmRSS"])
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self) -> tuple[float, str]:
        if self.hwm:
            return max(self.polled, proc_status(self.pid)["VmHWM"]), "VmHWM"
        return self.polled, "polled"


# --------------------------------------------------------------------------
# Sending uploads
# --------------------------------------------------------------------------

def post_image(host: str, port: int, upload: Upload, timeout: float = 120) -> tuple[int, str | None]:
    """POST /api/v1/classify with the image; the status and the error code, if any."""
    boundary = secrets.token_hex(16)
    body = b"".join([
        f"--{boundary}\r\n".encode(),
        f'Content-Disposition: form-data; name="image"; filename="{upload.file_name}"\r\n'.encode(),
        b"Content-Type: application/octet-stream\r\n\r\n", upload.data, f"\r\n--{boundary}--\r\n".encode()])
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/api/v1/classify", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        payload = response.read()
    except OSError as exc:
        return 0, f"{type(exc).__name__}"
    finally:
        conn.close()
    code = None
    if response.status >= 400:
        try:
            code = json.loads(payload)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
    return response.status, code


def send_at_once(host: str, port: int, upload: Upload, concurrency: int) -> list[tuple[int, str | None]]:
    """`concurrency` copies of the upload, released together."""
    barrier = threading.Barrier(concurrency)

    def one(_):
        barrier.wait()
        return post_image(host, port, upload)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(concurrency)))


def measure_kind(host: str, port: int, pid: int, upload: Upload, rounds: int, concurrency: int) -> KindResult:
    started = time.perf_counter()
    before = proc_status(pid)["VmRSS"]
    answers: dict[str, int] = {}
    good = 0
    with PeakSampler(pid) as sampler:
        for _ in range(rounds):
            for status, code in send_at_once(host, port, upload, concurrency):
                key = f"{status} {code}" if code else str(status)
                answers[key] = answers.get(key, 0) + 1
                good += status == upload.expected_status and code == upload.expected_code
    peak, source = sampler.peak()
    expected = " ".join(str(x) for x in (upload.expected_status, upload.expected_code) if x)
    return KindResult(upload.kind, upload.description, len(upload.data), expected, answers, good,
                      rounds * concurrency, before, peak, proc_status(pid)["VmRSS"], source,
                      time.perf_counter() - started)


def run_benchmark(host: str, port: int, pid: int, uploads: list[Upload], rounds: int = 3, concurrency: int = 4,
                  time_limit: float = 900, warm_up: Upload | None = None, log=print) -> dict:
    """Every upload `rounds` times, `concurrency` at once, against the server at host:port whose
    worker is `pid`; stops starting new kinds after `time_limit` seconds. A dict for JSON."""
    started = time.perf_counter()
    if warm_up is not None:  # the first requests' one-off allocations (threads, torch) are not the uploads'
        for _ in range(2):
            send_at_once(host, port, warm_up, concurrency)
    baseline = proc_status(pid)["VmRSS"]
    log(f"worker {pid}: RSS {baseline:.0f} MB after warming up")
    log(HEADER)
    results, skipped = [], []
    for upload in uploads:
        if time.perf_counter() - started > time_limit:
            skipped.append(upload.kind)
            continue
        result = measure_kind(host, port, pid, upload, rounds, concurrency)
        log(row(result))
        results.append(result)
    final = proc_status(pid)["VmRSS"]
    peak = max([r.peak_mb for r in results], default=baseline)
    return {"pid": pid, "rounds": rounds, "concurrency": concurrency, "baseline_rss_mb": baseline,
            "peak_rss_mb": peak, "peak_growth_mb": peak - baseline, "final_rss_mb": final,
            "requests": sum(r.requests for r in results), "as_expected": sum(r.as_expected for r in results),
            "skipped": skipped, "seconds": time.perf_counter() - started,
            "kinds": [asdict(r) | {"growth_mb": r.growth_mb} for r in results]}


HEADER = (f"{'kind':21} {'image':44} {'file':>8}  {'expected':20} {'answers':24} "
          f"{'before':>7} {'peak':>7} {'growth':>7} {'after':>7}  (MB)")


def row(r: KindResult) -> str:
    answers = ", ".join(f"{n}x {k}" for k, n in sorted(r.answers.items()))
    mark = "" if r.as_expected == r.requests else f"  UNEXPECTED ({r.requests - r.as_expected})"
    size = f"{r.file_bytes / 1e6:.1f}MB" if r.file_bytes >= 100_000 else f"{r.file_bytes / 1e3:.0f}KB"
    return (f"{r.kind:21} {r.description[:44]:44} {size:>8}  {r.expected:20} {answers:24} "
            f"{r.rss_before_mb:7.0f} {r.peak_mb:7.0f} {r.growth_mb:+7.0f} {r.rss_after_mb:7.0f}{mark}")


def summary(result: dict, target_mb: float = 300) -> str:
    """The figures that answer "what may 4 uploads at once cost": the largest growth of one kind
    over the RSS before it (the target's measure), and the highest peak over the RSS after warming
    up, which also counts what earlier kinds left allocated."""
    worst = max(result["kinds"], key=lambda k: k["growth_mb"], default=None)
    lines = []
    if worst:
        verdict = "within" if worst["growth_mb"] <= target_mb else "OVER"
        lines.append(f"largest growth: {worst['growth_mb']:+.0f} MB ({worst['kind']}, {result['concurrency']} "
                     f"uploads at once; {verdict} the {target_mb:.0f} MB target)")
    lines += [f"overall: RSS {result['baseline_rss_mb']:.0f} MB after warming up, peak {result['peak_rss_mb']:.0f} MB "
              f"({result['peak_growth_mb']:+.0f} MB), at the end {result['final_rss_mb']:.0f} MB "
              f"({result['final_rss_mb'] - result['baseline_rss_mb']:+.0f} MB kept)",
              f"answers as expected: {result['as_expected']} of {result['requests']} in {result['seconds']:.0f} s"]
    if result["skipped"]:
        lines.append(f"not run (time limit): {', '.join(result['skipped'])}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "current")
    parser.add_argument("--weights", default=os.environ.get("IDCLASS_BACKBONE_WEIGHTS")
                        or (str(WEIGHTS) if WEIGHTS.is_file() else None),
                        help="backbone weights file (default IDCLASS_BACKBONE_WEIGHTS, else IDCLASS_TEST_WEIGHTS)")
    parser.add_argument("--train-quick", action="store_true", help="without a model, train a small one first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the worker")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds; no new kind starts after")
    parser.add_argument("--target-mb", type=float, default=300)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout to serve (default this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.concurrency <= 16:
        parser.error("--rounds must be 1-20 and --concurrency 1-16")

    with tempfile.TemporaryDirectory(prefix="upload-memory-") as tmp_name:
        tmp = Path(tmp_name)
        model = args.model
        if not (model / "metadata.json").is_file():
            if not args.train_quick:
                sys.exit(f"No model at {model}. Train one (README.md, 'Training and evaluation'), e.g.\n"
                         "  .venv/bin/python manage.py make_demo_dataset data/demo-train --per-class 60 --seed 1\n"
                         "  .venv/bin/python manage.py train_classifier data/demo-train --backbone small\n"
                         "and pass --model DIR if it is not models/current; or add --train-quick to train a "
                         "small one into a temporary folder first.")
            model = train_quick(tmp / "model", args.weights)
        print("making the uploads ...", flush=True)
        uploads = make_uploads([k.strip() for k in args.kinds.split(",") if k.strip()])
        # one worker, nothing stored, no model reloads, and no rate limit: the benchmark is one client
        quiet = {"IDCLASS_STORE_IMAGES": "false", "IDCLASS_MODEL_CHECK_SECONDS": "3600", "IDCLASS_UPLOAD_RATES": "off",
                 "IDCLASS_REFUSED_UPLOAD_RATES": "off", "OMP_NUM_THREADS": str(args.threads)}
        with gunicorn(tmp, model.resolve(), args.weights or "", workers=1, root=args.checkout,
                      **quiet) as (url, server):
            status, health = request(f"{url}/healthz")
            if status != 200:
                sys.exit(f"the server has no usable model: {health}")
            pid, port = worker_pids(server)[0], int(url.rsplit(":", 1)[1])
            print(f"server: gunicorn ({args.checkout / 'gunicorn.conf.py'}), 1 worker, {url}, "
                  f"model {health.get('model_version')} from {model}, OMP_NUM_THREADS={args.threads}")
            print(f"{args.concurrency} uploads at once, {args.rounds} rounds per kind, each at the most pixels "
                  "this checkout's classifier.images allows its kind")
            result = run_benchmark("127.0.0.1", port, pid, uploads, args.rounds, args.concurrency,
                                   args.time_limit, warm_up_upload(), log=lambda line: print(line, flush=True))
    print(summary(result, args.target_mb))
    if args.json:
        args.json.write_text(json.dumps(result | {"model": str(model), "checkout": str(args.checkout)},
                                        indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

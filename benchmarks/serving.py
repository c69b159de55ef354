"""Serving speed against the compute limit, for both backbones in one run: a phone photo (a
3000x4000 JPEG of a captured document, about 1 MB) from bytes to answer.

    .venv/bin/python -m benchmarks.serving [--backbones large,small] [--model-large DIR]
        [--weights-large FILE|random] [--model-small DIR] [--weights-small FILE|random]
        [--requests 40] [--concurrency 8] [--threads N] [--json OUT (default reports/serving.json)]

Per backbone, on this machine's CPU, with the model's own ONNX graphs on ONNX Runtime:
- limit: Pillow's draft decode to the model's input size, plus one forward pass of the localiser
  and of the backbone for one photo (the backbone's over the view's turns, ``Preprocessing.turns``),
  and per photo at batch 8, which bounds throughput;
- in-process: ``Predictor.predict`` on the same bytes, with its stages;
- HTTP: POST /api/v1/classify to this checkout's gunicorn.conf.py on 127.0.0.1 as shipped
  (its workers and threads, `--threads` per forward pass; images stored, the rate limit counting
  but out of reach), one request at a time and `--concurrency` at once. The web layer is the
  HTTP time less the workers' own ``Predictor.predict`` time of the same requests (each
  record keeps it), so both are measured in the same process on the same bytes. Then each
  worker's resident memory, after at least 100 uploads;
- start: a one-worker server, from starting gunicorn to its first answered upload.
Without `--model-*`, a quick model is trained into a temporary folder with the shipped
preprocessing (the backbone's weights do not change its speed: `random` serves for the large
one where torchvision's file is not at hand). Bounded: `--requests` per measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.photos import encode
from benchmarks.quick_model import train_quick
from benchmarks.server import gunicorn, multipart_image, proc_stat, request, worker_pids
from classifier import artifact
from classifier.graphs import OnnxGraphs
from classifier.images import load_image
from classifier.localise import Localiser
from classifier.predictor import Predictor

STAGES = ("decode_ms", "localise_ms", "quality_ms", "features_ms", "head_ms", "design_ms")
# the targets: HTTP p50 at concurrency 1 over the limit, concurrency-N throughput over its
# bound, each worker's memory after 100 uploads, and a new worker's first answer
C1_TARGET = 1.5
THROUGHPUT_TARGET = 0.8
WEB_LAYER_TARGET_MS = 10.0
RSS_TARGET_MB = 300
FIRST_ANSWER_TARGET_S = 2.0
UPLOADS_BEFORE_RSS = 100
# the limit's threads per pass, and the server's default: more stop paying
ALL_CORES = max(1, min(4, os.cpu_count() or 1))


def photos(folder: Path, count: int) -> list[bytes]:
    """`count` captured demo documents, enlarged to 3000x4000 with sensor-like noise: phone photos."""
    from classifier.synth.demo import make_demo_dataset

    make_demo_dataset(folder, per_class=1, seed=11, workers=1, progress=False)
    rng = np.random.default_rng(0)
    out = []
    for path in sorted(folder.glob("*/*.jpg"))[:count]:
        big = np.asarray(Image.open(path).convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC), np.int16)
        noisy = np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)
        out.append(encode(Image.fromarray(noisy), "JPEG", quality=85))
    return out


def median_ms(fn, items, repeat: int) -> float:
    fn(items[0])  # warm up
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(items[i % len(items)])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def limit(model: Path, images: list[bytes], repeat: int) -> dict:
    """What any service must spend with this model's graphs: the cheapest decode and one forward pass
    of the localiser and of the backbone over what one photo's answer needs (its view's turns), each on
    every core (up to ``ALL_CORES``), however many threads the server gives a pass."""
    info = artifact.read_model(model)
    size = info.preprocessing.size
    decode = median_ms(lambda data: load_image(data, min_size=size), images, repeat)
    result = {"decode_ms": decode}
    forwards = [("features", size, info.preprocessing.turns)]  # (graph, input side, inputs a photo)
    localiser_dir = artifact.model_localiser_dir(model, info.preprocessing)
    if localiser_dir:
        forwards.append(("localise", Localiser(artifact.read_localiser(localiser_dir), forward=None).input_side, 1))
    for name, side, per_photo in forwards:
        # the fastest a pass can be: alone in a loop, its threads spinning between passes, no other
        # graph's threads spinning beside them
        forward = getattr(OnnxGraphs(model, info, ALL_CORES, spinning=True), name)
        one, eight = (np.random.default_rng(0).normal(size=(n * per_photo, 3, side, side)).astype(np.float32)
                      for n in (1, 8))
        result[f"{name}_ms"] = median_ms(lambda _: forward(one), [None], repeat)
        result[f"{name}_batch8_ms"] = median_ms(lambda _: forward(eight), [None], max(3, repeat // 4)) / 8
    result.setdefault("localise_ms", 0.0)
    result.setdefault("localise_batch8_ms", 0.0)
    return result | {"ms": decode + result["localise_ms"] + result["features_ms"],
                     "bound_rps": 1000 / (decode + result["localise_batch8_ms"] + result["features_batch8_ms"])}


def in_process(model: Path, images: list[bytes], repeat: int, threads: int) -> dict:
    predictor = Predictor(model, threads=threads)
    answers = [predictor.predict(images[0]) for _ in range(2)]  # warm up
    for i in range(repeat):
        answers.append(predictor.predict(images[i % len(images)]))
    timed = answers[2:]
    return {"ms": statistics.median(a.timings_ms["total_ms"] for a in timed),
            **{stage: statistics.median(a.timings_ms[stage] for a in timed) for stage in STAGES},
            "preprocessing": predictor.prep.key()}


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user and system, all its threads."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http(model: Path, weights: str, images: list[bytes], args, tmp: Path) -> dict:
    requests, concurrency = args.requests, args.concurrency
    bodies = [multipart_image(data) for data in images]
    env = {"OMP_NUM_THREADS": str(args.threads), "IDCLASS_UPLOAD_RATES": "1000000/m",
           "IDCLASS_MODEL_CHECK_SECONDS": "3600"}
    with gunicorn(tmp, model.resolve(), weights, workers=args.workers, **env) as (url, server):
        def post(i: int) -> tuple[int | None, float]:
            body, headers = bodies[i % len(bodies)]
            start = time.perf_counter()
            status, _ = request(f"{url}/api/v1/classify", body, headers, timeout=60)
            return status, (time.perf_counter() - start) * 1000

        with ThreadPoolExecutor(concurrency) as pool:  # every worker and thread loads and runs once
            warm_up = list(pool.map(post, range(2 * concurrency)))
        single = [post(i) for i in range(requests)]
        pids = worker_pids(server)
        with ThreadPoolExecutor(concurrency) as pool:
            cpu = sum(map(cpu_seconds, pids))
            start = time.perf_counter()
            many = list(pool.map(post, range(requests)))
            seconds = time.perf_counter() - start
            cpu = sum(map(cpu_seconds, pids)) - cpu
            more = list(pool.map(post, range(max(0, UPLOADS_BEFORE_RSS - len(warm_up + single + many)))))
        rss = [rss_mb(pid) for pid in worker_pids(server)]
    statuses = sorted({status for status, _ in warm_up + single + many + more})
    # the workers' own Predictor.predict times of the requests one at a time, as their records keep them
    with sqlite3.connect(tmp / "db.sqlite3") as db:
        recorded = [ms for (ms,) in db.execute("SELECT latency_ms FROM idclass_prediction ORDER BY rowid")]
    return {"c1_p50_ms": statistics.median(ms for _, ms in single),
            "c1_p90_ms": float(np.percentile([ms for _, ms in single], 90)),
            "c1_predict_p50_ms": statistics.median(recorded[len(warm_up):len(warm_up) + requests]),
            f"c{concurrency}_p50_ms": statistics.median(ms for _, ms in many),
            f"c{concurrency}_rps": len(many) / seconds, "statuses": statuses,
            # what the workers' CPUs spent per request at concurrency N: 1000 / it is all cores can give
            f"c{concurrency}_worker_cpu_ms": cpu * 1000 / len(many),
            "uploads": len(recorded), "worker_rss_mb": rss}


def first_answer(model: Path, weights: str, images: list[bytes], args, tmp: Path) -> float:
    """Seconds from starting a one-worker gunicorn to its first answered upload."""
    body, headers = multipart_image(images[0])
    env = {"OMP_NUM_THREADS": str(args.threads), "IDCLASS_MODEL_CHECK_SECONDS": "3600"}
    with gunicorn(tmp, model.resolve(), weights, workers=1, **env) as (url, server):
        status, _ = request(f"{url}/api/v1/classify", body, headers, timeout=60)
        assert status == 201, status
        return time.monotonic() - server.started


def measure(backbone: str, model: Path | None, weights: str, images: list[bytes], args, tmp: Path,
            log=print) -> dict:
    if model is None:
        model = train_quick(tmp / f"model-{backbone}", weights, backbone, log=log)
    log(f"{backbone}: limit ...")
    result = {"model": str(model), "weights": weights, "limit": limit(model, images, args.requests)}
    log(f"{backbone}: in-process ...")
    result["in_process"] = in_process(model, images, args.requests, args.threads)
    log(f"{backbone}: HTTP ...")
    for name in ("server", "start"):
        (tmp / f"{name}-{backbone}").mkdir()
    result["http"] = http(model, weights, images, args, tmp / f"server-{backbone}")
    log(f"{backbone}: a new worker's first answer ...")
    result["first_answer_s"] = first_answer(model, weights, images, args, tmp / f"start-{backbone}")
    c1, lim = result["http"]["c1_p50_ms"], result["limit"]
    result["targets"] = {
        "c1_over_limit": c1 / lim["ms"], "c1_over_limit_target": C1_TARGET,
        "throughput_over_bound": result["http"][f"c{args.concurrency}_rps"] / lim["bound_rps"],
        "throughput_target": THROUGHPUT_TARGET,
        "web_layer_ms": c1 - result["http"]["c1_predict_p50_ms"], "web_layer_target_ms": WEB_LAYER_TARGET_MS,
        "rss_mb": max(result["http"]["worker_rss_mb"]), "rss_target_mb": RSS_TARGET_MB,
        "first_answer_s": result["first_answer_s"], "first_answer_target_s": FIRST_ANSWER_TARGET_S}
    return result


def table(results: dict, concurrency: int) -> str:
    rows = ["| path | " + " | ".join(results) + " |", "| --- |" + " --- |" * len(results)]

    def row(name, fn):
        rows.append(f"| {name} | " + " | ".join(fn(r) for r in results.values()) + " |")

    row("limit: draft decode + localiser + backbone forward, ms",
        lambda r: "{decode_ms:.1f} + {localise_ms:.1f} + {features_ms:.1f} = {ms:.1f}".format(**r["limit"]))
    row("limit: localiser + backbone forward per image at batch 8, ms",
        lambda r: "{localise_batch8_ms:.1f} + {features_batch8_ms:.1f}".format(**r["limit"]))
    row("in-process `Predictor.predict`, ms", lambda r: "{ms:.1f}: decode {decode_ms:.1f}, localise "
        "{localise_ms:.1f}, quality checks {quality_ms:.1f}, features {features_ms:.1f}, head {head_ms:.1f}, "
        "design check {design_ms:.1f}"
        .format(**r["in_process"]))
    row("HTTP, concurrency 1, p50 (p90) ms", lambda r: "{c1_p50_ms:.1f} ({c1_p90_ms:.1f})".format(**r["http"]))
    row(f"HTTP, concurrency {concurrency}, requests/s (p50 ms)",
        lambda r: f"{r['http'][f'c{concurrency}_rps']:.1f} ({r['http'][f'c{concurrency}_p50_ms']:.0f})")
    row(f"workers' CPU per request at concurrency {concurrency}, ms ({os.cpu_count()} cores)",
        lambda r: f"{r['http'][f'c{concurrency}_worker_cpu_ms']:.1f}")
    row("the workers' own `Predictor.predict` at concurrency 1, p50 ms",
        lambda r: f"{r['http']['c1_predict_p50_ms']:.1f}")
    row("web layer: HTTP c1 p50 - the workers' predict p50, ms (target <= 10)",
        lambda r: f"{r['targets']['web_layer_ms']:.1f}")
    row("HTTP c1 p50 / limit (target)", lambda r: "{c1_over_limit:.2f}x (<= {c1_over_limit_target}x)"
        .format(**r["targets"]))
    row(f"c{concurrency} requests/s / 1000 / (decode + batch-8 forwards) (target)",
        lambda r: "{throughput_over_bound:.2f}x (>= {throughput_target}x)".format(**r["targets"]))
    row("each worker's RSS after the uploads, MB (target)",
        lambda r: f"{', '.join(f'{mb:.0f}' for mb in r['http']['worker_rss_mb'])} after {r['http']['uploads']} "
                  f"(<= {RSS_TARGET_MB})")
    row("a new worker's first answer after gunicorn starts, s (target)",
        lambda r: "{first_answer_s:.2f} (<= {first_answer_target_s})".format(**r["targets"]))
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="large,small")
    for backbone in ("large", "small"):
        parser.add_argument(f"--model-{backbone}", type=Path, help="a trained model (default: train a quick one)")
        parser.add_argument(f"--weights-{backbone}", default="random",
                            help="the backbone's weights file, as IDCLASS_BACKBONE_WEIGHTS (default random)")
    parser.add_argument("--requests", type=int, default=40, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--photos", type=int, default=10, help="different photos, taken in turn")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: as gunicorn.conf.py says)")
    parser.add_argument("--threads", type=int, default=ALL_CORES,
                        help="threads per forward pass, in process and each worker's OMP_NUM_THREADS (default: "
                             "the server's own, all cores up to 4)")
    parser.add_argument("--json", type=Path, default=Path("reports") / "serving.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 1000 or not 1 <= args.concurrency <= 32:
        parser.error("--requests must be 1-1000 and --concurrency 1-32")
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="serving-") as name:
        tmp = Path(name)
        images = photos(tmp / "photos", args.photos)
        print(f"{len(images)} photos, 3000x4000 JPEG, {statistics.mean(map(len, images)) / 1e6:.2f} MB on average; "
              f"{args.threads} threads per forward pass", flush=True)
        results = {b: measure(b, getattr(args, f"model_{b}"), getattr(args, f"weights_{b}"), images, args, tmp,
                              log=lambda line: print(line, flush=True)) for b in backbones}
    print(table(results, args.concurrency))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"concurrency": args.concurrency, "requests": args.requests,
                                     "workers": args.workers, "threads": args.threads,
                                     "backbones": results}, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()

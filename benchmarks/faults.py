"""Faults a real server meets, each against gunicorn as shipped, on 127.0.0.1 only, bounded in
requests and time. Prints what each scenario expected and got; exits 1 if any check failed.

    .venv/bin/python -m benchmarks.faults --model models/current [--json faults.json]

- kill -9 of a worker during a burst of uploads, then purge_predictions: no image file
  without a record and no record without its file;
- the media folder unwritable, and the media volume full (a small tmpfs, where this
  machine lets root mount one; else only the free-space guard): JSON 503/507, no partial file;
- the SQLite database locked by another process past the busy timeout: JSON 503.

The burst turns the upload rate limits off (IDCLASS_UPLOAD_RATES and IDCLASS_REFUSED_UPLOAD_RATES): it is one client.
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.photos import encode
from benchmarks.server import ROOT, gunicorn, multipart_image, request, server_env, worker_pids

BURST_UPLOADS, BURST_CLIENTS = 48, 6
CHECKS: list[dict] = []


def check(scenario: str, what: str, ok: bool, got) -> None:
    CHECKS.append({"scenario": scenario, "check": what, "ok": bool(ok), "got": got})
    print(f"  [{'ok' if ok else 'FAIL'}] {what}: {got}", flush=True)


def photo(seed: int) -> bytes:
    """A distinct 800x500 JPEG: coloured blocks, so no two uploads share a file."""
    rng = random.Random(seed)
    img = Image.new("RGB", (800, 500), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randrange(700), rng.randrange(400)
        draw.rectangle([x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 120)],
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    return encode(img, "JPEG", quality=90)


def upload(url: str, image: bytes, timeout: float = 60) -> tuple[int | None, dict | None]:
    return request(f"{url}/api/v1/classify", *multipart_image(image), timeout=timeout)


def error_code(answer: dict | None) -> str | None:
    return ((answer or {}).get("error") or {}).get("code")


def manage(env: dict, *args: str) -> str:
    """What a manage.py command printed last."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout.strip().splitlines()[-1]


def records_and_files(env: dict, media: Path) -> tuple[set[str], set[str]]:
    """The image names the records hold, and the files in the media folder (temporary ones included)."""
    code = ("from idclass.models import Prediction; import json; "
            "print(json.dumps(list(Prediction.objects.exclude(image='').values_list('image', flat=True))))")
    names = set(json.loads(manage(env, "shell", "-c", code)))
    files = {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()} if media.exists() else set()
    return names, files


def kill_a_worker_during_a_burst(tmp: Path, args) -> None:
    print("kill -9 of a worker during a burst of uploads", flush=True)
    images = [photo(n) for n in range(BURST_UPLOADS)]
    answers, lock = [], threading.Lock()
    with gunicorn(tmp, args.model, args.weights, workers=2, IDCLASS_UPLOAD_RATES="off",
                  IDCLASS_REFUSED_UPLOAD_RATES="off") as (url, server):
        def client(mine):
            for image in mine:
                answer = upload(url, image)
                with lock:
                    answers.append(answer)

        threads = [threading.Thread(target=client, args=(images[i::BURST_CLIENTS],)) for i in range(BURST_CLIENTS)]
        for thread in threads:
            thread.start()
        while len(answers) < BURST_UPLOADS // 3:
            time.sleep(0.01)
        victim = worker_pids(server)[0]
        os.kill(victim, 9)
        for thread in threads:
            thread.join(300)
        check("kill -9", "server up after the kill", server.poll() is None, f"worker {victim} killed")
    env = server_env(tmp, args.model, args.weights)
    created = {a["id"] for s, a in answers if s == 201}
    statuses = sorted({str(s) for s, _ in answers})
    check("kill -9", "answers", True, f"{len(created)} of {len(answers)} stored (201); statuses {statuses}")
    names, files = records_and_files(env, tmp / "media")
    before = len(files - names)
    print("  purge_predictions: " + manage(env, "purge_predictions", "--orphan-age", "0"), flush=True)
    names, files = records_and_files(env, tmp / "media")
    rows = int(manage(env, "shell", "-c", "from idclass.models import Prediction; print(Prediction.objects.count())"))
    check("kill -9", "every 201 answer has its record", rows >= len(created), f"{rows} records, {len(created)} 201s")
    check("kill -9", "no file without a record after the purge", files == names,
          f"{len(files)} files, {len(names)} named by records, {before} without one before the purge")


@contextmanager
def tmpfs(path: Path, size: str):
    """A small RAM file system at `path`, if this process may mount one; yields whether it could."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=False)


def assert_refused(scenario: str, url: str, media: Path, status: int, code: str) -> None:
    got_status, answer = upload(url, photo(1000))
    check(scenario, f"upload answered {status} {code}", (got_status, error_code(answer)) == (status, code),
          f"{got_status} {error_code(answer)}")
    partial = [p for p in media.rglob("*.part")] if media.is_dir() else []
    check(scenario, "no partial file left", not partial, f"{len(partial)} partial files")


def media_unwritable(tmp: Path, args) -> None:
    print("the media folder cannot be written", flush=True)
    media = tmp / "media"
    with gunicorn(tmp, args.model, args.weights, workers=1, IDCLASS_MIN_FREE_MB="0") as (url, _):
        check("unwritable", "an upload before the fault", upload(url, photo(999))[0] == 201, "201")
        media.rename(tmp / "media.away")
        media.write_text("a file where the media folder was")
        assert_refused("unwritable", url, tmp / "media.away", 503, "storage_unavailable")
        status, health = request(f"{url}/healthz")
        check("unwritable", "/healthz 503, media", status == 503 and health["checks"]["media"] != "ok",
              f"{status} {health and health.get('reason')}")


def media_full(tmp: Path, args) -> None:
    print("the media volume is full", flush=True)
    media = tmp / "media"
    with tmpfs(media, "4m") as mounted:
        if mounted:
            with gunicorn(tmp, args.model, args.weights, workers=1, IDCLASS_MIN_FREE_MB="0") as (url, _):
                free = shutil.disk_usage(media).free
                (media / "filler").write_bytes(bytes(free - 4096))  # room for one page, not a photo
                assert_refused("full volume", url, media, 507, "storage_full")
                (media / "filler").unlink()
        else:
            print("  (no tmpfs here: mount needs root with CAP_SYS_ADMIN; only the guard is checked)")
        with gunicorn(tmp, args.model, args.weights, workers=1, IDCLASS_MIN_FREE_MB=str(10**9)) as (url, _):
            assert_refused("free-space guard", url, media, 507, "storage_full")


def database_locked(tmp: Path, args) -> None:
    print("the database is locked by another process", flush=True)
    with gunicorn(tmp, args.model, args.weights, workers=1, IDCLASS_MIN_FREE_MB="0") as (url, _):
        holder = sqlite3.connect(tmp / "db.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        status, answer = upload(url, photo(2000))
        waited = time.monotonic() - started
        holder.execute("ROLLBACK")
        holder.close()
        check("locked database", "upload answered 503 database_unavailable",
              (status, error_code(answer)) == (503, "database_unavailable"),
              f"{status} {error_code(answer)} after {waited:.1f} s")
        check("locked database", "then uploads work again", upload(url, photo(2001))[0] == 201, "201")


SCENARIOS = {f.__name__: f for f in (kill_a_worker_during_a_burst, media_unwritable, media_full, database_locked)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "current", help="a trained model folder")
    parser.add_argument("--weights", default=os.environ.get("IDCLASS_BACKBONE_WEIGHTS", ""),
                        help="backbone weights file (default: IDCLASS_BACKBONE_WEIGHTS)")
    parser.add_argument("--json", type=Path, help="also write the checks here")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only this scenario (repeatable)")
    args = parser.parse_args()
    if not (args.model / "metadata.json").is_file():
        sys.exit(f"No trained model in {args.model}: train one (README, 'Training and evaluation') or pass --model.")
    for name in args.only or SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="idclass-faults-") as tmp:
            SCENARIOS[name](Path(tmp), args)
    failed = [c for c in CHECKS if not c["ok"]]
    print(f"{len(CHECKS) - len(failed)} of {len(CHECKS)} checks passed")
    if args.json:
        args.json.write_text(json.dumps(CHECKS, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

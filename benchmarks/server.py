"""Real servers for tests and benchmarks: the repository's gunicorn.conf.py on a free 127.0.0.1
port, and the HTTP calls they make to it (standard library only)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 90  # each worker imports torch and loads its model before it answers
STATIC_COLLECTED: set[Path] = set()  # checkouts whose static files this process has collected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 30):
    """condition()'s first true value, asked every 50 ms for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        time.sleep(0.05)
    return value


def server_env(tmp_path: Path, model_dir: Path, weights: str, **extra: str | None) -> dict[str, str]:
    """A production environment (DEBUG off) with its own database and media folder under tmp_path;
    an `extra` of None removes that variable."""
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")} | {
        "DJANGO_SETTINGS_MODULE": "idclass.settings", "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "IDCLASS_MODEL_DIR": str(model_dir), "IDCLASS_BACKBONE_WEIGHTS": weights,
        "IDCLASS_MEDIA_ROOT": str(tmp_path / "media"), "IDCLASS_MODEL_CHECK_SECONDS": "1", "OMP_NUM_THREADS": "1",
    } | extra
    return {k: v for k, v in env.items() if v is not None}


@contextmanager
def gunicorn(tmp_path: Path, model_dir: Path, weights: str, workers: int | None = 2, root: Path = ROOT,
             **extra_env: str | None):
    """gunicorn.conf.py's server (of the checkout at `root`), migrated and answering (any status),
    until the block ends; yields (its URL, the process). `workers` None: as gunicorn.conf.py says.
    A failure inside the block shows the end of gunicorn's log."""
    port = free_port()
    env = server_env(tmp_path, model_dir, weights, GUNICORN_BIND=f"127.0.0.1:{port}", **extra_env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, env=env, check=True,
                   timeout=120)
    collect_static(root, env)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket",
                                   *(["--workers", str(workers)] if workers else [])], cwd=root, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    server.started = time.monotonic()  # for benchmarks: how long a worker takes to answer
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.poll() is not None or request(f"{url}/healthz")[0], timeout=START_SECONDS)
        assert server.poll() is None, log.read_text()
        yield url, server
    except AssertionError as exc:
        lines = [line for line in log.read_text().splitlines() if "POST /api/v1/classify" not in line]
        raise AssertionError("\n".join([str(exc), "--- gunicorn's log, less the POSTs ---", *lines[-60:]])) from exc
    finally:
        server.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: the test is done with it
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def collect_static(root: Path, env: dict[str, str]) -> None:
    """The static files a production server serves (docs/deploy.md's collectstatic), once per checkout and
    process: without them every page answers 500."""
    if root not in STATIC_COLLECTED:
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=root, env=env,
                       check=True, timeout=300)
        STATIC_COLLECTED.add(root)


def proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first, then the parent's pid, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def worker_pids(master: subprocess.Popen) -> list[int]:
    """The pids of gunicorn's workers: the processes whose parent is its master."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = proc_stat(stat.parent.name)
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == master.pid:
            pids.append(int(stat.parent.name))
    return pids


def request(url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int | None, dict | None]:
    """(status, JSON body or None) of one request; (None, None) when nothing answered."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers or {}), timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, None
    except OSError:  # refused, reset or timed out
        return None, None


def get_json(url: str) -> dict | None:
    """The JSON body of a 200 answer; None when there is no server yet or it answers otherwise."""
    status, body = request(url, timeout=10)
    return body if status == 200 else None


def multipart_image(image: bytes, name: str = "photo.jpg") -> tuple[bytes, dict]:
    """(body, headers) of a POST with the image in the field `image`."""
    boundary = secrets.token_hex(16)
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}

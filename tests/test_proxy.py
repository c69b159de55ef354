"""The shipped proxy, deploy/nginx.conf, in front of the shipped gunicorn.conf.py: clients that trickle
their uploads a few bytes at a time tie up nginx, not gunicorn's 2 x 4 threads, so /healthz still
answers at once; whole uploads go through, and oversized ones are refused before gunicorn sees them.
Everything listens on 127.0.0.1 and stops when the tests do."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.server import ROOT, free_port, gunicorn, multipart_image, request
from tests.web import jpeg

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx): "
                                                     "the proxy tests run the shipped deploy/nginx.conf")

SLOW_CLIENTS = 16  # two per gunicorn thread (served directly, 5 of 6 health checks time out); nginx allows 20
HEALTH_CHECKS, HEALTH_TIMEOUT = 6, 3.0
UPLOAD_MAX_BYTES = 15 * 1024 * 1024  # IDCLASS_UPLOAD_MAX_BYTES's default


def get(url: str, timeout: float = 10) -> int | None:
    """The status of a GET; None when nothing answered in time."""
    return request(url, timeout=timeout)[0]


def post_image(url: str, image: bytes) -> tuple[int | None, dict | None]:
    return request(f"{url}/api/v1/classify", *multipart_image(image))


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while get(f"{url}/healthz", timeout=2) != 200:
        assert process.poll() is None, f"{process.args[0]} stopped:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"{url}/healthz not 200 after {timeout} s:\n{log.read_text()[-4000:]}"
        time.sleep(0.1)


def stop(process: subprocess.Popen):
    if process.poll() is None:
        process.terminate()  # nginx's fast shutdown
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def nginx(folder: Path, upstream: str):
    """nginx with deploy/nginx.conf, its listen port and upstream put on 127.0.0.1 ports, in a main file whose
    pid, logs and temporary folders are in `folder`; yields its URL."""
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for shipped, here in (("listen 80;", f"listen 127.0.0.1:{port};"),
                          ("server 127.0.0.1:8000;", f"server {upstream.removeprefix('http://')};")):
        assert site.count(shipped) == 1, f"deploy/nginx.conf no longer has exactly one `{shipped}`"
        site = site.replace(shipped, here)
    (folder / "idclass.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                              "scgi"))
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # its workers write the temporary files into this folder
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n    include {folder / 'idclass.conf'};\n}}\n")
    command = [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    log = folder / "nginx.out"
    with log.open("wb") as out:
        proxy = subprocess.Popen([*command, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, proxy, folder / "error.log", timeout=30)
        yield url
    finally:
        stop(proxy)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, trained_model_dir, backbone_weights):
    """(nginx's URL, gunicorn's URL, gunicorn's log) of both, serving the session's trained model."""
    folder = tmp_path_factory.mktemp("proxy")
    (folder / "nginx").mkdir()
    behind_nginx = {"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto", "IDCLASS_CLIENT_IP_HEADER": "X-Forwarded-For"}
    with (gunicorn(folder, trained_model_dir, backbone_weights, **behind_nginx) as (app, _),
          nginx(folder / "nginx", app) as proxy):
        yield proxy, app, folder / "gunicorn.log"


@contextmanager
def slow_clients(url: str, n: int = SLOW_CLIENTS, chunk: int = 4, pause: float = 0.2, limit: float = 20):
    """n clients that each send an upload's headers, then its body `chunk` bytes every `pause` seconds, until
    the block ends (at most `limit` seconds); yields a list that gets one error per client whose sending failed."""
    host, port = url.removeprefix("http://").split(":")
    body, headers = multipart_image(jpeg(640, 400))
    head = (f"POST /api/v1/classify HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {headers['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    done, errors, started = threading.Event(), [], threading.Barrier(n + 1, timeout=10)
    deadline = time.monotonic() + limit

    def client():
        try:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(head + body[:chunk])
                started.wait()
                for at in range(chunk, len(body), chunk):
                    if done.wait(pause) or time.monotonic() > deadline:
                        return
                    sock.sendall(body[at:at + chunk])
                errors.append("the body was sent whole: make it longer than the test")
        except (OSError, threading.BrokenBarrierError) as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, name=f"slow-client-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    try:
        started.wait()
        time.sleep(1)  # a few chunks each: served directly, each has a gunicorn thread reading its body by now
        yield errors
    finally:
        done.set()
        for thread in threads:
            thread.join(10)


def health_checks(url: str, n: int = HEALTH_CHECKS, timeout: float = HEALTH_TIMEOUT, every: float = 0.5):
    """(status or None, seconds) of n GET /healthz, one every `every` seconds."""
    answers = []
    for _ in range(n):
        start = time.monotonic()
        answers.append((get(f"{url}/healthz", timeout=timeout), round(time.monotonic() - start, 3)))
        time.sleep(every)
    return answers


def posts_seen(log: Path, settle: float = 0) -> int:
    """The uploads gunicorn has answered, by its access log; `settle`: seconds to wait first, as gunicorn
    logs a request after answering it."""
    time.sleep(settle)
    return log.read_text().count("POST /api/v1/classify")


def test_slow_uploads_through_nginx_leave_gunicorn_free(stack):
    proxy, _, log = stack
    before = posts_seen(log, settle=0.5)
    with slow_clients(proxy) as errors:
        answers = health_checks(proxy)
        assert errors == []  # every slow client was still connected and sending, held by nginx
    assert [status for status, _ in answers] == [200] * HEALTH_CHECKS, answers
    assert max(seconds for _, seconds in answers) < 2, answers
    assert posts_seen(log, settle=1) == before  # none of the unfinished uploads was passed on


def test_an_upload_through_nginx_is_classified(stack, demo_image):
    proxy, _, _ = stack
    status, body = post_image(proxy, demo_image[1])
    assert status == 201, body
    assert body["band"] in {"high", "medium", "low"} and body["model_version"]


def test_nginx_refuses_what_the_app_would_never_take(stack):
    proxy, _, log = stack
    before = posts_seen(log, settle=0.5)
    status, body = post_image(proxy, bytes(17 * 1024 * 1024))
    assert (status, body["error"]["code"]) == (413, "too_large")

    # just over the app's limit, within nginx's: the app answers, with its own message
    status, body = post_image(proxy, bytes(UPLOAD_MAX_BYTES + 1000))
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert body["error"]["message"].startswith("The file is larger than")  # the app's, not nginx's
    deadline = time.monotonic() + 10
    while posts_seen(log) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert posts_seen(log) == before + 1  # this one only: the first was refused before gunicorn saw it

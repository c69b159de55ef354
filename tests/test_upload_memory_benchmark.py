"""benchmarks.upload_memory's core with tiny uploads, against a stand-in server in this process
that answers with the real image loader: the uploads, what each should get, the concurrent
sending, the RSS figures and the report keep working. No timings or memory figures asserted."""
import json
import sys
import threading
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import upload_memory as bench
from classifier import images
from classifier.errors import InvalidImage

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def tiny_limits(monkeypatch):
    """The loader's pixel limits a thousand times smaller, so that uploads at them are tiny."""
    monkeypatch.setattr(images, "MAX_PIXELS", images.MAX_PIXELS // 1000)
    monkeypatch.setattr(images, "MAX_PIXELS_DECODED_WHOLE",
                        {kind: n // 1000 for kind, n in images.MAX_PIXELS_DECODED_WHOLE.items()})
    monkeypatch.setattr(images, "DECODE_BYTES", images.DECODE_BYTES // 1000)


class Classify(BaseHTTPRequestHandler):
    """POST /api/v1/classify as the API answers it, minus the model: 201, or the loader's refusal."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = BytesParser(policy=default_policy).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
        data = next(message.iter_parts()).get_content()
        try:
            images.load_image(data, min_size=32, max_pixels=images.MAX_PIXELS)
            status, answer = 201, {"id": "1"}
        except InvalidImage as exc:
            status, answer = 400, {"error": {"code": exc.code, "message": exc.message}}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Classify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def test_uploads_are_at_the_limits_and_the_bomb_over_its_own(tiny_limits):
    uploads = {u.kind: u for u in bench.make_uploads(bomb_side=240)}
    assert set(uploads) == set(bench.KINDS)
    bomb = uploads.pop("png-1bit-bomb")
    assert 240 * 240 < images.MAX_PIXELS  # under a JPEG's limit, like the 7700x7700 one
    assert (bomb.expected_status, bomb.expected_code) == (400, "too_many_pixels")
    assert {(u.expected_status, u.expected_code) for u in uploads.values()} == {(201, None)}
    assert uploads["png-rgb-cap"].description.startswith("146x109 ")  # 16 MP / 1000, 4:3


def test_benchmark_core_runs_against_a_server(tiny_limits, stand_in_server):
    host, port = stand_in_server
    uploads = bench.make_uploads(bomb_side=240)
    lines = []
    result = bench.run_benchmark(host, port, bench.os.getpid(), uploads, rounds=2, concurrency=3,
                                 warm_up=bench.warm_up_upload(), log=lines.append)
    assert result["requests"] == result["as_expected"] == len(uploads) * 2 * 3
    assert [k["kind"] for k in result["kinds"]] == list(bench.KINDS)
    bomb = result["kinds"][0]
    assert bomb["answers"] == {"400 too_many_pixels": 6}
    assert all(k["peak_mb"] > 0 and k["peak_source"] in ("VmHWM", "polled") for k in result["kinds"])
    assert lines[1] == bench.HEADER and len(lines) == 2 + len(uploads)
    assert "UNEXPECTED" not in "\n".join(lines)
    report = bench.summary(result)
    assert "largest growth" in report and f"answers as expected: {len(uploads) * 6} of {len(uploads) * 6}" in report
    json.dumps(result)


def test_without_a_model_it_says_how_to_get_one(tmp_path):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--model", str(tmp_path / "no-model")])
    assert "No model at" in str(stop.value) and "train_classifier" in str(stop.value)
    assert "--train-quick" in str(stop.value)

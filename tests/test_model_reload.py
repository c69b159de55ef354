"""A new model in IDCLASS_MODEL_DIR serves without a restart: loaded in the background while
the old one answers, swapped in whole, and a model that fails to load leaves the old one serving."""
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from classifier import artifact
from classifier.training.train import train_classifier
from idclass import serving
from benchmarks.quick_model import quick_config
from benchmarks.server import get_json, gunicorn, multipart_image, request, wait_for
from tests.web import upload

LOADER_THREAD = "idclass-model-reload"


def serving_version(client) -> str | None:
    """The model_version /healthz reports when all is well, else None."""
    body = client.get("/healthz").json()
    return body.get("model_version") if body["status"] == "ok" else None


def copy_model(source: Path, out: Path, version: str) -> Path:
    """Another real model: the same weights under another version."""
    shutil.copytree(source, out)
    metadata = json.loads((out / "metadata.json").read_text())
    (out / "metadata.json").write_text(json.dumps(metadata | {"version": version}))
    return out


@pytest.fixture
def models(settings, tmp_path, trained_model_dir, backbone_weights, media_root):
    """tmp_path/models with model "a" current and served; looked at before every request."""
    folder = tmp_path / "models"
    artifact.make_current(copy_model(trained_model_dir, folder / "a", "a"))
    settings.IDCLASS_MODEL_DIR = folder / "current"
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    settings.IDCLASS_MODEL_CHECK_SECONDS = 0
    serving.forget_predictor()
    yield folder
    serving.forget_predictor()


class HeldLoads:
    """The thread of every load, and an event that lets background loads go on."""

    def __init__(self):
        self.threads: list[str] = []
        self.release = threading.Event()


@pytest.fixture
def held_loads(monkeypatch, models) -> HeldLoads:
    """Loads in the background wait until the test releases them, so requests meet a load in progress
    (released again before `models` waits for the load to end)."""
    held = HeldLoads()

    class HeldPredictor(serving.Predictor):
        def __init__(self, *args, **kwargs):
            held.threads.append(threading.current_thread().name)
            if held.threads[-1] == LOADER_THREAD:
                assert held.release.wait(30), "the test never released the load"
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(serving, "Predictor", HeldPredictor)
    yield held
    held.release.set()


def classify(client, image: bytes) -> str:
    response = client.post("/api/v1/classify", {"image": upload(image)})
    assert response.status_code == 201, response.content
    return response.json()["model_version"]


@pytest.mark.django_db
def test_a_new_model_is_loaded_in_the_background_and_swapped_in(client, models, held_loads,
                                                                demo_image):
    _, image = demo_image
    in_flight = serving.get_predictor()
    assert classify(client, image) == "a"
    artifact.make_current(copy_model(models / "a", models / "b", "b"))

    # The request that notices model b starts its load and, like those after it, is answered by a.
    assert [classify(client, image) for _ in range(3)] == ["a"] * 3
    wait_for(lambda: len(held_loads.threads) == 2)
    assert held_loads.threads == ["MainThread", LOADER_THREAD]  # off the request path
    assert [classify(client, image) for _ in range(2)] == ["a"] * 2
    held_loads.release.set()
    wait_for(lambda: classify(client, image) == "b")
    assert held_loads.threads == ["MainThread", LOADER_THREAD]  # one load, however many requests looked
    assert serving_version(client) == "b"
    assert in_flight.predict(image).model_version == "a"  # a request keeps the predictor it started with


def test_concurrent_requests_during_a_load_are_answered_by_the_old_model(models, held_loads):
    serving.get_predictor()
    artifact.make_current(copy_model(models / "a", models / "b", "b"))
    with threads_at_once(8) as versions:
        assert versions() == {"a"}
        wait_for(lambda: len(held_loads.threads) == 2)
        assert versions() == {"a"}
        held_loads.release.set()
        wait_for(lambda: versions() == {"b"})
    assert held_loads.threads == ["MainThread", LOADER_THREAD]


@contextmanager
def threads_at_once(count: int):
    """versions(): the model versions `count` threads got from get_predictor(), all asking at once."""
    barrier = threading.Barrier(count)

    def version(_):
        barrier.wait(10)
        return serving.get_predictor().version

    with ThreadPoolExecutor(count) as pool:
        yield lambda: set(pool.map(version, range(count)))


@pytest.mark.django_db
def test_a_model_that_fails_to_load_leaves_the_old_one_serving(client, models, demo_image, caplog):
    _, image = demo_image
    serving.get_predictor()
    broken = copy_model(models / "a", models / "c", "c")
    (broken / artifact.GRAPHS["head"]).write_bytes(b"not an ONNX graph")
    artifact.make_current(broken)

    def health_with_error():
        body = client.get("/healthz").json()
        return body if "reload_error" in body else None

    body = wait_for(health_with_error)
    assert body["status"] == "ok" and body["model_version"] == "a"
    assert "ModelUnreadable" in body["reload_error"] and str(models) not in body["reload_error"]
    assert classify(client, image) == "a"
    assert any(r.levelname == "ERROR" and str(broken / artifact.GRAPHS["head"]) in r.getMessage()
               for r in caplog.records)

    artifact.make_current(copy_model(models / "a", models / "d", "d"))
    wait_for(lambda: classify(client, image) == "d")
    assert serving_version(client) == "d"


def test_a_changed_localiser_in_the_model_folder_is_noticed(models):
    """Not only metadata.json: replacing the model's own localiser makes the server load the folder again."""
    serving.get_predictor()
    own = models / "a" / artifact.MODEL_LOCALISER
    weights = (own / artifact.LOCALISER.weights).read_bytes()
    (own / artifact.LOCALISER.weights).write_bytes(b"other weights")
    assert "ModelMismatch" in wait_for(serving.reload_error)
    (own / artifact.LOCALISER.weights).write_bytes(weights)
    wait_for(lambda: serving.reload_error() is None)
    assert serving.get_predictor().version == "a"


def test_a_failure_is_not_tried_again_until_the_folder_changes(models, monkeypatch):
    serving.get_predictor()
    broken = copy_model(models / "a", models / "c", "c")
    (broken / artifact.GRAPHS["head"]).write_bytes(b"")
    artifact.make_current(broken)
    wait_for(serving.reload_error)
    loads = []
    monkeypatch.setattr(serving, "Predictor", lambda *a, **k: loads.append(a))
    for _ in range(5):
        assert serving.get_predictor().version == "a"
    serving.forget_predictor()  # waits for a load in progress, were there one
    assert loads == []


@pytest.mark.django_db
def test_a_model_that_appears_starts_serving(client, settings, models):
    settings.IDCLASS_MODEL_DIR = models / "later" / "current"
    serving.forget_predictor()
    assert client.get("/healthz").status_code == 503
    artifact.make_current(copy_model(models / "a", models / "later" / "e", "e"))
    wait_for(lambda: client.get("/healthz").status_code == 200)
    assert serving_version(client) == "e"


def test_the_folder_is_looked_at_at_most_once_per_interval(settings, models, monkeypatch):
    settings.IDCLASS_MODEL_CHECK_SECONDS = 60
    serving.get_predictor()
    looks = []
    monkeypatch.setattr(artifact, "model_identity", lambda folder: looks.append(folder))
    for _ in range(20):
        serving.get_predictor()
    assert looks == []


# The acceptance test: a second model trained while a real server runs.

# the client loop's bounds: it must outlast the training (a minute or more on a loaded 2-core CI machine)
MAX_REQUESTS, MAX_SECONDS = 300, 180
SETTLED = 6  # the last answers that must all come from the new model


def test_a_model_trained_while_the_server_runs_serves_with_no_failed_request(
        tmp_path, trained_model_dir, demo_train_dir, feature_cache_dir, backbone_weights, demo_image,
        one_torch_thread):
    models = tmp_path / "models"
    first = "a"
    artifact.make_current(copy_model(trained_model_dir, models / first, first))
    with gunicorn(tmp_path, models / "current", backbone_weights) as (url, _):
        assert get_json(f"{url}/healthz")["model_version"] == first
        with classifying(url, demo_image[1]) as answers:
            wait_for(lambda: len(answers) >= 4, timeout=MAX_SECONDS)
            trained = train_classifier([demo_train_dir], quick_config(backbone_weights, feature_cache_dir),
                                       out_dir=models / "b", log=lambda _: None)
            artifact.make_current(trained.model_dir)
            second = trained.model.version
            wait_for(lambda: [v for _, v in answers[-SETTLED:]] == [second] * SETTLED, timeout=MAX_SECONDS)
        assert [status for status, _ in answers] == [201] * len(answers)  # inside: a failure shows the log
        versions = [v for _, v in answers]
        assert versions[0] == first and set(versions) == {first, second}


@pytest.fixture
def one_torch_thread():
    """Training here beside the server's workers: one torch thread each, not a fight for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def post_image(url: str, image: bytes) -> tuple[int | None, str | None]:
    """(status, model_version) of one POST /api/v1/classify; status None when there was no answer."""
    status, body = request(f"{url}/api/v1/classify", *multipart_image(image))
    return status, (body or {}).get("model_version")


@contextmanager
def classifying(url: str, image: bytes, clients: int = 2):
    """`clients` threads post the image over and over, paced to at most MAX_REQUESTS in MAX_SECONDS
    in all, until the block ends; yields the (status, model_version) answers as they come."""
    answers, stop, deadline = [], threading.Event(), time.monotonic() + MAX_SECONDS
    pause = clients * MAX_SECONDS / MAX_REQUESTS

    def client():
        while len(answers) < MAX_REQUESTS and time.monotonic() < deadline:
            answers.append(post_image(url, image))
            if stop.wait(pause):
                return

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

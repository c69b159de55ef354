"""The database the run uses is the one DATABASE_URL names, and concurrent writers lose nothing on it.

scripts/test.sh runs on SQLite unless DATABASE_URL is set; `.ci/run` runs the suite on both SQLite and PostgreSQL."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import dj_database_url
import pytest
from django.db import connection, connections, transaction

from idclass.models import Prediction
from tests.web import make_prediction

WRITERS = 8
ROWS_EACH = 5


def database_url() -> str:
    """DATABASE_URL from the environment, or from .env, which the settings loaded into it; "" when unset."""
    return os.environ.get("DATABASE_URL", "")


def names_postgresql(url: str) -> bool:
    return bool(url) and dj_database_url.parse(url)["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.django_db
def test_the_run_uses_the_engine_database_url_names():
    url = database_url()
    expected = dj_database_url.parse(url)["ENGINE"] if url else "django.db.backends.sqlite3"
    assert connection.settings_dict["ENGINE"] == expected
    assert connection.vendor == {"django.db.backends.sqlite3": "sqlite",
                                 "django.db.backends.postgresql": "postgresql"}.get(expected, connection.vendor)


@pytest.mark.skipif(not names_postgresql(database_url()), reason="DATABASE_URL does not name a PostgreSQL server")
@pytest.mark.django_db
def test_a_postgres_database_url_runs_the_tests_on_that_server():
    configured = dj_database_url.parse(database_url())
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_database(), current_user, inet_server_port()")
        version, name, user, port = cursor.fetchone()
    assert version.startswith("PostgreSQL ")
    assert name == f"test_{configured['NAME']}"  # pytest-django's own database beside the configured one
    assert user == configured["USER"]
    if configured.get("PORT"):
        assert port == int(configured["PORT"])


def in_threads(count: int, work):
    """work(i) for i in range(count), in `count` threads at once, each on its own connection; the results."""
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connections.close_all()  # this thread's connection, as a server thread closes it after a request

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))  # raises the first error of any thread


@pytest.mark.django_db(transaction=True)  # the threads see committed rows only
def test_concurrent_inserts_are_all_stored():
    def write(i):
        ids = []
        for n in range(ROWS_EACH):
            with transaction.atomic():  # as each upload is saved: one transaction per row
                ids.append(make_prediction(document_type=f"type_{i}", score=0.5 + n / 100).id)
        return ids

    written = [pk for ids in in_threads(WRITERS, write) for pk in ids]
    assert len(set(written)) == WRITERS * ROWS_EACH
    assert set(Prediction.objects.values_list("id", flat=True)) == set(written)
    for i in range(WRITERS):
        assert Prediction.objects.filter(document_type=f"type_{i}").count() == ROWS_EACH


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviews_of_different_predictions_are_all_kept(django_user_model):
    reviewer = django_user_model.objects.create_user("reviewer")
    predictions = [make_prediction(document_type="vel_id", score=0.5 + i / 100) for i in range(WRITERS)]

    def review(i):
        prediction = Prediction.objects.get(pk=predictions[i].pk)
        prediction.record_review(f"type_{i}", reviewer)
        prediction.save()

    in_threads(WRITERS, review)
    reviewed = {p.pk: p for p in Prediction.objects.all()}
    for i, prediction in enumerate(predictions):
        assert reviewed[prediction.pk].review_status == Prediction.Review.CORRECTED
        assert reviewed[prediction.pk].reviewed_label == f"type_{i}"
        assert reviewed[prediction.pk].reviewer == reviewer

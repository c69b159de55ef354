import errno
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from idclass.models import Prediction
from idclass.storage import keep_private
from tests.conftest import ROOT
from tests.web import jpeg, make_prediction, stored_files, upload

pytestmark = pytest.mark.django_db


def test_with_storing_off_no_image_is_kept(client, settings, served_model, demo_image, media_root):
    settings.IDCLASS_STORE_IMAGES = False
    page = client.post("/", {"image": upload(demo_image[1])}, follow=True)
    assert page.status_code == 200 and b"The image was not stored." in page.content
    api = client.post("/api/v1/classify", {"image": upload(demo_image[1])})
    assert api.status_code == 201
    assert Prediction.objects.count() == 2
    assert all(not p.image and p.sha256 for p in Prediction.objects.all())
    assert stored_files(media_root) == []
    assert client.get(f"/p/{api.json()['id']}/image").status_code == 404


def test_upload_page_says_what_is_kept(client, settings, served_model):
    assert b"deleted after 30 days" in client.get("/").content
    settings.IDCLASS_STORE_IMAGES = False
    assert b"Your image is not stored" in client.get("/").content


def test_anonymous_visitors_cannot_fetch_any_image(client, served_model, demo_image, media_root):
    client.post("/", {"image": upload(demo_image[1])})
    prediction = Prediction.objects.get()
    name = prediction.image.name
    anonymous = Client()
    for url in (f"/p/{prediction.id}/", f"/p/{prediction.id}/image", f"/media/{name}", f"/{name}",
                f"/static/{name}", f"/static/../media/{name}"):
        assert anonymous.get(url).status_code == 404, url
    for url in (f"/review/{prediction.id}/image", f"/review/{prediction.id}/thumbnail"):
        assert anonymous.get(url).status_code == 302, url  # to the admin login


def test_no_url_for_stored_images(media_root):
    prediction = make_prediction(jpeg())
    with pytest.raises(NotImplementedError):
        prediction.image.url


def test_images_are_readable_by_the_server_only(media_root):
    prediction = make_prediction(jpeg())
    assert (media_root / prediction.image.name).stat().st_mode & 0o777 == 0o600


def manage_check(tmp_path, media) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | {
        "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}",
        "IDCLASS_MEDIA_ROOT": str(media)}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_database_and_an_open_media_folder_are_made_private_at_start(tmp_path):
    media = tmp_path / "media"
    media.mkdir(mode=0o755)
    media.chmod(0o755)  # as an operator's mkdir under umask 022 leaves it
    result = manage_check(tmp_path, media)
    assert result.returncode == 0, result.stderr
    assert media.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "db.sqlite3").stat().st_mode & 0o777 == 0o600


def test_an_existing_open_database_is_tightened(tmp_path):
    (tmp_path / "data").mkdir()
    database = tmp_path / "data" / "db.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    assert manage_check(tmp_path, tmp_path / "media").returncode == 0
    assert database.stat().st_mode & 0o777 == 0o600


def test_a_media_folder_that_cannot_be_made_private_stops_the_start(tmp_path, settings, monkeypatch):
    media = tmp_path / "media"
    media.mkdir()
    media.chmod(0o755)
    settings.IDCLASS_MEDIA_ROOT = media

    def refuse(path, mode):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)  # as for a folder another user owns
    with pytest.raises(ImproperlyConfigured, match=f"IDCLASS_MEDIA_ROOT \\({media}\\) is open to other users.*"
                                                   f"run chmod 700 {media}"):
        keep_private()


def test_a_failed_save_leaves_no_file(client, served_model, demo_image, media_root, monkeypatch):
    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Prediction, "save", fail)
    response = client.post("/api/v1/classify", {"image": upload(demo_image[1])})
    assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
    assert response["Retry-After"].isdigit()
    assert stored_files(media_root) == []


def test_deleting_a_prediction_deletes_its_image(media_root, django_capture_on_commit_callbacks):
    kept, deleted = make_prediction(jpeg()), make_prediction(jpeg())
    with django_capture_on_commit_callbacks(execute=True):
        deleted.delete()
    assert stored_files(media_root) == [media_root / kept.image.name]
    with django_capture_on_commit_callbacks(execute=True):
        Prediction.objects.all().delete()
    assert stored_files(media_root) == []


@pytest.fixture
def ages(media_root):
    """Predictions 1, 10 and 40 days old, each with its image."""
    now = timezone.now()
    return {days: make_prediction(jpeg(300 + days), created=now - timedelta(days=days)) for days in (1, 10, 40)}


def test_purge_deletes_images_past_the_retention_period(ages, media_root):
    call_command("purge_predictions")  # IDCLASS_RETENTION_DAYS, 30
    assert Prediction.objects.count() == 3
    assert [p.image.name for p in Prediction.objects.order_by("-created")] == [
        ages[1].image.name, ages[10].image.name, ""]
    assert stored_files(media_root) == sorted(media_root / ages[d].image.name for d in (1, 10))


def test_purge_follows_the_retention_setting(ages, media_root, settings):
    settings.IDCLASS_RETENTION_DAYS = 5
    call_command("purge_predictions")
    assert stored_files(media_root) == [media_root / ages[1].image.name]


def test_purge_older_than(ages, media_root, settings):
    settings.IDCLASS_RETENTION_DAYS = 365  # the option wins over the setting
    call_command("purge_predictions", "--older-than", "5")
    assert stored_files(media_root) == [media_root / ages[1].image.name]


def test_purge_can_delete_the_records_too(ages, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_predictions", "--older-than", "5", "--delete-records")
    assert list(Prediction.objects.all()) == [ages[1]]
    assert stored_files(media_root) == [media_root / ages[1].image.name]

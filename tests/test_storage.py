"""Stored images: one file per distinct image, written whole, never outliving its records,
and refused cleanly when the volume is full or cannot be written."""
import errno
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from idclass.models import Prediction
from idclass.storage import DocumentStorage
from tests.web import jpeg, make_prediction, stored_files, upload

pytestmark = pytest.mark.django_db
URL = "/api/v1/classify"


def assert_refused(response, status, code):
    assert response.status_code == status and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert not Prediction.objects.exists()


def test_identical_uploads_share_one_file(client, served_model, demo_image, media_root):
    for _ in range(3):
        assert client.post(URL, {"image": upload(demo_image[1])}).status_code == 201
    assert Prediction.objects.count() == 3
    [file] = stored_files(media_root)
    assert {p.image.name for p in Prediction.objects.all()} == {file.name}


def test_a_shared_file_goes_with_the_last_record(media_root, django_capture_on_commit_callbacks):
    first, second = make_prediction(jpeg()), make_prediction(jpeg())
    with django_capture_on_commit_callbacks(execute=True):
        first.delete()
    assert stored_files(media_root) == [media_root / second.image.name]
    with django_capture_on_commit_callbacks(execute=True):
        second.delete()
    assert stored_files(media_root) == []


def test_purge_keeps_a_file_a_newer_record_names(media_root):
    old = make_prediction(jpeg(), created=timezone.now() - timedelta(days=40))
    new = make_prediction(jpeg())
    call_command("purge_predictions")
    old.refresh_from_db()
    assert not old.image and stored_files(media_root) == [media_root / new.image.name]


def age(path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def test_purge_deletes_files_no_record_names_once_they_are_old(media_root):
    """A worker killed between writing the image and its record leaves such a file."""
    kept = make_prediction(jpeg())
    storage = DocumentStorage()
    storage.save_document("orphan.jpg", jpeg(400))
    storage.save_document("in-flight.jpg", jpeg(500))
    partial = media_root / storage.PARTIAL_DIR / "0123.part"
    partial.write_bytes(b"half an image")
    for path in (media_root / "orphan.jpg", partial, media_root / kept.image.name):
        age(path, 60)
    call_command("purge_predictions")
    assert stored_files(media_root) == sorted([media_root / "in-flight.jpg", media_root / kept.image.name])


def test_an_image_is_private_while_it_is_written(media_root, monkeypatch):
    seen = []

    def fsync(fd):  # the moment before the rename: the bytes are there, under a temporary name
        [partial] = (media_root / DocumentStorage.PARTIAL_DIR).iterdir()
        seen.append(partial.stat().st_mode & 0o777)

    monkeypatch.setattr(os, "fsync", fsync)
    DocumentStorage().save_document("a.jpg", jpeg())
    assert seen == [0o600] and (media_root / "a.jpg").stat().st_mode & 0o777 == 0o600
    assert (media_root.stat().st_mode & 0o777) == 0o700


def test_a_failed_write_leaves_nothing(client, served_model, demo_image, media_root, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert_refused(client.post(URL, {"image": upload(demo_image[1])}), 507, "storage_full")
    assert stored_files(media_root) == []


def test_a_nearly_full_volume_is_refused_before_writing(client, settings, served_model, demo_image,
                                                        media_root):
    settings.IDCLASS_MIN_FREE_BYTES = 10**18  # more than any disk has free
    assert_refused(client.post(URL, {"image": upload(demo_image[1])}), 507, "storage_full")
    response = client.post("/", {"image": upload(demo_image[1])})
    assert response.status_code == 507 and "no room for more uploads" in response.content.decode()
    assert stored_files(media_root) == []


def test_an_unwritable_media_folder_is_503(client, settings, served_model, demo_image, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.IDCLASS_MEDIA_ROOT = blocker / "media"
    response = client.post(URL, {"image": upload(demo_image[1])})
    assert_refused(response, 503, "storage_unavailable")
    assert response["Retry-After"].isdigit()


def test_nothing_is_written_when_images_are_not_kept(client, settings, served_model, demo_image,
                                                     media_root):
    settings.IDCLASS_STORE_IMAGES = False
    settings.IDCLASS_MIN_FREE_BYTES = 10**18  # the guard is for images; records alone go on
    assert client.post(URL, {"image": upload(demo_image[1])}).status_code == 201
    assert not media_root.exists()

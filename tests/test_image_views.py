"""Showing a stored image costs one decode of the original, however often and at whatever size it is
shown: the preview is kept beside the image (as private as it), smaller sizes are made from it, and
both go when the image goes."""
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from PIL import Image

from idclass import views
from idclass.storage import DocumentStorage
from tests.web import encode, make_prediction, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def decodes(monkeypatch):
    """The sizes of the images the views decode, in order."""
    seen = []

    def counting(data, min_size):
        seen.append(len(data))
        return load_image(data, min_size=min_size)

    load_image = views.load_image
    monkeypatch.setattr(views, "load_image", counting)
    return seen


@pytest.fixture
def big_png(media_root):
    """A stored 2000x1500 PNG: decoded whole, so each decode is real work."""
    return make_prediction(encode(Image.effect_noise((2000, 1500), 40).convert("RGB"), "PNG"))


def test_the_original_is_decoded_once_for_every_view(admin_client, big_png, decodes):
    for _ in range(5):
        for kind in ("image", "thumbnail"):
            response = admin_client.get(f"/review/{big_png.id}/{kind}")
            assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert len(decodes) == 2 and decodes[0] == big_png.size_bytes  # the original once, then the preview once
    with Image.open(io.BytesIO(response.content)) as thumbnail:
        assert max(thumbnail.size) == 160


def test_renditions_are_as_private_as_the_image(admin_client, big_png, media_root):
    admin_client.get(f"/review/{big_png.id}/thumbnail")
    renditions = media_root / DocumentStorage.RENDITIONS_DIR
    assert renditions.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in renditions.iterdir()) == [f"{big_png.sha256}-1200.jpg", f"{big_png.sha256}-160.jpg"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in renditions.iterdir())


def test_renditions_go_with_their_image(admin_client, big_png, media_root, django_capture_on_commit_callbacks):
    admin_client.get(f"/review/{big_png.id}/thumbnail")
    with django_capture_on_commit_callbacks(execute=True):
        big_png.delete()
    assert stored_files(media_root) == []


def test_purge_deletes_renditions_of_purged_images(admin_client, media_root):
    old = make_prediction(encode(Image.new("RGB", (400, 300), "red"), "PNG"))
    admin_client.get(f"/review/{old.id}/thumbnail")
    old.created -= timedelta(days=400)
    old.save()
    call_command("purge_predictions")
    assert stored_files(media_root) == []

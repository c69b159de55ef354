"""The whole loop in a real browser: upload, read the result, correct it in the admin, see it counted."""
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from PIL import Image, ImageFilter

from benchmarks.server import ROOT, gunicorn, server_env
from classifier.bands import UNSUPPORTED_LABEL, ConfidenceBand
from classifier.quality import MESSAGES
from idclass.admin import NEW_TYPE
from idclass.models import Prediction

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
        # Inside Playwright's context Django keeps the test's ORM calls on a connection of their own, which
        # nothing else closes; left open, PostgreSQL refuses to drop the test database at the end of the run.
        connections.close_all()


def hex_to_rgb(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_upload_then_correct_in_the_admin(browser, live_server, served_model, demo_train_dir,
                                          django_user_model):
    django_user_model.objects.create_superuser("reviewer", "reviewer@example.com", "a long test password")
    photo = sorted(demo_train_dir.glob("*/*.jpg"))[0]
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(15_000)
    blocked = []  # what the Content-Security-Policy refused: the site's own pages must need nothing it forbids
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

    page.goto(f"{live_server.url}/")
    page.get_by_label("Photo or scan of the document").set_input_files(str(photo))
    sync_api.expect(page.locator(".preview")).to_be_visible()
    page.get_by_role("button", name="Identify document").click()
    page.wait_for_url(f"{live_server.url}/p/*/")

    prediction = Prediction.objects.get()
    band = prediction.confidence_band
    sync_api.expect(page.locator("h1")).to_have_text(prediction.label)
    sync_api.expect(page.locator(".band-title strong")).to_have_text(f"{prediction.get_band_display()} confidence")
    sync_api.expect(page.locator(".band-swatch")).to_have_css("background-color", hex_to_rgb(band.hex_colour))
    sync_api.expect(page.locator(".band-meaning")).to_have_text(band.meaning)
    assert_loaded(page, page.locator(".result-image img"))

    page.goto(f"{live_server.url}/admin/idclass/prediction/")
    page.get_by_label("Username").fill("reviewer")
    page.get_by_label("Password").fill("a long test password")
    page.get_by_role("button", name="Log in").click()
    thumbnail = page.locator("img.idclass-thumb")
    sync_api.expect(thumbnail).to_have_count(1)
    assert_loaded(page, thumbnail)
    page.get_by_role("link", name=prediction.label).click()

    correct = next(c for c in served_model.model.classes if c != prediction.document_type)
    page.get_by_label("Correct type").select_option(correct)
    page.get_by_role("button", name="Save", exact=True).click()
    sync_api.expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    prediction.refresh_from_db()
    assert prediction.review_status == Prediction.Review.CORRECTED
    assert prediction.reviewed_label == correct
    assert prediction.reviewer.username == "reviewer"
    assert prediction.reviewed_at is not None

    page.get_by_role("link", name="Review statistics").click()  # saving returned to the queue
    page.wait_for_url(f"{live_server.url}/admin/idclass/prediction/statistics/")
    sync_api.expect(page.locator("h1")).to_have_text("Review statistics")
    sync_api.expect(page.locator("#content-main > p").first).to_contain_text("1 prediction, 1 reviewed")
    by_type = page.get_by_role("table", name="By predicted type")
    sync_api.expect(by_type).to_contain_text(prediction.label)
    sync_api.expect(by_type).to_contain_text(f"{correct} (1)")
    sync_api.expect(by_type.locator(".idclass-attention").first).to_contain_text("0.0%")
    assert blocked == []
    badge = page.get_by_role("table", name="By band").locator(".idclass-band")
    sync_api.expect(badge).to_have_text(prediction.get_band_display())
    sync_api.expect(badge).to_have_css("background-color", hex_to_rgb(band.hex_colour))


def test_no_document_is_answered_not_supported_and_given_a_new_type(browser, live_server, served_model,
                                                                   tmp_path, django_user_model):
    django_user_model.objects.create_superuser("reviewer", "reviewer@example.com", "a long test password")
    photo = tmp_path / "desk.jpg"  # a plain desk, no document on it
    Image.new("RGB", (800, 600), (150, 120, 90)).save(photo)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/")
    page.get_by_label("Photo or scan of the document").set_input_files(str(photo))
    page.get_by_role("button", name="Identify document").click()
    page.wait_for_url(f"{live_server.url}/p/*/")

    band = ConfidenceBand.UNSUPPORTED
    sync_api.expect(page.locator("h1")).to_have_text(UNSUPPORTED_LABEL)
    sync_api.expect(page.locator(".band-title strong")).to_have_text("Not supported")
    sync_api.expect(page.locator(".band-colour")).to_have_text("(grey)")
    sync_api.expect(page.locator(".band-swatch")).to_have_css("background-color", hex_to_rgb(band.hex_colour))
    sync_api.expect(page.locator(".band-meaning")).to_have_text(band.meaning)
    sync_api.expect(page.locator(".type-code")).to_have_count(0)
    sync_api.expect(page.locator(".alternatives li")).to_have_count(3)  # the closest supported types
    page.get_by_role("link", name="See which documents this service knows").click()
    page.wait_for_url(f"{live_server.url}/#supported-documents")
    sync_api.expect(page.locator("#supported-documents li")).to_have_count(len(served_model.model.classes))
    sync_api.expect(page.locator("#supported-documents")).to_be_in_viewport()

    page.goto(f"{live_server.url}/admin/idclass/prediction/?band__exact=unsupported")
    page.get_by_label("Username").fill("reviewer")
    page.get_by_label("Password").fill("a long test password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name=UNSUPPORTED_LABEL).click()
    page.get_by_label("Correct type").select_option(NEW_TYPE)
    page.get_by_label("New type's code").fill("desk_mat")
    page.get_by_label("New type's name").fill("Desk mat of Veloria")
    page.get_by_role("button", name="Save", exact=True).click()
    sync_api.expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    prediction = Prediction.objects.get()
    assert (prediction.document_type, prediction.band) == ("", "unsupported")
    assert (prediction.review_status, prediction.reviewed_type, prediction.reviewed_name) == (
        "corrected", "desk_mat", "Desk mat of Veloria")


def test_plain_http_on_a_lan_host_name(tmp_path, trained_model_dir, backbone_weights, demo_image):
    """gunicorn as shipped with SECURE_SSL_REDIRECT=false, reached as http://idclass.lan: the browser keeps
    the session and CSRF cookies (Secure ones it would drop), so admin login and the uploader's result work."""
    host = {"ALLOWED_HOSTS": "idclass.lan", "SECURE_SSL_REDIRECT": "false"}
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(demo_image[1])
    with gunicorn(tmp_path, trained_model_dir, backbone_weights, workers=1, **host) as (url, _):
        env = server_env(tmp_path, trained_model_dir, backbone_weights, **host,
                         DJANGO_SUPERUSER_PASSWORD="a long test password")
        subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "reviewer",
                        "--email", "reviewer@example.com"], cwd=ROOT, env=env, check=True, timeout=120)
        site = url.replace("127.0.0.1", "idclass.lan")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
                *CHROMIUM_ARGS, "--host-resolver-rules=MAP idclass.lan 127.0.0.1"])
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{site}/")
            page.get_by_label("Photo or scan of the document").set_input_files(str(photo))
            page.get_by_role("button", name="Identify document").click()
            page.wait_for_url(f"{site}/p/*/")
            sync_api.expect(page.locator(".band-title strong")).to_be_visible()
            assert_loaded(page, page.locator(".result-image img"))  # the uploader's own image: their session

            page.goto(f"{site}/admin/login/?next=/admin/")
            page.get_by_label("Username").fill("reviewer")
            page.get_by_label("Password").fill("a long test password")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{site}/admin/")
            sync_api.expect(page.locator("#user-tools")).to_contain_text("reviewer")
            browser.close()


def test_the_upload_page_lists_the_supported_documents_and_many_can_be_searched(browser, live_server, served_model,
                                                                               monkeypatch):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/")
    listed = page.locator("#supported-documents li")
    sync_api.expect(listed).to_have_text(sorted(served_model.model.display_names.values(), key=str.casefold))
    sync_api.expect(page.get_by_label("Find a document")).to_have_count(0)  # ten are a short list

    many = {f"t{i:02d}": f"{kind} of Place {i}" for i in range(30) for kind in ["Passport" if i % 2 else "ID Card"]}
    monkeypatch.setattr(served_model.model, "metadata", served_model.model.metadata
                        | {"classes": list(many), "display_names": many})
    page.reload()
    sync_api.expect(listed).to_have_count(30)
    page.get_by_label("Find a document").fill("passport place 2")
    sync_api.expect(page.locator("#supported-documents li:visible")).to_have_text(
        sorted((n for n in many.values() if n.startswith("Passport") and "Place 2" in n), key=str.casefold))
    page.get_by_label("Find a document").fill("driving licence")
    sync_api.expect(page.locator("#supported-documents li:visible")).to_have_count(0)
    sync_api.expect(page.get_by_text("No supported document matches that.")).to_be_visible()


def test_a_blurred_photos_result_names_the_blur_and_a_good_ones_names_nothing(browser, live_server, served_model,
                                                                             demo_train_dir, tmp_path):
    scan = Image.open(sorted(demo_train_dir.glob("*/*.jpg"))[0])  # a flat specimen, sharp and evenly lit
    blurred = tmp_path / "blurred.jpg"
    scan.filter(ImageFilter.GaussianBlur(max(scan.size) / 250)).save(blurred)
    page = browser.new_page()
    page.set_default_timeout(15_000)
    for photo, tips in ((scan.filename, []), (str(blurred), [MESSAGES["blurred"]])):
        page.goto(f"{live_server.url}/")
        page.get_by_label("Photo or scan of the document").set_input_files(photo)
        page.get_by_role("button", name="Identify document").click()
        page.wait_for_url(f"{live_server.url}/p/*/")
        sync_api.expect(page.locator(".retake li")).to_have_text(tips)
        sync_api.expect(page.get_by_text("For a better photo")).to_have_count(1 if tips else 0)


def assert_loaded(page, image):
    """Wait until the browser has decoded the image: it was served and is a real picture."""
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000)

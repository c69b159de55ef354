"""Uploads per client are bounded: the cost one client can put on the server (CPU, disk) has a ceiling."""
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client

from idclass import rate_limit
from idclass.models import Prediction, UploadCount
from tests.web import jpeg, upload

pytestmark = pytest.mark.django_db
URL = "/api/v1/classify"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """Windows are fixed (each minute, each day): a test's uploads must not straddle the end of one."""
    monkeypatch.setattr(rate_limit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))  # 30 s into a minute


@pytest.fixture
def three_a_minute(settings, served_model, media_root):
    settings.IDCLASS_UPLOAD_RATES = [(3, 60)]


def post(client: Client, **extra):
    return client.post(URL, {"image": upload(jpeg(400, 300))}, **extra)


def test_past_the_limit_the_api_answers_429_json_with_retry_after(client, three_a_minute):
    assert [post(client).status_code for _ in range(3)] == [201] * 3
    response = post(client)
    assert response.status_code == 429 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "rate_limited"
    assert response["Retry-After"] == "30"
    assert Prediction.objects.count() == 3  # the refused upload is not stored


def test_the_page_says_when_to_try_again(client, three_a_minute):
    for _ in range(3):
        client.post("/", {"image": upload(jpeg(400, 300))})
    response = client.post("/", {"image": upload(jpeg(400, 300))})
    assert response.status_code == 429 and response["Retry-After"].isdigit()
    assert "Too many uploads from here; try again in" in response.content.decode()


def test_refused_uploads_do_not_use_up_the_quota_of_accepted_ones(client, three_a_minute):
    for _ in range(3):
        assert client.post(URL, {"image": upload(b"not an image")}).status_code == 400
    assert [post(client).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_refused_uploads_have_a_ceiling_of_their_own(client, settings, three_a_minute):
    """A client sending garbage costs parsing too."""
    settings.IDCLASS_REFUSED_UPLOAD_RATES = [(5, 60)]
    assert [client.post(URL, {"image": upload(b"not an image")}).status_code for _ in range(6)] == [400] * 5 + [429]
    assert post(client).status_code == 429  # until the window ends, good uploads wait too
    assert Prediction.objects.count() == 0


def test_answers_429_count_nowhere(client, settings, served_model, media_root, monkeypatch):
    """Retrying without waiting, or a busy NAT address, does not burn the day's quota."""
    settings.IDCLASS_UPLOAD_RATES = [(2, 60), (4, 86400)]
    assert [post(client).status_code for _ in range(12)] == [201, 201] + [429] * 10
    monkeypatch.setattr(rate_limit, "time", SimpleNamespace(time=lambda: 1_800_000_090.0))  # the next minute
    assert [post(client).status_code for _ in range(3)] == [201, 201, 429]
    assert int(post(client)["Retry-After"]) > 60  # now the day's window is full


def test_a_refusal_that_is_the_servers_fault_counts_nowhere(client, three_a_minute, monkeypatch):
    from idclass import services

    def full(*args):
        raise services.UploadRejected("database_unavailable", "down")

    store = services.store
    monkeypatch.setattr(services, "store", full)
    assert [post(client).status_code for _ in range(5)] == [503] * 5
    monkeypatch.setattr(services, "store", store)
    assert [post(client).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_clients_are_counted_apart(client, three_a_minute):
    for _ in range(3):
        post(client, REMOTE_ADDR="192.0.2.1")
    assert post(client, REMOTE_ADDR="192.0.2.1").status_code == 429
    assert post(client, REMOTE_ADDR="192.0.2.2").status_code == 201


def test_addresses_are_not_stored(client, three_a_minute):
    post(client, REMOTE_ADDR="192.0.2.77")
    assert all("192.0.2.77" not in key for key in UploadCount.objects.values_list("key", flat=True))


def test_a_proxy_header_is_trusted_only_when_configured(client, settings, three_a_minute):
    for n in range(3):  # without the setting the header is ignored: one client, whatever it claims
        post(client, HTTP_X_REAL_IP=f"198.51.100.{n}")
    assert post(client, HTTP_X_REAL_IP="198.51.100.9").status_code == 429

    settings.IDCLASS_CLIENT_IP_HEADER = "X-Real-IP"  # behind the proxy, every client connects from it
    assert post(client, HTTP_X_REAL_IP="198.51.100.9").status_code == 201


def test_the_tightest_of_several_rates_decides(client, settings, served_model, media_root):
    settings.IDCLASS_UPLOAD_RATES = [(5, 60), (2, 86400)]
    assert [post(client).status_code for _ in range(3)] == [201, 201, 429]
    assert int(post(client)["Retry-After"]) > 60  # the day's window, not the minute's


def test_purge_forgets_ended_windows(client, three_a_minute):
    post(client)
    UploadCount.objects.update(expires="2000-01-01T00:00Z")
    call_command("purge_predictions")
    assert not UploadCount.objects.exists()


def test_rates_are_read_from_the_environment(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from idclass.settings import env_rates
    monkeypatch.setenv("IDCLASS_UPLOAD_RATES", "10/m, 200/d")
    assert env_rates("IDCLASS_UPLOAD_RATES", "") == [(10, 60), (200, 86400)]
    monkeypatch.setenv("IDCLASS_UPLOAD_RATES", "off")
    assert env_rates("IDCLASS_UPLOAD_RATES", "1/s") == []
    monkeypatch.setenv("IDCLASS_UPLOAD_RATES", "ten a minute")
    with pytest.raises(ImproperlyConfigured, match="COUNT/PERIOD"):
        env_rates("IDCLASS_UPLOAD_RATES", "")

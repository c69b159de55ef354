"""Admin logins, headers and settings that matter once the server is on the open internet."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from idclass.models import Prediction
from tests.web import jpeg, upload

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def test_admin_login_locks_out_after_repeated_wrong_passwords(client, settings):
    User.objects.create_superuser("reviewer", password="a long enough passphrase")
    login = "/admin/login/?next=/admin/"
    answers = [client.post(login, {"username": "reviewer", "password": "guess"}).status_code
               for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the last wrong one locks
    locked = client.post(login, {"username": "reviewer", "password": "a long enough passphrase"})
    assert locked.status_code == 429 and "Too many wrong passwords" in locked.content.decode()
    other = client.post(login, {"username": "reviewer", "password": "a long enough passphrase"},
                        REMOTE_ADDR="192.0.2.9")  # from elsewhere the user can still sign in
    assert other.status_code == 302


@pytest.mark.parametrize("password", ["12345678", "password", "reviewer1", "short"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password, User(username="reviewer1"))


def test_pages_carry_a_content_security_policy(client, served_model):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def settings_in_subprocess(expression: str, **env) -> str:
    """A setting as a fresh process reads it from this environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("SECURE_PROXY_SSL_HEADER", "DJANGO_SETTINGS_MODULE")}
    code = f"import idclass.settings as s; print({expression})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base | {"SECRET_KEY": "x"} | env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_proxy_header_is_trusted_only_when_configured():
    assert settings_in_subprocess("getattr(s, 'SECURE_PROXY_SSL_HEADER', None)") == "None"
    assert (settings_in_subprocess("s.SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
            == "('HTTP_X_FORWARDED_PROTO', 'https')")


@pytest.mark.parametrize("env, secure", [
    ({}, "True True"),  # HTTPS, as shipped
    ({"SECURE_SSL_REDIRECT": "false"}, "False False"),  # plain HTTP: a browser would drop Secure cookies
    ({"SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "true"}, "True True"),  # TLS ends before a redirect-less proxy
])
def test_cookies_are_secure_where_the_site_is_served_over_https(env, secure):
    assert settings_in_subprocess("s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE", DEBUG="false", **env).replace(
        ",", "").strip("()") == secure


def test_a_forged_proto_header_does_not_make_a_request_secure(client, settings, served_model):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301


@pytest.fixture
def login_required(settings, served_model, media_root):
    settings.IDCLASS_REQUIRE_LOGIN = True


def test_with_login_required_the_page_sends_visitors_to_sign_in(client, login_required):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    assert client.post("/", {"image": upload(jpeg(400, 300))}).status_code == 302
    assert "Sign in" in client.get("/accounts/login/?next=/").content.decode()
    assert not Prediction.objects.exists()


def test_with_login_required_the_api_answers_401(client, login_required):
    response = client.post("/api/v1/classify", {"image": upload(jpeg(400, 300))})
    assert response.status_code == 401 and response.json()["error"]["code"] == "login_required"
    assert not Prediction.objects.exists()


def test_signed_in_users_upload(client, login_required):
    User.objects.create_user("clerk", password="a long enough passphrase")
    response = client.post("/accounts/login/", {"username": "clerk", "password": "a long enough passphrase",
                                                "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.post("/api/v1/classify", {"image": upload(jpeg(400, 300))}).status_code == 201

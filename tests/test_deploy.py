"""Production configuration: Django's deployment checks and the gunicorn settings."""
import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

from idclass.settings import env_path

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "idclass.settings", "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50)}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_gunicorn_binds_locally_unless_given_a_port(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["127.0.0.1:8000"] and config["workers"] == 2
    assert config["preload_app"] is False  # each worker loads its own model

    monkeypatch.setenv("PORT", "8000")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["0.0.0.0:8000"] and config["workers"] == 3


def test_path_settings_leave_links_as_links(monkeypatch, tmp_path):
    """A server follows IDCLASS_MODEL_DIR's `current` link to each new model, so it is not resolved once."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "current").symlink_to("v1")
    monkeypatch.setenv("IDCLASS_MODEL_DIR", f"{tmp_path}/v1/../current")
    assert env_path("IDCLASS_MODEL_DIR", Path("unused")) == tmp_path / "current"

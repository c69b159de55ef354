"""Production configuration: Django's deployment checks and the gunicorn settings."""
import os
import re
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


def test_gunicorn_binds_locally_unless_told_where(monkeypatch):
    """Behind the proxy (deploy/nginx.conf) gunicorn listens on this machine only; PORT opens nothing wider."""
    for name in ("GUNICORN_BIND", "PORT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["127.0.0.1:8000"] and config["workers"] == 2
    assert config["preload_app"] is False  # each worker loads its own model

    monkeypatch.setenv("PORT", "9000")  # gunicorn's own default would open 0.0.0.0:9000
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["127.0.0.1:8000"]

    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:8000")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["0.0.0.0:8000"] and config["workers"] == 3

    monkeypatch.setenv("GUNICORN_BIND", " 127.0.0.1:8001, unix:/run/idclass.sock ")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["127.0.0.1:8001", "unix:/run/idclass.sock"]


def test_path_settings_leave_links_as_links(monkeypatch, tmp_path):
    """A server follows IDCLASS_MODEL_DIR's `current` link to each new model, so it is not resolved once."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "current").symlink_to("v1")
    monkeypatch.setenv("IDCLASS_MODEL_DIR", f"{tmp_path}/v1/../current")
    assert env_path("IDCLASS_MODEL_DIR", Path("unused")) == tmp_path / "current"


def test_sqlite_runs_in_wal_mode_and_waits_for_a_lock(tmp_path):
    """Several server processes on one SQLite file: a writer waits for the lock, readers are not blocked."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "idclass.settings", "SECRET_KEY": "x",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    code = ("from django.db import connection; c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
            "print(c.fetchone()[0], connection.connection.execute('PRAGMA busy_timeout').fetchone()[0])")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["wal", "20000"]



def test_nginx_takes_the_uploads_the_app_takes(settings):
    """deploy/nginx.conf's body limit is the app's own: the upload limit and the form around it."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    megabytes = int(re.search(r"^\s*client_max_body_size (\d+)m;", conf, re.M)[1])
    assert megabytes * 1024 * 1024 == settings.DATA_UPLOAD_MAX_MEMORY_SIZE

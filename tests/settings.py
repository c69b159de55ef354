"""Production settings with the few changes a test run needs."""
import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault("IDCLASS_MEDIA_ROOT", tempfile.mkdtemp(prefix="idclass-media-"))
os.environ.setdefault("IDCLASS_FEATURE_CACHE", tempfile.mkdtemp(prefix="idclass-features-"))

from idclass.settings import *  # noqa: E402,F401,F403

SECURE_SSL_REDIRECT = False
STATIC_ROOT = tempfile.mkdtemp(prefix="idclass-static-")  # WhiteNoise wants it to exist
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

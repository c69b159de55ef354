"""Production settings with the few changes a test run needs."""
import os
import tempfile

# One folder for the run's uploads, feature cache and static files, removed when the run ends.
_RUN_DIR = tempfile.TemporaryDirectory(prefix="idclass-tests-")

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault("IDCLASS_MEDIA_ROOT", os.path.join(_RUN_DIR.name, "media"))
os.environ.setdefault("IDCLASS_FEATURE_CACHE", os.path.join(_RUN_DIR.name, "features"))
# Tests upload hundreds of images from one address, and may run on a nearly full disk; the tests of the
# rate limit and the free-space guard turn them on. Set here, so servers the tests start inherit it.
os.environ.setdefault("IDCLASS_UPLOAD_RATES", "off")
os.environ.setdefault("IDCLASS_REFUSED_UPLOAD_RATES", "off")
os.environ.setdefault("IDCLASS_MIN_FREE_MB", "0")

from idclass.settings import *  # noqa: E402,F401,F403

SECURE_SSL_REDIRECT = False
STATIC_ROOT = os.path.join(_RUN_DIR.name, "static")
os.makedirs(STATIC_ROOT, exist_ok=True)  # WhiteNoise wants it to exist
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, as served: its WAL and busy timeout apply. Django's default in-memory test database shares
    # one cache between connections, whose table locks fail at once where the file's writers wait their turn.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_RUN_DIR.name, "test.sqlite3")}  # noqa: F405

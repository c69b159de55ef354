"""Django settings for idclass. Every setting that varies between installs is read
from the environment here, and only here.

A `.env` file in the project root (KEY=value lines; scripts/setup.sh creates one with a
generated SECRET_KEY) fills in what the environment does not set, so `manage.py` commands
run as they are; a variable set in the environment always wins."""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)


TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A typo (DEBUG=ture) stops the start with a message, never reads as False."""
    value = os.environ.get(name, "").strip().lower()
    if value in TRUE | FALSE:
        return value in TRUE
    if value:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: write true or false (or "
                                   f"{', '.join(sorted(TRUE - {'true'}))} / {', '.join(sorted(FALSE - {'false'}))}).")
    return default


def env_number(name: str, default: float, kind: type = int, minimum: float = 0) -> float:
    """An integer (or with kind=float, a number) of at least ``minimum``; anything else names itself."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: write {'an integer' if kind is int else 'a number'} "
                                   f"of at least {minimum}.")
    return number


def env_path(name: str, default: Path) -> Path:
    """Absolute, but links are left as links: a server follows `models/current` to each new model."""
    value = os.environ.get(name)
    return Path(os.path.abspath(Path(value).expanduser())) if value else default


PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rates(name: str, default: str) -> list[tuple[int, int]]:
    """'10/m,100/d' as [(10, 60), (100, 86400)]: at most 10 a minute and 100 a day; 'off': none."""
    value = os.environ.get(name, default).strip().lower()
    if value in {"", "off", "0", "none"}:
        return []
    try:
        rates = [(int(count), PERIOD_SECONDS[period.strip()])
                 for count, period in (rate.split("/") for rate in value.split(","))]
    except (ValueError, KeyError):
        rates = []
    if not rates or any(count < 1 for count, _ in rates):
        raise ImproperlyConfigured(f"{name}={value!r}: write rates as COUNT/PERIOD, comma-separated, with "
                                   f"PERIOD one of {', '.join(PERIOD_SECONDS)} (e.g. 10/m,100/d), or off.")
    return rates


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off: run scripts/setup.sh, which "
                                   "writes a generated one to .env, or set it in the environment.")
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
# Only needed when a proxy in front changes the host, e.g. "https://idclass.example.org".
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "idclass",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers locked-out logins
]

ROOT_URLCONF = "idclass.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "idclass.wsgi.application"

if not os.environ.get("DATABASE_URL"):
    (BASE_DIR / "var").mkdir(mode=0o700, exist_ok=True)  # the embedded default: SQLite in var/, private
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent uploads wait their turn instead of failing: WAL lets readers go on while one
    # process writes, IMMEDIATE takes the write lock up front, and a writer waits up to 20 s for it.
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE",
                                       "timeout": 20}

# Admin logins: Django's password rules for new passwords, and django-axes locks a client out
# of a username after IDCLASS_LOGIN_FAILURE_LIMIT wrong passwords, for IDCLASS_LOGIN_COOLOFF_MINUTES.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in ("UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                 "NumericPasswordValidator")
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_number("IDCLASS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_number("IDCLASS_LOGIN_COOLOFF_MINUTES", 60, float))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# addresses are personal data: keep failed attempts (until the cool-off), not every login
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "idclass.clients.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Uploaded identity documents are personal data: they live outside any served
# directory and are only ever streamed by a staff-only view. There is no MEDIA_URL.
IDCLASS_MEDIA_ROOT = env_path("IDCLASS_MEDIA_ROOT", BASE_DIR / "var" / "media")
IDCLASS_MODEL_DIR = env_path("IDCLASS_MODEL_DIR", BASE_DIR / "models" / "current")
# how often (seconds) a server process looks for a new model there; 0: before every request
IDCLASS_MODEL_CHECK_SECONDS = env_number("IDCLASS_MODEL_CHECK_SECONDS", 2.0, float)
IDCLASS_BACKBONE = os.environ.get("IDCLASS_BACKBONE", "large")
IDCLASS_BACKBONE_WEIGHTS = os.environ.get("IDCLASS_BACKBONE_WEIGHTS", "")
IDCLASS_UPLOAD_MAX_BYTES = env_number("IDCLASS_UPLOAD_MAX_BYTES", 15 * 1024 * 1024, minimum=1)
IDCLASS_STORE_IMAGES = env_bool("IDCLASS_STORE_IMAGES", True)
IDCLASS_RETENTION_DAYS = env_number("IDCLASS_RETENTION_DAYS", 30)
# Uploads per client (a signed-in user, else an address): beyond these, 429 with Retry-After.
IDCLASS_UPLOAD_RATES = env_rates("IDCLASS_UPLOAD_RATES", "10/m,200/d")
# Uploads refused for what was sent (not an image, damaged, ...) count apart, against this higher ceiling.
IDCLASS_REFUSED_UPLOAD_RATES = env_rates("IDCLASS_REFUSED_UPLOAD_RATES", "30/m,1000/d")
# Uploads are refused (507) rather than written when the media volume would have less free than this.
IDCLASS_MIN_FREE_BYTES = int(env_number("IDCLASS_MIN_FREE_MB", 200.0, float) * 1024 * 1024)
# On: only signed-in users may upload (accounts are made in the admin); off: anyone may.
IDCLASS_REQUIRE_LOGIN = env_bool("IDCLASS_REQUIRE_LOGIN", False)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "upload"
IDCLASS_FEATURE_CACHE = env_path("IDCLASS_FEATURE_CACHE", BASE_DIR / ".cache" / "features")
# threads per process for one forward pass: OMP_NUM_THREADS when set (several server processes
# on one machine should share the cores out), else all cores but at most 4, where more stop paying.
IDCLASS_INFERENCE_THREADS = env_number("OMP_NUM_THREADS", 0) or max(1, min(4, os.cpu_count() or 1))

# Let uploads up to the limit through Django's own guard; the view answers 413 above it.
DATA_UPLOAD_MAX_MEMORY_SIZE = IDCLASS_UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Behind a proxy (deploy/nginx.conf): the header it sets to "https" for requests that came over TLS,
# e.g. X-Forwarded-Proto; unset, no header is trusted, since any client could send one.
if header := os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + header.upper().replace("-", "_"), "https")
# The header that proxy sets to the client's address (e.g. X-Real-IP), for the upload rate limit and the
# login lockout; unset, the connection's address (REMOTE_ADDR) is the client.
IDCLASS_CLIENT_IP_HEADER = os.environ.get("IDCLASS_CLIENT_IP_HEADER", "").strip()

# Only this site's own scripts run; styles may be inline (the band colour); nothing may frame the pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"], "object-src": ["'none'"], "base-uri": ["'none'"],
        "form-action": ["'self'"], "frame-ancestors": ["'none'"],
    }
}

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes from load balancers and Docker come without TLS
    SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Cookies go over HTTPS only where the site is served over HTTPS: a browser drops a Secure cookie
    # that comes over plain HTTP from any host but localhost, and with it the login and the upload's result.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", SECURE_SSL_REDIRECT)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

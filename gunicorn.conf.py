"""gunicorn settings; `gunicorn` in the repository root reads this file."""
import os

wsgi_app = "idclass.wsgi:application"

# This machine only: the app is meant to run behind the proxy in deploy/nginx.conf, which buffers whole
# requests, so a slow client ties up nginx, not one of the few gunicorn threads. GUNICORN_BIND (addresses
# separated by spaces or commas, e.g. "0.0.0.0:8000") listens elsewhere; $PORT, which gunicorn's own default
# would open on every interface, is not read.
bind = os.environ.get("GUNICORN_BIND", "").replace(",", " ").split() or ["127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
timeout = 60

# Each worker loads its own model when it starts (idclass/wsgi.py): ONNX Runtime's sessions and thread pools
# are not for sharing across a fork.
preload_app = False

accesslog = "-"
errorlog = "-"

"""gunicorn settings; `gunicorn` in the repository root reads this file."""
import os

wsgi_app = "idclass.wsgi:application"

# Like gunicorn's own default: every interface on $PORT when it is set (the Docker image sets it),
# else this machine only.
bind = [f"0.0.0.0:{os.environ['PORT']}"] if os.environ.get("PORT") else ["127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
timeout = 60

# Each worker loads its own model when it starts (idclass/wsgi.py): torch is not safe to fork after loading.
preload_app = False

accesslog = "-"
errorlog = "-"

"""WSGI entry point, used by gunicorn (see gunicorn.conf.py) and runserver."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idclass.settings")
application = get_wsgi_application()

# Load the model as this process starts serving, not on its first request; serving.py swaps in newer ones.
from idclass.serving import load_predictor  # noqa: E402

load_predictor()

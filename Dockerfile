# idclass web app, CPU only: it serves a trained model's ONNX graphs on ONNX Runtime, without torch
# (requirements-serve.txt). Train models with the full install (requirements.txt) elsewhere.
# Build: docker build -t idclass .
# Run it behind the shipped proxy (deploy/nginx.conf) with compose.yaml: SECURE_SSL_REDIRECT=false docker compose up -d
# gunicorn listens on the container's own 127.0.0.1:8000 (GUNICORN_BIND says otherwise), where compose.yaml's nginx,
# in the same network namespace, reaches it: slow clients are held by nginx, not by gunicorn's threads.
# /models/current is the trained model (IDCLASS_MODEL_DIR); /data holds the database and the uploads.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite:////data/db.sqlite3 \
    IDCLASS_MEDIA_ROOT=/data/media \
    IDCLASS_MODEL_DIR=/models/current

WORKDIR /app
COPY requirements-serve.txt .
RUN pip install -r requirements-serve.txt

COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --no-create-home idclass \
    && mkdir -p /data /models \
    && chown idclass /data /models

USER idclass
VOLUME ["/data", "/models"]
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn"]

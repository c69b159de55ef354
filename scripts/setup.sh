#!/usr/bin/env bash
# Create .venv (once) and install the pinned requirements into it; create .env (once) with a
# generated SECRET_KEY, which settings read, so manage.py commands run without exporting one.
# Usage: scripts/setup.sh [requirements file]   (default requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${1:-requirements.txt}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(cat "$requirements" requirements*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing $requirements into .venv (the first time takes a few minutes: PyTorch is large)..."
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi
if [ ! -f .env ]; then
  (umask 077 && printf 'SECRET_KEY=%s\n' "$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env)
  echo "Created .env with a generated SECRET_KEY (private to this install; other settings can go there too)."
fi

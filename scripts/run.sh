#!/usr/bin/env bash
# Set up, migrate, make sure a trained model exists (building the demo data set
# and training on it when none does), then serve on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DEBUG=${DEBUG:-1}
py=.venv/bin/python
$py manage.py migrate --noinput
model_dir=${IDCLASS_MODEL_DIR:-models/current}
if [ ! -f "$model_dir/metadata.json" ]; then
  # A small first model, in about three minutes on two cores: 20 photos a type in 160 views each.
  # docs/measurements.md gives its accuracy and that of the larger demo set.
  echo "No trained model in $model_dir: building a small demo data set and training on it (a few minutes)."
  [ -f data/demo-train/labels.json ] || $py manage.py make_demo_dataset data/demo-train --per-class 20 --seed 1
  out_args=()
  [ -n "${IDCLASS_MODEL_DIR:-}" ] && out_args=(--out "$IDCLASS_MODEL_DIR")
  $py manage.py train_classifier data/demo-train --views-per-class 160 "${out_args[@]}"
fi
exec $py manage.py runserver 127.0.0.1:8000 --noreload

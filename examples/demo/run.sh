#!/usr/bin/env bash
# The demo pipeline: prepare -> train -> evaluate, each step recorded by lineage.
# Run it from anywhere: ./examples/demo/run.sh   (uses the default store unless
# LINEAGE_STORE is set; LINEAGE=/path/to/lineage picks another binary).
set -euo pipefail
lineage=${LINEAGE:-}
case "$lineage" in */*) lineage=$(cd "$(dirname "$lineage")" && pwd)/$(basename "$lineage") ;; esac
cd "$(dirname "$0")"
if [ -z "$lineage" ]; then
  if command -v lineage >/dev/null 2>&1; then
    lineage=lineage
  elif [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/lineage" ]; then
    lineage="${CARGO_HOME:-$HOME/.cargo}/bin/lineage"
  else
    echo "run.sh: lineage is not installed: run 'cargo install --locked --path .' first" >&2
    exit 1
  fi
fi
python=${PYTHON:-python3}

"$lineage" run -i data/raw/houses.csv -o data/prepared \
  -- "$python" prepare.py data/raw/houses.csv data/prepared
"$lineage" run -i data/prepared -c configs/train.yaml -o out/model.json \
  -- "$python" train.py data/prepared configs/train.yaml out/model.json
# No declarations: lineage observes what the evaluation reads and writes.
"$lineage" run -- "$python" evaluate.py out/model.json data/prepared out/metrics.json

echo
echo "== lineage list"
"$lineage" list --limit 3
echo
echo "== lineage show (the evaluation run)"
"$lineage" show
echo
echo "== lineage show out/model.json (its ancestry, found by its bytes)"
"$lineage" show out/model.json
echo
echo "== lineage rerun (the training run): does it reproduce bit for bit?"
train_run=$("$lineage" list --json --limit 2 | "$python" -c 'import json, sys; print(json.load(sys.stdin)[1]["id"])')
"$lineage" rerun "$train_run"

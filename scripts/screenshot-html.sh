#!/usr/bin/env bash
# Regenerate docs/images/show-html.png: the demo pipeline recorded in a scratch store, the
# ancestry of its metrics file as `lineage show --format html`, photographed by headless
# Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r examples/demo "$tmp/demo"
printf "out/\ndata/prepared/\n" > "$tmp/demo/.gitignore"
(cd "$tmp/demo" && git init -q && git add -A && git -c user.name=demo -c user.email=demo@example.com commit -qm demo)
bin="$PWD/target/release/lineage"
LINEAGE="$bin" LINEAGE_STORE="$tmp/store" "$tmp/demo/run.sh" > /dev/null
(cd "$tmp/demo" && LINEAGE_STORE="$tmp/store" "$bin" show out/metrics.json --format html > "$tmp/lineage.html")
# Open the details of the training run (the third newest: rerun, evaluate, train, prepare).
train=$(LINEAGE_STORE="$tmp/store" "$bin" list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[2]["id"])')
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
  --window-size=1600,640 --screenshot="$PWD/docs/images/show-html.png" "file://$tmp/lineage.html#select=$train" 2>/dev/null
echo "wrote docs/images/show-html.png"

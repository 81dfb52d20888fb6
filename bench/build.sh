#!/usr/bin/env bash
# Build time and binary size, with and without the team-store feature: a clean release build
# of each into a fresh target directory (dependencies already downloaded), one after the
# other, then the size of the binary and of the binary stripped.
#
#   bench/build.sh [TARGET_DIR]      (default: a temporary directory, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-$(mktemp -d)}
[ $# -ge 1 ] || trap 'rm -rf "$root"' EXIT
cargo fetch --locked --quiet
printf '%-12s %10s %14s %14s\n' features "build (s)" "binary (MB)" "stripped (MB)"
for variant in default lean; do
  flags=()
  [ "$variant" = lean ] && flags=(--no-default-features)
  dir="$root/$variant"
  rm -rf "$dir"
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$dir" cargo build --release --locked --quiet "${flags[@]}"
  end=$(date +%s.%N)
  bin="$dir/release/lineage"
  strip -o "$dir/stripped" "$bin"
  printf '%-12s %10.0f %14.1f %14.1f\n' "$variant" "$(echo "$end - $start" | bc)" \
    "$(echo "$(stat -c %s "$bin") / 1000000" | bc -l)" \
    "$(echo "$(stat -c %s "$dir/stripped") / 1000000" | bc -l)"
done

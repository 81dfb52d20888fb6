#!/bin/sh
# Regenerate completions/ and docs/man/ from the command line's definitions.
# tests/cli/docs.rs fails when the committed copies differ from what the binary prints.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/lineage
$bin completions bash > completions/lineage.bash
$bin completions zsh > completions/_lineage
$bin completions fish > completions/lineage.fish
$bin completions elvish > completions/lineage.elv
$bin completions powershell > completions/_lineage.ps1
$bin man > docs/man/lineage.1
for sub in run show export diff rerun doctor list completions man; do
    $bin man "$sub" > "docs/man/lineage-$sub.1"
done

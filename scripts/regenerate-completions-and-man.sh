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
# Every subcommand `lineage --help` lists (two-space indent; help excluded).
for sub in $($bin --help | awk '/^Commands:/ {f = 1; next} /^$/ {f = 0} f && /^  [a-z]/ {print $1}' | grep -vx help); do
    $bin man "$sub" > "docs/man/lineage-$sub.1"
done

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lineage_global_optspecs
    string join \n store= color= h/help V/version
end

function __fish_lineage_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lineage_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lineage_using_subcommand
    set -l cmd (__fish_lineage_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lineage -n "__fish_lineage_needs_command" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_needs_command" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_needs_command" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_needs_command" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "run" -d 'Run a command and record its lineage'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "show" -d 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "diff" -d 'Compare two runs (or the runs that produced two files)'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "rerun" -d 'Run a recorded job again and say whether it reproduced bit for bit'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "doctor" -d 'Check the store (integrity, permissions, stale runs); repair a damaged one'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "export" -d 'Export a run or a file\'s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "list" -d 'List recorded runs, newest first'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "log" -d 'List recorded runs, newest first'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "completions" -d 'Print a shell completion script (also committed under completions/)'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "man" -d 'Print a man page, in roff (also committed under docs/man/)'
complete -c lineage -n "__fish_lineage_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lineage -n "__fish_lineage_using_subcommand run" -s i -l input -d 'A file or directory the job reads; hashed before launch (repeatable)' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand run" -s o -l output -d 'A file or directory the job writes; hashed after it exits (repeatable)' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand run" -s c -l config -d 'A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand run" -s p -l param -d 'An explicit parameter, KEY=VALUE (repeatable; overrides config values)' -r
complete -c lineage -n "__fish_lineage_using_subcommand run" -l env-allow -d 'Keep variables whose names match GLOB in clear, even when the name looks secret' -r
complete -c lineage -n "__fish_lineage_using_subcommand run" -l env-deny -d 'Redact variables whose names match GLOB' -r
complete -c lineage -n "__fish_lineage_using_subcommand run" -l sample-interval -d 'Seconds between GPU memory samples while the job runs' -r
complete -c lineage -n "__fish_lineage_using_subcommand run" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand run" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand run" -l sha256 -d 'Also record the SHA-256 of each input, config and output (a directory: in-toto\'s dirHash), for `lineage export` after the files are gone; reads each once more'
complete -c lineage -n "__fish_lineage_using_subcommand run" -s q -l quiet -d 'Silence lineage\'s start line, summary and progress bar (warnings still print)'
complete -c lineage -n "__fish_lineage_using_subcommand run" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand run" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand show" -l depth -d 'Follow at most N levels of runs' -r
complete -c lineage -n "__fish_lineage_using_subcommand show" -l format -d 'Output format: a tree (or a summary for a run), json, dot (Graphviz), mermaid, or html (one self-contained page drawing the graph: `> lineage.html`, open it in a browser)' -r -f -a "tree\t''
json\t''
dot\t''
mermaid\t''
html\t''"
complete -c lineage -n "__fish_lineage_using_subcommand show" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand show" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand show" -l run -d 'Take TARGET as a run id prefix'
complete -c lineage -n "__fish_lineage_using_subcommand show" -l path -d 'Take TARGET as a path'
complete -c lineage -n "__fish_lineage_using_subcommand show" -l descendants -d 'Walk downstream: every run that read these bytes, what those runs wrote, and on'
complete -c lineage -n "__fish_lineage_using_subcommand show" -l json -d 'Same as --format json'
complete -c lineage -n "__fish_lineage_using_subcommand show" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand show" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand diff" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand diff" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand diff" -l json -d 'Print one JSON object (see docs/json.md)'
complete -c lineage -n "__fish_lineage_using_subcommand diff" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand diff" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l dry-run -d 'Print the plan and the differences with the record; run nothing'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l worktree -d 'Run the exact recorded code: a temporary git worktree at the recorded commit with the recorded uncommitted changes and untracked files'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l keep-worktree -d 'Keep the worktree afterwards and print where it is'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l upstream -d 'First rerun the ancestors whose outputs this run needs and that are missing or changed'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l force -d 'Rerun even when the code or the inputs differ from the record'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -l json -d 'Print the verdict as one JSON object on stdout (after the command\'s own output)'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -s q -l quiet -d 'Silence lineage\'s plan and verdict lines (warnings still print)'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand rerun" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -l repair -d 'Back up a damaged store file, then rebuild the store from every row still readable'
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -l secrets -d 'Preview what the redaction policy would store for the current environment and for the command line given after `--` (names only; no value is printed)'
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand export" -l format -d 'The format to write' -r -f -a "prov-json\t'W3C PROV-JSON'
in-toto\t'in-toto Statement v1 with a SLSA Provenance v1 predicate'
openlineage\t'OpenLineage RunEvents'"
complete -c lineage -n "__fish_lineage_using_subcommand export" -s o -l output -d 'Write to FILE (replaced whole) instead of stdout' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand export" -l post -d 'Send the OpenLineage events to an HTTP endpoint such as Marquez (POST URL/ENDPOINT; OPENLINEAGE_API_KEY, when set, is sent as a bearer token)' -r
complete -c lineage -n "__fish_lineage_using_subcommand export" -l endpoint -d 'The path under --post\'s URL that receives events' -r
complete -c lineage -n "__fish_lineage_using_subcommand export" -l namespace -d 'The OpenLineage job namespace' -r
complete -c lineage -n "__fish_lineage_using_subcommand export" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand export" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand export" -l no-sha256 -d 'Read no file: use only the sha256 digests the store already has'
complete -c lineage -n "__fish_lineage_using_subcommand export" -l run -d 'Take TARGET as a run id prefix'
complete -c lineage -n "__fish_lineage_using_subcommand export" -l path -d 'Take TARGET as a path'
complete -c lineage -n "__fish_lineage_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lineage -n "__fish_lineage_using_subcommand export" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand list" -s n -l limit -d 'Show at most N runs' -r
complete -c lineage -n "__fish_lineage_using_subcommand list" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand list" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand list" -l json -d 'Print a JSON array (see docs/json.md)'
complete -c lineage -n "__fish_lineage_using_subcommand list" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand list" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand log" -s n -l limit -d 'Show at most N runs' -r
complete -c lineage -n "__fish_lineage_using_subcommand log" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand log" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand log" -l json -d 'Print a JSON array (see docs/json.md)'
complete -c lineage -n "__fish_lineage_using_subcommand log" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand log" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand completions" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand completions" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand completions" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand completions" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand man" -l store -d 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage' -r -F
complete -c lineage -n "__fish_lineage_using_subcommand man" -l color -d 'When to use colour on stdout' -r -f -a "auto\t''
always\t''
never\t''"
complete -c lineage -n "__fish_lineage_using_subcommand man" -s h -l help -d 'Print help'
complete -c lineage -n "__fish_lineage_using_subcommand man" -s V -l version -d 'Print version'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "run" -d 'Run a command and record its lineage'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "show" -d 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "diff" -d 'Compare two runs (or the runs that produced two files)'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "rerun" -d 'Run a recorded job again and say whether it reproduced bit for bit'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "doctor" -d 'Check the store (integrity, permissions, stale runs); repair a damaged one'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "export" -d 'Export a run or a file\'s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "list" -d 'List recorded runs, newest first'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "completions" -d 'Print a shell completion script (also committed under completions/)'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "man" -d 'Print a man page, in roff (also committed under docs/man/)'
complete -c lineage -n "__fish_lineage_using_subcommand help; and not __fish_seen_subcommand_from run show diff rerun doctor export list completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

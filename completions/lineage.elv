
use builtin;
use str;

set edit:completion:arg-completer[lineage] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'lineage'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'lineage'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Run a command and record its lineage'
            cand show 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)'
            cand diff 'Compare two runs (or the runs that produced two files)'
            cand rerun 'Run a recorded job again and say whether it reproduced bit for bit'
            cand doctor 'Check the store (integrity, permissions, stale runs); repair a damaged one'
            cand export 'Export a run or a file''s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage'
            cand list 'List recorded runs, newest first'
            cand log 'List recorded runs, newest first'
            cand completions 'Print a shell completion script (also committed under completions/)'
            cand man 'Print a man page, in roff (also committed under docs/man/)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'lineage;run'= {
            cand -i 'A file or directory the job reads; hashed before launch (repeatable)'
            cand --input 'A file or directory the job reads; hashed before launch (repeatable)'
            cand -o 'A file or directory the job writes; hashed after it exits (repeatable)'
            cand --output 'A file or directory the job writes; hashed after it exits (repeatable)'
            cand -c 'A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters'
            cand --config 'A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters'
            cand -p 'An explicit parameter, KEY=VALUE (repeatable; overrides config values)'
            cand --param 'An explicit parameter, KEY=VALUE (repeatable; overrides config values)'
            cand --env-allow 'Keep variables whose names match GLOB in clear, even when the name looks secret'
            cand --env-deny 'Redact variables whose names match GLOB'
            cand --sample-interval 'Seconds between GPU memory samples while the job runs'
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --sha256 'Also record the SHA-256 of each input, config and output (a directory: in-toto''s dirHash), for `lineage export` after the files are gone; reads each once more'
            cand -q 'Silence lineage''s start line, summary and progress bar (warnings still print)'
            cand --quiet 'Silence lineage''s start line, summary and progress bar (warnings still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;show'= {
            cand --depth 'Follow at most N levels of runs'
            cand --format 'Output format: a tree (or a summary for a run), json, dot (Graphviz), mermaid, or html (one self-contained page drawing the graph: `> lineage.html`, open it in a browser)'
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --run 'Take TARGET as a run id prefix'
            cand --path 'Take TARGET as a path'
            cand --descendants 'Walk downstream: every run that read these bytes, what those runs wrote, and on'
            cand --json 'Same as --format json'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;diff'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --json 'Print one JSON object (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;rerun'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --dry-run 'Print the plan and the differences with the record; run nothing'
            cand --worktree 'Run the exact recorded code: a temporary git worktree at the recorded commit with the recorded uncommitted changes and untracked files'
            cand --keep-worktree 'Keep the worktree afterwards and print where it is'
            cand --upstream 'First rerun the ancestors whose outputs this run needs and that are missing or changed'
            cand --force 'Rerun even when the code or the inputs differ from the record'
            cand --json 'Print the verdict as one JSON object on stdout (after the command''s own output)'
            cand -q 'Silence lineage''s plan and verdict lines (warnings still print)'
            cand --quiet 'Silence lineage''s plan and verdict lines (warnings still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;doctor'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --repair 'Back up a damaged store file, then rebuild the store from every row still readable'
            cand --secrets 'Preview what the redaction policy would store for the current environment and for the command line given after `--` (names only; no value is printed)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;export'= {
            cand --format 'The format to write'
            cand -o 'Write to FILE (replaced whole) instead of stdout'
            cand --output 'Write to FILE (replaced whole) instead of stdout'
            cand --post 'Send the OpenLineage events to an HTTP endpoint such as Marquez (POST URL/ENDPOINT; OPENLINEAGE_API_KEY, when set, is sent as a bearer token)'
            cand --endpoint 'The path under --post''s URL that receives events'
            cand --namespace 'The OpenLineage job namespace'
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --no-sha256 'Read no file: use only the sha256 digests the store already has'
            cand --run 'Take TARGET as a run id prefix'
            cand --path 'Take TARGET as a path'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;list'= {
            cand -n 'Show at most N runs'
            cand --limit 'Show at most N runs'
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --json 'Print a JSON array (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;log'= {
            cand -n 'Show at most N runs'
            cand --limit 'Show at most N runs'
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand --json 'Print a JSON array (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;completions'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;man'= {
            cand --store 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage'
            cand --color 'When to use colour on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'lineage;help'= {
            cand run 'Run a command and record its lineage'
            cand show 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)'
            cand diff 'Compare two runs (or the runs that produced two files)'
            cand rerun 'Run a recorded job again and say whether it reproduced bit for bit'
            cand doctor 'Check the store (integrity, permissions, stale runs); repair a damaged one'
            cand export 'Export a run or a file''s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage'
            cand list 'List recorded runs, newest first'
            cand completions 'Print a shell completion script (also committed under completions/)'
            cand man 'Print a man page, in roff (also committed under docs/man/)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'lineage;help;run'= {
        }
        &'lineage;help;show'= {
        }
        &'lineage;help;diff'= {
        }
        &'lineage;help;rerun'= {
        }
        &'lineage;help;doctor'= {
        }
        &'lineage;help;export'= {
        }
        &'lineage;help;list'= {
        }
        &'lineage;help;completions'= {
        }
        &'lineage;help;man'= {
        }
        &'lineage;help;help'= {
        }
    ]
    $completions[$command]
}

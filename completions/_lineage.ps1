
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'lineage' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'lineage'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'lineage' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command and record its lineage')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Compare two runs (or the runs that produced two files)')
            [CompletionResult]::new('rerun', 'rerun', [CompletionResultType]::ParameterValue, 'Run a recorded job again and say whether it reproduced bit for bit')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the store (integrity, permissions, stale runs); repair a damaged one')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Export a run or a file''s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List recorded runs, newest first')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'List recorded runs, newest first')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (also committed under completions/)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page, in roff (also committed under docs/man/)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'lineage;run' {
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'A file or directory the job reads; hashed before launch (repeatable)')
            [CompletionResult]::new('--input', '--input', [CompletionResultType]::ParameterName, 'A file or directory the job reads; hashed before launch (repeatable)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'A file or directory the job writes; hashed after it exits (repeatable)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'A file or directory the job writes; hashed after it exits (repeatable)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'An explicit parameter, KEY=VALUE (repeatable; overrides config values)')
            [CompletionResult]::new('--param', '--param', [CompletionResultType]::ParameterName, 'An explicit parameter, KEY=VALUE (repeatable; overrides config values)')
            [CompletionResult]::new('--env-allow', '--env-allow', [CompletionResultType]::ParameterName, 'Keep variables whose names match GLOB in clear, even when the name looks secret')
            [CompletionResult]::new('--env-deny', '--env-deny', [CompletionResultType]::ParameterName, 'Redact variables whose names match GLOB')
            [CompletionResult]::new('--sample-interval', '--sample-interval', [CompletionResultType]::ParameterName, 'Seconds between GPU memory samples while the job runs')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--sha256', '--sha256', [CompletionResultType]::ParameterName, 'Also record the SHA-256 of each input, config and output (a directory: in-toto''s dirHash), for `lineage export` after the files are gone; reads each once more')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Silence lineage''s start line, summary and progress bar (warnings still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Silence lineage''s start line, summary and progress bar (warnings still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;show' {
            [CompletionResult]::new('--depth', '--depth', [CompletionResultType]::ParameterName, 'Follow at most N levels of runs')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format: a tree (or a summary for a run), json, dot (Graphviz), mermaid, or html (one self-contained page drawing the graph: `> lineage.html`, open it in a browser)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--run', '--run', [CompletionResultType]::ParameterName, 'Take TARGET as a run id prefix')
            [CompletionResult]::new('--path', '--path', [CompletionResultType]::ParameterName, 'Take TARGET as a path')
            [CompletionResult]::new('--descendants', '--descendants', [CompletionResultType]::ParameterName, 'Walk downstream: every run that read these bytes, what those runs wrote, and on')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Same as --format json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;diff' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;rerun' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan and the differences with the record; run nothing')
            [CompletionResult]::new('--worktree', '--worktree', [CompletionResultType]::ParameterName, 'Run the exact recorded code: a temporary git worktree at the recorded commit with the recorded uncommitted changes and untracked files')
            [CompletionResult]::new('--keep-worktree', '--keep-worktree', [CompletionResultType]::ParameterName, 'Keep the worktree afterwards and print where it is')
            [CompletionResult]::new('--upstream', '--upstream', [CompletionResultType]::ParameterName, 'First rerun the ancestors whose outputs this run needs and that are missing or changed')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Rerun even when the code or the inputs differ from the record')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the verdict as one JSON object on stdout (after the command''s own output)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Silence lineage''s plan and verdict lines (warnings still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Silence lineage''s plan and verdict lines (warnings still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;doctor' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--repair', '--repair', [CompletionResultType]::ParameterName, 'Back up a damaged store file, then rebuild the store from every row still readable')
            [CompletionResult]::new('--secrets', '--secrets', [CompletionResultType]::ParameterName, 'Preview what the redaction policy would store for the current environment and for the command line given after `--` (names only; no value is printed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;export' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'The format to write')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to FILE (replaced whole) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write to FILE (replaced whole) instead of stdout')
            [CompletionResult]::new('--post', '--post', [CompletionResultType]::ParameterName, 'Send the OpenLineage events to an HTTP endpoint such as Marquez (POST URL/ENDPOINT; OPENLINEAGE_API_KEY, when set, is sent as a bearer token)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'The path under --post''s URL that receives events')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The OpenLineage job namespace')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--no-sha256', '--no-sha256', [CompletionResultType]::ParameterName, 'Read no file: use only the sha256 digests the store already has')
            [CompletionResult]::new('--run', '--run', [CompletionResultType]::ParameterName, 'Take TARGET as a run id prefix')
            [CompletionResult]::new('--path', '--path', [CompletionResultType]::ParameterName, 'Take TARGET as a path')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;list' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show at most N runs')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most N runs')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON array (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;log' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show at most N runs')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most N runs')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON array (see docs/json.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;completions' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;man' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'lineage;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command and record its lineage')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET)')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Compare two runs (or the runs that produced two files)')
            [CompletionResult]::new('rerun', 'rerun', [CompletionResultType]::ParameterValue, 'Run a recorded job again and say whether it reproduced bit for bit')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the store (integrity, permissions, stale runs); repair a damaged one')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Export a run or a file''s ancestry as PROV-JSON, in-toto/SLSA or OpenLineage')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List recorded runs, newest first')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (also committed under completions/)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page, in roff (also committed under docs/man/)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'lineage;help;run' {
            break
        }
        'lineage;help;show' {
            break
        }
        'lineage;help;diff' {
            break
        }
        'lineage;help;rerun' {
            break
        }
        'lineage;help;doctor' {
            break
        }
        'lineage;help;export' {
            break
        }
        'lineage;help;list' {
            break
        }
        'lineage;help;completions' {
            break
        }
        'lineage;help;man' {
            break
        }
        'lineage;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}

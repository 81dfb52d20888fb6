//! Every clap type of the command line. No logic lives here: `commands/` resolves these
//! into validated plans before anything runs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCompleter;

use crate::location::StoreArg;
use crate::ui::ColorChoice;

/// Record the lineage of any machine-learning job.
///
/// Prefix a command with `lineage run` to record its code, configuration, environment
/// (secrets redacted), hardware and the BLAKE3 content hashes of its inputs and outputs.
#[derive(Debug, Parser)]
#[command(name = "lineage", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The store: a directory (SQLite `lineage.db` inside), or a team store's
    /// postgres://USER@HOST[:PORT]/DATABASE URL (this machine works in a replica of it; the
    /// password from PGPASSWORD or ~/.pgpass, as one on the command line shows in `ps`).
    /// Defaults to `store` in lineage.toml or ~/.config/lineage/config.toml, then
    /// $XDG_DATA_HOME/lineage.
    #[arg(
        long,
        global = true,
        env = "LINEAGE_STORE",
        value_name = "DIR|URL",
        value_parser = clap::builder::OsStringValueParser::new().map(StoreArg::from_os),
        hide_env_values = true
    )]
    pub store: Option<StoreArg>,

    /// When to use colour on stdout.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command and record its lineage.
    Run(RunArgs),
    /// Show a run, or the ancestry of a file by its bytes (the most recent run without TARGET).
    Show(ShowArgs),
    /// Compare two runs (or the runs that produced two files).
    Diff(DiffArgs),
    /// Run a recorded job again and say whether it reproduced bit for bit.
    Rerun(RerunArgs),
    /// Say which recorded outputs are out of date, and why (an input, a parameter, the code
    /// or the packages changed since the run that made them; an output modified or gone).
    Status(StatusArgs),
    /// Check who recorded each run of an ancestry, and that nothing changed since.
    Verify(VerifyArgs),
    /// Check the store (integrity, permissions, stale runs); repair a damaged one.
    Doctor(DoctorArgs),
    /// Export a run or a file's ancestry as PROV-JSON, in-toto/SLSA or OpenLineage.
    Export(ExportArgs),
    /// Carry runs between stores as a file: `bundle export > runs.lineage`, `bundle import`.
    Bundle(BundleArgs),
    /// Send this store's runs to a team store (PostgreSQL).
    Push(SyncArgs),
    /// Fetch a team store's new runs into this store.
    Pull(SyncArgs),
    /// Set up and look after a team store: migrate its schema, forget runs that cannot be
    /// delivered.
    Team(TeamArgs),
    /// List recorded runs, newest first; find them by params, metrics, command, status, time
    /// or the files they wrote and read.
    #[command(visible_alias = "log")]
    List(ListArgs),
    /// Name a run (`lineage tag RUN best`, then `lineage show best`), move or delete a name,
    /// or list the tags.
    Tag(TagArgs),
    /// Add a note to a run (secrets redacted): `show` prints it, exports and bundles carry it.
    Note(NoteArgs),
    /// Compare runs side by side: a row a run, a column a param or metric that differs.
    Compare(CompareArgs),
    /// Print a shell completion script that completes run ids too (copies under completions/).
    Completions(CompletionsArgs),
    /// Print a man page, in roff (also committed under docs/man/).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`lineage-run(1)`); the main page without it.
    pub command: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Install, for example: \
lineage completions bash > ~/.local/share/bash-completion/completions/lineage; \
lineage completions zsh > ~/.zfunc/_lineage; \
lineage completions fish > ~/.config/fish/completions/lineage.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: the command's own exit code; 128+N when signal N killed it; \
125 when lineage fails before launch; 126 when the command is not executable; 127 when it is not found; \
5 with --strict when the job succeeded but read or wrote files nobody declared.\n\n\
lineage also observes the files the job opens and writes, declared or not, and records the data it \
read and the files it wrote (docs/recording.md, \"Observed I/O\"); --no-observe records only what is declared."
)]
pub struct RunArgs {
    /// A file or directory the job reads; hashed before launch (repeatable).
    #[arg(short = 'i', long = "input", value_name = "PATH")]
    pub inputs: Vec<PathBuf>,

    /// A file or directory the job writes; hashed after it exits (repeatable).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub outputs: Vec<PathBuf>,

    /// A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,

    /// A metrics file (JSON, YAML or TOML) the job writes: read after it, its numbers
    /// recorded as metrics (`eval.roc_auc`), and the file recorded as an output (repeatable).
    #[arg(short = 'm', long = "metrics", value_name = "FILE")]
    pub metrics: Vec<PathBuf>,

    /// An explicit parameter, KEY=VALUE (repeatable; overrides config values).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// Keep variables whose names match GLOB in clear, even when the name looks secret.
    #[arg(long = "env-allow", value_name = "GLOB")]
    pub env_allow: Vec<String>,

    /// Redact variables whose names match GLOB.
    #[arg(long = "env-deny", value_name = "GLOB")]
    pub env_deny: Vec<String>,

    /// Seconds between samples of the job's memory (all its processes) and GPUs while it runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub sample_interval: f64,

    /// Also record the SHA-256 of each input, config and output (a directory: in-toto's
    /// dirHash), for `lineage export` after the files are gone; reads each once more.
    #[arg(long)]
    pub sha256: bool,

    /// Hash every input before the command starts. By default the command starts once the
    /// inputs' stats are taken, and bytes not already in the stat cache are hashed while it
    /// runs (a file it changes first is then recorded without a hash).
    #[arg(long)]
    pub hash_before_launch: bool,

    /// Do not observe the files the job opens: record only what is declared (`[run] observe
    /// = false` in lineage.toml does the same).
    #[arg(long)]
    pub no_observe: bool,

    /// Once the job has ended, fail (exit 5) if it read or wrote files nobody declared with
    /// -i, -c or -o, or could not be observed; the run is recorded either way. Also refuse to
    /// launch (exit 125) when the store has no room to record the run, where lineage would
    /// otherwise run the job and record it afterwards.
    #[arg(long, conflicts_with = "no_observe")]
    pub strict: bool,

    /// Silence lineage's start line, summary and progress bar (warnings still print).
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run and its arguments, as given: options before it are lineage's,
    /// everything from the command on is the job's (`--` before it works too).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "A TARGET that is an existing path is identified by its bytes: lineage hashes it \
and finds the runs that produced exactly those bytes, wherever they were written. A TARGET that is \
both a path and a run id prefix is taken as a path; --run and --path force the choice. \
--packages, --patch, --env and --untracked print what the store keeps of a run, as bytes (control \
characters escaped when stdout is a terminal).",
    group(
        clap::ArgGroup::new("kept")
            .multiple(false)
            .conflicts_with_all(["format", "json", "descendants", "depth", "all", "path"])
    )
)]
pub struct ShowArgs {
    /// A file or directory, a `blake3:` hash, or a run id prefix; the most recent run when omitted.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub target: Option<OsString>,

    /// Take TARGET as a run id prefix.
    #[arg(long, conflicts_with = "path")]
    pub run: bool,

    /// Take TARGET as a path.
    #[arg(long)]
    pub path: bool,

    /// Walk downstream: every run that read these bytes, what those runs wrote, and on.
    #[arg(long)]
    pub descendants: bool,

    /// Follow at most N levels of runs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: Option<u32>,

    /// Walk through failed and interrupted runs too: by default only runs that succeeded
    /// count as producers (and readers) of what they wrote.
    #[arg(long)]
    pub all: bool,

    /// Output format: a tree (or a summary for a run), json, dot (Graphviz), mermaid, or html
    /// (one self-contained page drawing the graph: `> lineage.html`, open it in a browser).
    #[arg(long, value_enum)]
    pub format: Option<ShowFormat>,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Print the run's Python package list as stored (`name==version`, one a line).
    #[arg(long, group = "kept")]
    pub packages: bool,

    /// Print the run's uncommitted changes as stored: the patch on its commit (the copy with
    /// secrets redacted, where it held any).
    #[arg(long, group = "kept")]
    pub patch: bool,

    /// Print the run's recorded environment, `NAME=value` a line (secrets redacted).
    #[arg(long, group = "kept")]
    pub env: bool,

    /// Print an untracked file the run recorded, by its path in the repository, as stored.
    #[arg(long, value_name = "FILE", group = "kept")]
    pub untracked: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Tree,
    Json,
    Dot,
    Mermaid,
    Html,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every output reproduced bit for bit; 100 when the command \
succeeded but outputs differ; the command's own code when it failed; 125 when the rerun was refused \
(now differs from the record: --force) or could not start."
)]
pub struct RerunArgs {
    /// The run to reproduce: a run id or any unique prefix of one (or a tag).
    #[arg(
        add = ArgValueCompleter::new(crate::complete::run_ids),
        required_unless_present = "stale"
    )]
    pub run: Option<String>,

    /// Rerun what is stale under PATHs (the current directory when none), makers before the
    /// runs that read what they made, skipping what is current (`lineage status` says which):
    /// make-like, without a pipeline file. Each runs with the code, configs and inputs there
    /// now, recorded as a new run of its original. Bytes at its outputs that no recorded
    /// run wrote (edited by hand) are not overwritten without --force.
    /// A PATH after another option (`--stale --json out/`) counts too.
    #[arg(long, value_name = "PATH", num_args = 0.., conflicts_with_all = ["worktree", "upstream"])]
    pub stale: Option<Vec<PathBuf>>,

    /// Print the plan (every upstream step first, with --upstream) and what differs from the
    /// record, and what would refuse it; run nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Run the exact recorded code: a temporary git worktree at the recorded commit with the
    /// recorded uncommitted changes and untracked files (one for the whole rerun: upstream
    /// steps run in it too, each with its own recorded code).
    #[arg(long)]
    pub worktree: bool,

    /// Keep the worktree afterwards and print where it is.
    #[arg(long, requires = "worktree")]
    pub keep_worktree: bool,

    /// First rerun the ancestors whose outputs this run needs and that are missing or changed.
    #[arg(long)]
    pub upstream: bool,

    /// Rerun even when the code or the inputs differ from the record (with --stale: even
    /// over outputs edited by hand).
    #[arg(long)]
    pub force: bool,

    /// Print the verdict as one JSON object on stdout (the command's own stdout goes to
    /// stderr); with --dry-run, the plan. With --stale, every rerun's verdict (`reruns`), or with
    /// --dry-run the stale stages in the order they would run (docs/json.md).
    #[arg(long)]
    pub json: bool,

    /// Hash every input before the command starts (see `lineage run --hash-before-launch`).
    #[arg(long)]
    pub hash_before_launch: bool,

    /// Silence lineage's plan and verdict lines (warnings still print).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every output under the paths is up to date; 6 when something \
is stale (`lineage rerun --stale` reruns it); 1 on an error."
)]
pub struct StatusArgs {
    /// Directories or files whose recorded outputs to check (the current directory when none).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print a JSON object (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when the store is healthy (or was repaired), 1 when problems remain."
)]
pub struct DoctorArgs {
    /// Fix the store's modes with chmod and replace an unusable secret.key; back up a damaged
    /// store file, then rebuild the store from every row still readable (not while a run is
    /// being recorded).
    #[arg(long)]
    pub repair: bool,

    /// Preview what the redaction policy would store for the current environment and for
    /// the command line given after `--` (names only; no value is printed).
    #[arg(long)]
    pub secrets: bool,

    /// With --secrets: the command line to preview.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "PROV-JSON prints one document; in-toto prints one Statement per run and \
OpenLineage one event per line (JSON Lines). Digest sets carry blake3 and, for consumers that need \
it, sha256 (a directory: in-toto's dirHash), computed now from files whose bytes still match the \
record, or recorded earlier by `lineage run --sha256`. See docs/exports.md."
)]
pub struct ExportArgs {
    /// A run id prefix, or a file, directory or `blake3:` hash (then its whole ancestry); the
    /// most recent run when omitted.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub target: Option<OsString>,

    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,

    /// Write to FILE (replaced whole) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Send the OpenLineage events to an HTTP endpoint such as Marquez (POST URL/ENDPOINT;
    /// OPENLINEAGE_API_KEY, when set, is sent as a bearer token).
    #[arg(long, value_name = "URL")]
    pub post: Option<String>,

    /// The path under --post's URL that receives events.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "api/v1/lineage",
        requires = "post"
    )]
    pub endpoint: String,

    /// The OpenLineage job namespace.
    #[arg(long, env = "OPENLINEAGE_NAMESPACE", default_value = "lineage")]
    pub namespace: String,

    /// Read no file: use only the sha256 digests the store already has.
    #[arg(long)]
    pub no_sha256: bool,

    /// Wrap each in-toto statement in a DSSE envelope signed with your key (see `lineage
    /// verify --key`).
    #[arg(long)]
    pub sign: bool,

    /// Take TARGET as a run id prefix.
    #[arg(long, conflicts_with = "path")]
    pub run: bool,

    /// Take TARGET as a path.
    #[arg(long)]
    pub path: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The team store, postgres://USER@HOST[:PORT]/DATABASE (password from PGPASSWORD or
    /// ~/.pgpass); default: LINEAGE_TEAM_STORE, then `team_store` in the settings files.
    #[arg(value_name = "URL", env = "LINEAGE_TEAM_STORE", hide_env_values = true)]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    #[command(subcommand)]
    pub command: TeamCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create or upgrade the team store's schema and apply lineage's grants to the roles
    /// lineage_writer and lineage_reader (run as the database's owner; again after creating
    /// those roles or upgrading lineage).
    Migrate(SyncArgs),
    /// Stop trying to deliver runs to the team store (a reader's runs, runs it refused):
    /// they stay in this store.
    Forget(ForgetArgs),
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Runs to forget (ids or unique prefixes); all runs waiting for delivery with --all.
    #[arg(value_name = "RUN", required_unless_present = "all")]
    pub runs: Vec<String>,
    /// Forget every run waiting for delivery.
    #[arg(long, conflicts_with = "runs")]
    pub all: bool,
    /// The team store (default: the store in use, then LINEAGE_TEAM_STORE, then `team_store`
    /// in the settings files).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write runs, their artifacts, manifests and blobs to a bundle file (never secrets or
    /// the store's key); every finished run without TARGET.
    Export(BundleExportArgs),
    /// Add a bundle's runs to this store; importing twice changes nothing.
    Import(BundleImportArgs),
}

#[derive(Debug, Args)]
pub struct BundleExportArgs {
    /// Run id prefixes, or files, directories or `blake3:` hashes (their whole ancestry).
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub targets: Vec<OsString>,

    /// Only runs started on or after DATE (`2026-11-01`, or an RFC 3339 time).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Write to FILE instead of stdout (`-`: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BundleImportArgs {
    /// The bundle file (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// W3C PROV-JSON.
    ProvJson,
    /// in-toto Statement v1 with a SLSA Provenance v1 predicate.
    InToto,
    /// OpenLineage RunEvents.
    Openlineage,
}

#[derive(Debug, Args)]
#[command(
    after_help = "With --ancestry, A and B are files, directories or `blake3:` hashes: the runs \
that produced them are compared, then the runs that produced their inputs whose bytes differ \
(matched by path, then by position), level by level, up to the levels that explain the \
difference: a command, code, params or configs that differ, sources that differ, or the same \
recipe on the same inputs making different bytes."
)]
pub struct DiffArgs {
    /// A run (its short id or an id prefix), or a path meaning the latest run that produced
    /// its bytes.
    #[arg(value_name = "A", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub a: OsString,

    /// The run (or path) to compare A with.
    #[arg(value_name = "B", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub b: OsString,

    /// Compare the ancestries of two files level by level and say which upstream change
    /// explains the difference.
    #[arg(long)]
    pub ancestry: bool,

    /// Print one JSON object (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "TARGET's whole ancestry is checked: for a path or a hash, every run that led to \
those bytes; for a run, the run and every run that led to what it read. Each run is signed when \
it finishes by the key of the user who recorded it ($LINEAGE_SIGNING_KEY, which must exist, or \
$XDG_CONFIG_HOME/lineage/signing.key, made on first use). A run is verified \
when its signature checks and its key is yours or listed under [trust] keys in lineage.toml. Exit \
status: 0 when every run is verified; 3 when some run is unsigned or signed by a key not trusted \
(and none is tampered); 4 when some run's record or bytes changed after it was signed."
)]
pub struct VerifyArgs {
    /// A file or directory, a `blake3:` hash, or a run id prefix; the most recent run when omitted.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::run_or_path))]
    pub target: Option<OsString>,

    /// Take TARGET as a run id prefix.
    #[arg(long, conflicts_with = "path")]
    pub run: bool,

    /// Take TARGET as a path.
    #[arg(long)]
    pub path: bool,

    /// Print your public key (for others' `[trust] keys`) and exit.
    #[arg(long, conflicts_with_all = ["target", "run", "path", "json"])]
    pub key: bool,

    /// Print one JSON object (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "On a terminal, the newest 20 runs are shown and a line on stderr says how \
many there are: -n N or --all for more. Into a pipe or a file, every run is printed (as many as \
-n asks). Filters combine: a run is listed when it matches all of them (docs/guide.md, \
\"Finding runs\")."
)]
pub struct ListArgs {
    /// Print a JSON array (see docs/json.md).
    #[arg(long)]
    pub json: bool,

    /// Show at most N runs.
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,

    /// Show every run, on a terminal too.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,

    /// Extra columns: params and metrics, comma-separated, globs allowed
    /// (`metrics.*,params.train.*`); with --json, `params` and `metrics` objects.
    #[arg(long, value_name = "LIST")]
    pub columns: Option<String>,

    #[command(flatten)]
    pub find: FindArgs,
}

/// The filters `list` and `compare` share: a run is selected when it matches all of them.
#[derive(Debug, Args, Default)]
pub struct FindArgs {
    /// Only runs whose param or metric compares with a value: `train.lr=0.01`,
    /// `'metrics.acc>=0.9'` (= != < <= > >=; repeatable, all must hold). Numbers compare as
    /// numbers, anything else (or "quoted") as text; a bare KEY is the param, else the metric.
    #[arg(long = "where", value_name = "EXPR")]
    pub conditions: Vec<String>,

    /// Only runs whose command line contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub command: Option<String>,

    /// Only runs with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,

    /// Only runs started at or after WHEN: a date (`2026-11-01`), an RFC 3339 time, or an
    /// age (`30m`, `12h`, `2d`, `1w`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only runs started at or before WHEN (a date: up to its end), as for --since.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,

    /// Only runs that wrote the bytes PATH holds now (a file or a directory, or a `blake3:`
    /// hash), as `show` finds them: directly, or inside a directory they wrote.
    #[arg(long, value_name = "PATH")]
    pub produced: Option<OsString>,

    /// Only runs that read the bytes PATH holds now (as an input or a config, or inside a
    /// directory they read).
    #[arg(long, value_name = "PATH")]
    pub read: Option<OsString>,

    /// Only the run tag NAME names (`lineage tag`).
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
}

/// A run's status, as `--status` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Succeeded,
    Failed,
    Interrupted,
    Running,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Columns are named params.KEY and metrics.KEY; --sort, --columns and \
--where take those names (a bare KEY: the param, else the metric). A run without a value shows \
`-` (empty in CSV, null in JSON). In CSV, a text that a spreadsheet would take for a formula \
(starting with = + - @) is prefixed with '."
)]
pub struct CompareArgs {
    /// The runs to compare (ids or unique prefixes); without any, the runs the filters
    /// select, newest first.
    #[arg(value_name = "RUN", add = ArgValueCompleter::new(crate::complete::run_ids))]
    pub runs: Vec<String>,

    /// Show params and metrics that are the same in every run too.
    #[arg(long)]
    pub all: bool,

    /// Order the rows by a param or metric (`metrics.acc`), ascending; runs without it last.
    #[arg(long, value_name = "KEY")]
    pub sort: Option<String>,

    /// With --sort: descending.
    #[arg(long, requires = "sort")]
    pub desc: bool,

    /// Only these params and metrics as columns, comma-separated, globs allowed
    /// (`metrics.*,params.train.*`), whether they differ or not.
    #[arg(long, value_name = "LIST")]
    pub columns: Option<String>,

    /// Compare at most N runs (the newest the filters select).
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,

    /// Print one JSON object (see docs/json.md); same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    #[command(flatten)]
    pub find: FindArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Table,
    Csv,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "A tag names one run, and is accepted wherever a run id is (show, diff, rerun, \
export, verify, bundle export). Names are ASCII letters, digits and . _ - / + @, starting with a \
letter or digit; a name made only of hex digits and hyphens (`cafe`) is refused, as it would read \
as a run id. Without arguments: the tags, by name. Tags are recorded, never rewritten: --force and \
--delete add to the run's history."
)]
pub struct TagArgs {
    /// The run to tag: an id, a prefix, or a tag.
    #[arg(value_name = "RUN", requires = "name", add = ArgValueCompleter::new(crate::complete::run_ids))]
    pub run: Option<String>,

    /// The name to give it.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Move NAME to RUN when it names another run.
    #[arg(short, long, requires = "name")]
    pub force: bool,

    /// Take the tag NAME off its run.
    #[arg(short, long, value_name = "NAME", conflicts_with_all = ["run", "name", "force", "json"])]
    pub delete: Option<String>,

    /// List the tags as a JSON array (see docs/json.md).
    #[arg(long, conflicts_with = "run")]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The note is stored with its secrets redacted (as params and the environment \
are), with your login name and time, signed by your key; notes are added, never edited."
)]
pub struct NoteArgs {
    /// The run: an id, a prefix, or a tag.
    #[arg(value_name = "RUN", add = ArgValueCompleter::new(crate::complete::run_ids))]
    pub run: String,

    /// The note (several words are joined with spaces).
    #[arg(value_name = "TEXT", required = true, num_args = 1.., allow_hyphen_values = true)]
    pub text: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_raw_after_double_dash() {
        let cli = Cli::try_parse_from([
            "lineage", "run", "-i", "data", "--", "python", "train.py", "--lr", "0.1",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.inputs, [PathBuf::from("data")]);
        assert_eq!(args.command, ["python", "train.py", "--lr", "0.1"]);
    }

    #[test]
    fn run_takes_everything_from_the_command_on_without_double_dash() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Run(args) = cli.command else {
                panic!("expected run")
            };
            args
        };
        let args = parse(&[
            "lineage", "run", "-q", "-o", "x", "python", "train.py", "--lr", "1", "-o", "y", "--",
            "z",
        ]);
        assert!(args.quiet);
        assert_eq!(args.outputs, [PathBuf::from("x")]);
        assert_eq!(
            args.command,
            ["python", "train.py", "--lr", "1", "-o", "y", "--", "z"]
        );
        let args = parse(&["lineage", "run", "-o", "x", "--", "cmd", "--lr", "1"]);
        assert_eq!(args.command, ["cmd", "--lr", "1"]);
        let args = parse(&["lineage", "run", "--", "-weird", "--", "x"]);
        assert_eq!(args.command, ["-weird", "--", "x"]);
    }

    #[test]
    fn run_without_a_command_or_with_an_unknown_option_is_a_usage_error() {
        for args in [
            &["lineage", "run", "-i", "data"][..],
            &["lineage", "run", "--no-such-option", "python"][..],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }
}

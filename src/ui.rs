//! The one way out: everything lineage prints passes through here.
//!
//! - Data (tables, trees, JSON, exports, scripts) goes to stdout through [`data`]. A closed
//!   stdout (`lineage list | head`) is quiet: what is left to print is dropped and the command
//!   ends with its own exit code (0 for `list`, the verdict's for `rerun`, 1 for `doctor` on a
//!   damaged store), as docs/exit-codes.md promises; any other write error is one error line
//!   and exit 1.
//! - Messages go to stderr, one line each, prefixed `lineage:` ([`info`], [`warn`],
//!   [`error()`], [`hint`]). A stderr that cannot be written is ignored: a message that cannot
//!   be shown must never stop a command, let alone the job it wraps.
//! - Colour is decided once ([`use_color`]); every message on stderr has its control
//!   characters made visible with [`escape`], since messages name paths, arguments and server
//!   replies that a job or a server chose. Data on stdout that is text for people (tables,
//!   trees, diffs, the rerun plan) carries the same strings escaped the same way by whoever
//!   renders it (`model::text`); JSON is escaped by serde.
//!
//! Lower layers (capture, hash, store) never print: they return values and notes, and the
//! commands hand them to this module. The one exception is `timing`, a diagnostic that
//! writes to stderr only when `LINEAGE_TIMINGS` is set.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{self, Error, code};

/// When to use colour on stdout (`--color`). (Its variants carry no doc comments: clap would
/// print them as help for each value, and change `--help`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    // When stdout is a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

/// Whether to colour stdout: `--color`, then NO_COLOR, then whether stdout is a terminal.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Whether stdout's reader has gone (a broken pipe): then nothing more is written to it.
/// Process-wide, as file descriptor 1 is.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout is a terminal (`list` shows a screenful there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Whether stdout's reader has gone: a command printing much can stop early.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Write data to stdout. A closed pipe is remembered and what follows dropped (the command
/// goes on to its own exit code); another write error is reported and ends the process with
/// exit 1.
pub fn data(s: &str) {
    data_bytes(s.as_bytes());
}

/// [`data`] for bytes (a bundle, a completion script).
pub fn data_bytes(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// What stdout is (a file, a pipe, a terminal), to be looked at or made private, never
/// written through: a copy of its descriptor, or an error when it is closed.
pub fn stdout_fd() -> std::io::Result<std::os::fd::OwnedFd> {
    std::os::fd::AsFd::as_fd(&std::io::stdout()).try_clone_to_owned()
}

/// Copy a reader to stdout, with [`data`]'s handling of a closed pipe.
pub fn data_from(reader: &mut dyn std::io::Read) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match std::io::copy(reader, &mut out).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            stdout_failed(&e);
            Ok(())
        }
        other => other.map(drop),
    }
}

/// A write to stdout failed: a broken pipe is remembered; anything else ends the process.
fn stdout_failed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        return;
    }
    error_line(format_args!("writing to stdout: {e}"));
    std::process::exit(i32::from(code::FAILURE));
}

/// Text clap made (a usage error) on stderr as it is, but for its control characters: it
/// quotes what was typed, which may come from anywhere.
pub fn usage(text: &str) {
    let mut err = std::io::stderr().lock();
    for line in text.lines() {
        let _ = writeln!(err, "{}", escape(line));
    }
}

/// One line on stderr, prefixed `lineage: `, control characters made visible (a message
/// names paths, arguments and server replies, which a job or a server chose); write errors
/// are ignored.
fn line(kind: &str, msg: impl Display) {
    let msg = msg.to_string();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "lineage: {kind}{}", escape(&msg));
}

/// A copy of lineage's standard error, to be the job's standard output where lineage's own
/// standard output is data (`rerun --json`).
pub fn stderr_for_job() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    std::io::stderr().as_fd().try_clone_to_owned()
}

/// A status line (`lineage: run 01a2… recording`).
pub fn info(msg: impl Display) {
    line("", msg);
}

/// Each line of `text` as a status line.
pub fn info_lines(text: &str) {
    for l in text.lines() {
        info(l);
    }
}

/// A warning: something lineage could not do, that does not stop the command.
pub fn warn(msg: impl Display) {
    line("warning: ", msg);
}

/// An error line, without the hint and store handling of [`error()`].
pub fn error_line(msg: impl Display) {
    line("error: ", msg);
}

/// Advice under an error, when there is an obvious fix.
pub fn hint(msg: impl Display) {
    line("hint: ", msg);
}

/// Report an error once: the whole chain of causes on one line, then a hint when there is
/// an obvious fix. A damaged store is named (`store` is the store directory in use).
pub fn error(e: &anyhow::Error, store: Option<&Path>) {
    if error::is_corruption(e) {
        let db = store.map_or_else(
            || crate::store::DB_FILE.to_string(),
            |d| d.join(crate::store::DB_FILE).display().to_string(),
        );
        error_line(format_args!("the store {db} is damaged: {e:#}"));
        hint(
            "the store file is damaged: `lineage doctor` checks it, `lineage doctor --repair` \
             keeps a backup and rebuilds what can still be read",
        );
        return;
    }
    error_line(format_args!("{e:#}"));
    if let Some(h) = e.downcast_ref::<Error>().and_then(Error::hint) {
        hint(h);
    }
}

/// Text from outside lineage (a path, an argument, a param, a note, an imported row) made
/// inert for a terminal: control characters (newlines, tabs, ESC, DEL, C1) and bidirectional
/// overrides shown as `\n`, `\t`, `\x1b` or `\u{..}`, so that what is printed cannot move
/// the cursor, change colours or the title, or forge a line of output. The same escaping
/// `output/` applies to the data it renders for a terminal.
pub use crate::model::text::escape;

//! `lineage completions SHELL` and `lineage man`: generated from the clap definitions, so
//! they cannot drift from the command line (tests compare them with the committed copies in
//! completions/ and docs/lineage.1).

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// The shell's registration script: at each TAB it runs `COMPLETE=<shell> lineage -- WORDS`,
/// which answers from the command line's definition and, for run ids, from the store.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&name)
        .with_context(|| format!("no dynamic completion for {name}"))?;
    let mut out = Vec::new();
    completer
        .write_registration("COMPLETE", "lineage", "lineage", "lineage", &mut out)
        .context("writing the completion script")?;
    crate::ui::data(&String::from_utf8_lossy(&out));
    Ok(())
}

pub fn man(command: Option<&str>) -> Result<()> {
    let cli = Cli::command();
    let page = match command {
        None => cli,
        Some(name) => {
            let sub = cli
                .find_subcommand(name)
                .with_context(|| format!("no subcommand {name:?}: see `lineage --help`"))?
                .clone();
            let name = sub.get_name().to_string();
            sub.display_name(format!("lineage-{name}"))
                .bin_name(format!("lineage {name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .context("rendering the man page")?;
    crate::ui::data(&String::from_utf8_lossy(&out));
    Ok(())
}

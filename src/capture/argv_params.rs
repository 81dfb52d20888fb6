//! The parameters a job was given on its own command line: Hydra/OmegaConf overrides
//! (`optimizer.lr=0.01`, `+key=v`, `++key=v`, `~key`) and argparse/click options (`--lr 0.01`,
//! `--lr=0.01`, a bare `--verbose`), read from the arguments after the script or program, and
//! merged with the configs' params and `-p` (the command line wins over a config, `-p` over
//! both). Pure: no file is looked at, nothing is printed. docs/recording.md says what is read.
//!
//! Conservative by design: only the arguments the job itself receives are read (after
//! `python train.py`, `python -m pkg.mod`, a launcher's `train.py`, or a program run directly),
//! never an interpreter's or launcher's own options, never `NAME=value` before the program
//! (`env LR=1 python ...`), nothing after `--`, and nothing when what runs cannot be told
//! (`python -c`, `bash -c`, a container or remote command).

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::param_value;
use crate::model::{Param, ParamOverride};

/// The source recorded for a param read from the job's command line.
pub const SOURCE: &str = "argv";

/// The source recorded for a `-p KEY=VALUE` param.
pub const CLI: &str = "cli";

/// One parameter the command line gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Given {
    /// `key=value`, `+key=value`, `++key=value`, `--key value`, `--key=value`, `--flag`.
    Set {
        /// The key: as written for an override, `--some-key` as `some_key`.
        key: String,
        /// The value, parsed like `-p`'s (`true` for a bare flag).
        value: Value,
    },
    /// `~key` (or `~key=value`): Hydra's deletion of a config's key.
    Remove {
        /// The key removed (with every key under it).
        key: String,
    },
}

/// The parameters of a command line (each argument as text, secrets already redacted the way
/// the stored argv has them, so a param never holds more than the stored command does).
pub fn parse(argv: &[String]) -> Vec<Given> {
    let Some(start) = job_args(argv) else {
        return Vec::new();
    };
    let args = &argv[start.min(argv.len())..];
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            break;
        }
        if let Some(name) = arg.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n, Some(param_value(v))),
                None => (name, None),
            };
            let Some(key) = option_key(name) else {
                continue;
            };
            let value = value.unwrap_or_else(|| match args.get(i) {
                Some(next) if is_value(next) => {
                    i += 1;
                    param_value(next)
                }
                _ => Value::Bool(true),
            });
            out.push(Given::Set { key, value });
        } else if let Some(rest) = arg.strip_prefix('~') {
            let key = rest.split_once('=').map_or(rest, |(k, _)| k);
            if is_key(key) {
                out.push(Given::Remove {
                    key: key.to_string(),
                });
            }
        } else if let Some((key, value)) = override_of(arg) {
            out.push(Given::Set {
                key: key.to_string(),
                value: param_value(unquote(value)),
            });
        }
    }
    out
}

/// `key=value`, `+key=value`, `++key=value` with a key shaped like a config path.
fn override_of(arg: &str) -> Option<(&str, &str)> {
    let bare = arg
        .strip_prefix("++")
        .or_else(|| arg.strip_prefix('+'))
        .unwrap_or(arg);
    let (key, value) = bare.split_once('=')?;
    is_key(key).then_some((key, value))
}

/// `--some-key` -> `some_key`, `--trainer.max-epochs` -> `trainer.max_epochs`: the name
/// argparse and click give the value (and LightningCLI's dotted paths); None for what is
/// no option name (`--`, `--1`, `--a/b`).
fn option_key(name: &str) -> Option<String> {
    let key = name.replace('-', "_");
    is_key(&key).then_some(key)
}

/// `[A-Za-z_][A-Za-z0-9_.-]*` with no empty segment: `optimizer.lr`, `model.layers.0`,
/// `batch-size`; not `hydra/launcher`, `a..b`, `db@pkg`, `1x`.
fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && key.split('.').all(|s| !s.is_empty())
}

/// Whether the argument after `--key` is its value: not another option (`--x`, `-v`), not
/// a Hydra override of its own (`--multirun lr=0.1`: Hydra's flags come before its
/// overrides), but a negative number is a value (`--lr -0.01`).
fn is_value(next: &str) -> bool {
    if next == "--" {
        return false;
    }
    if next.starts_with('-') {
        return next.parse::<f64>().is_ok();
    }
    override_of(next).is_none() && !(next.starts_with('~') && is_key(&next[1..]))
}

/// Hydra's quoted value: `'a b'` or `"a b"` -> `a b`.
fn unquote(v: &str) -> &str {
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Where the job's own arguments begin: after the script an interpreter or a launcher runs,
/// after the module of `python -m`, or after a program run directly; None when that cannot be
/// told (then nothing is read).
pub fn job_args(argv: &[String]) -> Option<usize> {
    let (program, _) = argv.split_first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    let from = |skip: usize| -> Option<usize> {
        let rest: Vec<String> = argv.get(skip..)?.to_vec();
        job_args(&rest).map(|n| n + skip)
    };
    match kind(name) {
        Kind::Python => python(argv, 1),
        Kind::Interpreter(eval) => interpreter(argv, eval),
        Kind::Launcher => launched(argv, 1),
        Kind::Env => {
            // `env [-i] [-u NAME] [NAME=value...] program ...`
            let mut i = 1;
            while let Some(a) = argv.get(i) {
                if a == "-u" || a == "--unset" || a == "-C" || a == "--chdir" {
                    i += 2;
                } else if a.starts_with('-') || (a.contains('=') && !a.starts_with('=')) {
                    i += 1;
                } else {
                    break;
                }
            }
            from(i)
        }
        Kind::Runner => match argv.get(1).map(String::as_str) {
            // `uv run prog`, `poetry run prog`: the runner's own options are not known here.
            Some("run") if argv.get(2).is_some_and(|a| !a.starts_with('-')) => from(2),
            _ => None,
        },
        Kind::Prefix => match argv.get(1) {
            Some(a) if !a.starts_with('-') => from(1),
            _ => None,
        },
        Kind::Opaque => None,
        Kind::Direct => Some(1),
    }
}

/// What a program is, by its name.
enum Kind {
    /// `python`, `python3.11`, `pypy3`.
    Python,
    /// An interpreter whose first argument that is no option is its script; the options that
    /// give it code to run instead (then nothing is read).
    Interpreter(&'static [&'static str]),
    /// Starts a script on many processes: its own options take values nobody can tell apart
    /// from the script's name, so only a `*.py` script is recognized.
    Launcher,
    /// `env`: variables, then the program.
    Env,
    /// `uv run`, `poetry run`, `pipenv run`, `pdm run`: the program follows.
    Runner,
    /// `nohup`, `exec`: the program follows.
    Prefix,
    /// A program whose arguments are another command elsewhere (a container, a host, root):
    /// nothing read.
    Opaque,
    /// Anything else: its arguments are the job's.
    Direct,
}

fn kind(name: &str) -> Kind {
    let versioned = |base: &str| {
        name.strip_prefix(base).is_some_and(|v| {
            v.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == 't' || c == 'm')
        })
    };
    if versioned("python") || versioned("pypy") {
        return Kind::Python;
    }
    match name {
        "bash" | "sh" | "zsh" | "dash" | "ksh" => Kind::Interpreter(&["-c"]),
        "Rscript" => Kind::Interpreter(&["-e"]),
        "julia" => Kind::Interpreter(&["-e", "-E", "--eval", "--print", "-L", "--load"]),
        "node" | "deno" | "bun" => Kind::Interpreter(&["-e", "--eval", "-p", "--print"]),
        "ruby" | "perl" => Kind::Interpreter(&["-e", "-E"]),
        "torchrun" | "deepspeed" | "accelerate" | "srun" | "mpirun" | "mpiexec" | "horovodrun"
        | "composer" => Kind::Launcher,
        "env" => Kind::Env,
        "uv" | "poetry" | "pipenv" | "pdm" | "hatch" | "rye" => Kind::Runner,
        "nohup" | "exec" => Kind::Prefix,
        "docker" | "podman" | "singularity" | "apptainer" | "sudo" | "doas" | "ssh" | "kubectl"
        | "sbatch" | "xargs" | "parallel" | "conda" | "mamba" | "micromamba" | "nix-shell" => {
            Kind::Opaque
        }
        _ => Kind::Direct,
    }
}

/// The modules that launch a script the way `torchrun` does (`python -m torch.distributed.run`).
const LAUNCHER_MODULES: &[&str] = &[
    "torch.distributed.run",
    "torch.distributed.launch",
    "accelerate.commands.launch",
    "deepspeed.launcher.runner",
];

/// `python [options] script args`, `python [options] -m module args`: where args begin.
fn python(argv: &[String], mut i: usize) -> Option<usize> {
    while let Some(a) = argv.get(i) {
        i += 1;
        if a == "-" || a == "--" {
            return None;
        }
        if let Some(long) = a.strip_prefix("--") {
            if long == "check-hash-based-pycs" {
                i += 1;
            }
            continue;
        }
        let Some(cluster) = a.strip_prefix('-') else {
            // The script.
            return Some(i);
        };
        // `-u`, `-OO`, `-Wignore`, `-X dev`, `-um module`, `-mmodule`.
        for (at, c) in cluster.char_indices() {
            let attached = &cluster[at + c.len_utf8()..];
            match c {
                'c' => return None,
                'm' => {
                    let module = if attached.is_empty() {
                        i += 1;
                        argv.get(i - 1)?.as_str()
                    } else {
                        attached
                    };
                    return if LAUNCHER_MODULES.contains(&module) {
                        launched(argv, i)
                    } else {
                        Some(i)
                    };
                }
                'W' | 'X' => {
                    if attached.is_empty() {
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

/// A shell or another interpreter: its first argument that is no option is the script.
fn interpreter(argv: &[String], eval: &[&str]) -> Option<usize> {
    // The shells' options that take the next argument.
    const VALUED: &[&str] = &["-o", "-O", "+o", "+O", "--rcfile", "--init-file"];
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        i += 1;
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if eval.contains(&name)
            || (eval.contains(&"-c")
                && a.starts_with('-')
                && !a.starts_with("--")
                && a.contains('c'))
        {
            return None;
        }
        if a == "--" || a == "-" {
            return None;
        }
        if VALUED.contains(&a.as_str()) {
            i += 1;
        } else if !a.starts_with('-') && !a.starts_with('+') {
            return Some(i);
        }
    }
    None
}

/// A launcher's arguments from `i` on (`torchrun --nproc-per-node 2 train.py ...`,
/// `accelerate launch --config_file c.yaml train.py ...`): after its `*.py` script; None when
/// there is none (`torchrun -m pkg.train` is read after the module only when `-m` is followed
/// by it at once).
fn launched(argv: &[String], mut i: usize) -> Option<usize> {
    while let Some(a) = argv.get(i) {
        i += 1;
        if a == "--" {
            continue;
        }
        if a == "-m" || a == "--module" {
            return argv.get(i).filter(|m| !m.starts_with('-')).map(|_| i + 1);
        }
        if !a.starts_with('-') && a.ends_with(".py") {
            return Some(i);
        }
    }
    None
}

/// The params as recorded: the configs', then the command line's over them (source `argv`),
/// then `-p`'s over both (source `cli`); and for each value the command line or `-p` replaced,
/// that value as stored (a config's, or the command line's under a `-p`), in the order
/// replaced. `~key` records `key` (and every key under it) as null, source `argv`, when a
/// config set it; otherwise it records nothing. A value replaced by the same value is not an
/// override. `stored` redacts params as the store keeps them (all of them at once, so a value
/// is judged with its siblings); the replaced values are shown as it returns them.
pub fn merge(
    configs: BTreeMap<String, Param>,
    argv: Vec<Given>,
    cli: &[(String, Value)],
    stored: impl FnOnce(Vec<Param>) -> Vec<Param>,
) -> (BTreeMap<String, Param>, Vec<ParamOverride>) {
    let mut params = configs;
    // (key, source) of each value replaced, in order.
    let mut replaced: Vec<(String, String)> = Vec::new();
    // Every param set and then replaced (by another value or the same), so that with the
    // params that stayed they are every param given, each judged with all its siblings.
    // Kept this way, not as a copy made first: a config of a million values was copied
    // and redacted whole once more for every run, though the command line replaced none.
    let mut gone: Vec<Param> = Vec::new();
    let mut set = |params: &mut BTreeMap<String, Param>, p: Param| {
        if let Some(old) = params.get(&p.key)
            && old.value != p.value
            && old.source != p.source
        {
            replaced.push((old.key.clone(), old.source.clone()));
        }
        gone.extend(params.insert(p.key.clone(), p));
    };
    for given in argv {
        match given {
            Given::Set { key, value } => {
                let p = Param {
                    key,
                    value,
                    source: SOURCE.to_string(),
                };
                set(&mut params, p);
            }
            Given::Remove { key } => {
                let under = format!("{key}.");
                let removed: Vec<String> = params
                    .iter()
                    .filter(|(k, p)| (**k == key || k.starts_with(&under)) && p.source != SOURCE)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in removed {
                    set(
                        &mut params,
                        Param {
                            key,
                            value: Value::Null,
                            source: SOURCE.to_string(),
                        },
                    );
                }
            }
        }
    }
    for (key, value) in cli {
        let p = Param {
            key: key.clone(),
            value: value.clone(),
            source: CLI.to_string(),
        };
        set(&mut params, p);
    }
    if replaced.is_empty() {
        return (params, Vec::new());
    }
    // In the order given: the configs' (by source), then the command line's, then `-p`'s; a
    // key set twice by one source is looked up first as it was first set.
    let rank = |p: &Param| match p.source.as_str() {
        SOURCE => 1,
        CLI => 2,
        _ => 0,
    };
    let mut every: Vec<Param> = gone;
    every.extend(params.values().cloned());
    every.sort_by_key(rank);
    let stored = stored(every);
    let overrides = replaced
        .into_iter()
        .filter_map(|(key, source)| {
            stored
                .iter()
                .rev()
                .find(|p| p.key == key && p.source == source)
                .map(|p| ParamOverride {
                    key,
                    source,
                    value: p.value.clone(),
                })
        })
        .collect();
    (params, overrides)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    fn read(line: &str) -> Vec<(String, Value)> {
        parse(&args(line))
            .into_iter()
            .map(|g| match g {
                Given::Set { key, value } => (key, value),
                Given::Remove { key } => (format!("~{key}"), Value::Null),
            })
            .collect()
    }

    fn set(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn hydra_overrides_after_the_script_are_params() {
        assert_eq!(
            read("python train.py optimizer.lr=0.01 model.depth=4 +extra.tag=v1 ++seed=3"),
            set(&[
                ("optimizer.lr", json!(0.01)),
                ("model.depth", json!(4)),
                ("extra.tag", json!("v1")),
                ("seed", json!(3)),
            ])
        );
        assert_eq!(
            read("python train.py ~model.dropout ~aug=flip"),
            set(&[("~model.dropout", Value::Null), ("~aug", Value::Null)])
        );
        // Values parse like -p: numbers, booleans, null; anything else is a string.
        assert_eq!(
            read("python train.py a=true b=null c=1e-3 d=abc e= f='x-y' g=\"q\" h=[1,2]"),
            set(&[
                ("a", json!(true)),
                ("b", Value::Null),
                ("c", json!(0.001)),
                ("d", json!("abc")),
                ("e", json!("")),
                ("f", json!("x-y")),
                ("g", json!("q")),
                ("h", json!("[1,2]")),
            ])
        );
        // Hydra's multirun sweep is one string value.
        assert_eq!(
            read("python train.py --multirun lr=0.1,0.2"),
            set(&[("multirun", json!(true)), ("lr", json!("0.1,0.2"))])
        );
    }

    #[test]
    fn argparse_and_click_options_after_the_script_are_params() {
        assert_eq!(
            read("python train.py --lr 0.01 --epochs=3 --batch-size 32 --verbose --name run1"),
            set(&[
                ("lr", json!(0.01)),
                ("epochs", json!(3)),
                ("batch_size", json!(32)),
                ("verbose", json!(true)),
                ("name", json!("run1")),
            ])
        );
        // A bare flag last, or before another option; a negative number is a value.
        assert_eq!(
            read("python train.py --lr -0.5 --fp16 --amp -v --dry-run"),
            set(&[
                ("lr", json!(-0.5)),
                ("fp16", json!(true)),
                ("amp", json!(true)),
                ("dry_run", json!(true)),
            ])
        );
        // LightningCLI's dotted options keep their dots.
        assert_eq!(
            read("python main.py fit --trainer.max-epochs=10 --model.lr 0.1"),
            set(&[("trainer.max_epochs", json!(10)), ("model.lr", json!(0.1))])
        );
        // A later value of the same option wins (argparse keeps the last).
        assert_eq!(
            read("python t.py --lr 1 --lr 2"),
            set(&[("lr", json!(1)), ("lr", json!(2))])
        );
    }

    #[test]
    fn what_is_no_param_is_left_alone() {
        // Positionals, single-dash options, paths, keys that are no identifier path.
        assert_eq!(
            read(
                "python train.py data/in.csv -n 5 -lr=3 hydra/launcher=joblib db@pkg=x 1x=2 a..b=1 =3 --=4 --9=x"
            ),
            vec![]
        );
        // Nothing after `--`.
        assert_eq!(
            read("python train.py a=1 -- b=2 --c 3"),
            set(&[("a", json!(1))])
        );
        // An option's value is not taken from a Hydra override that follows it.
        assert_eq!(
            read("python t.py --cfg lr=2"),
            set(&[("cfg", json!(true)), ("lr", json!(2))])
        );
        assert_eq!(read("python"), vec![]);
        assert_eq!(read(""), vec![]);
    }

    #[test]
    fn only_the_jobs_own_arguments_are_read() {
        // The interpreter's options are not the job's.
        assert_eq!(
            read("python -u -X dev -W ignore train.py lr=1"),
            set(&[("lr", json!(1))])
        );
        assert_eq!(
            read("python3.11 -OO -Wignore t.py --a 1"),
            set(&[("a", json!(1))])
        );
        assert_eq!(read("/usr/bin/python3 t.py x=1"), set(&[("x", json!(1))]));
        assert_eq!(
            read("python --check-hash-based-pycs always t.py --k v"),
            set(&[("k", json!("v"))])
        );
        // A module: after its name.
        assert_eq!(
            read("python -m pkg.train lr=2 --x=1"),
            set(&[("lr", json!(2)), ("x", json!(1))])
        );
        assert_eq!(read("python -um pkg.train lr=2"), set(&[("lr", json!(2))]));
        assert_eq!(read("python -mpkg.train lr=2"), set(&[("lr", json!(2))]));
        // Code given inline, or read from stdin: nothing can be told.
        assert_eq!(read("python -c print(1) lr=1"), vec![]);
        assert_eq!(read("python - lr=1"), vec![]);
        assert_eq!(read("bash -c train lr=1"), vec![]);
        assert_eq!(read("bash -ec train lr=1"), vec![]);
        assert_eq!(read("node -e x a=1"), vec![]);
        // Shells and other interpreters: after their script.
        assert_eq!(
            read("bash -x -o pipefail run.sh lr=1 --e 2"),
            set(&[("lr", json!(1)), ("e", json!(2))])
        );
        assert_eq!(
            read("Rscript --vanilla fit.R alpha=0.5"),
            set(&[("alpha", json!(0.5))])
        );
        // Launchers: after the script, never their own options.
        assert_eq!(
            read("torchrun --nproc-per-node 2 --rdzv_backend=c10d train.py optimizer.lr=0.01"),
            set(&[("optimizer.lr", json!(0.01))])
        );
        assert_eq!(
            read("python -m torch.distributed.run --nproc_per_node=4 train.py --lr 3"),
            set(&[("lr", json!(3))])
        );
        assert_eq!(
            read("accelerate launch --config_file c.yaml train.py --epochs 2"),
            set(&[("epochs", json!(2))])
        );
        assert_eq!(
            read("srun -n 4 --gres=gpu:4 python train.py lr=1"),
            set(&[("lr", json!(1))])
        );
        assert_eq!(read("torchrun -m pkg.train lr=1"), set(&[("lr", json!(1))]));
        assert_eq!(read("torchrun --nnodes=2 --no-python ./train lr=1"), vec![]);
        // Variables before the program are the environment, never params.
        assert_eq!(
            read("env LR=0.1 CUDA_VISIBLE_DEVICES=0 python train.py lr=2"),
            set(&[("lr", json!(2))])
        );
        assert_eq!(read("env -i A=b ./train --x 1"), set(&[("x", json!(1))]));
        assert_eq!(read("env A=b"), vec![]);
        // Runners: the program follows; their own options are not known.
        assert_eq!(
            read("uv run python train.py lr=1"),
            set(&[("lr", json!(1))])
        );
        assert_eq!(read("poetry run train --lr 2"), set(&[("lr", json!(2))]));
        assert_eq!(read("uv run --with numpy python train.py lr=1"), vec![]);
        assert_eq!(read("nohup python t.py a=1"), set(&[("a", json!(1))]));
        // Another command elsewhere: nothing.
        assert_eq!(read("docker run -e A=b img python t.py lr=1"), vec![]);
        assert_eq!(read("sudo python t.py lr=1"), vec![]);
        // A program run directly: all its arguments.
        assert_eq!(
            read("./train.sh lr=1 --seed 2"),
            set(&[("lr", json!(1)), ("seed", json!(2))])
        );
        assert_eq!(read("make train LR=0.1"), set(&[("LR", json!(0.1))]));
    }

    #[test]
    fn redacted_arguments_stay_redacted() {
        // Parsed from the argv as stored: a redacted value is a redacted param.
        assert_eq!(
            read("python t.py --api-key [REDACTED] password=[REDACTED]"),
            set(&[
                ("api_key", json!("[REDACTED]")),
                ("password", json!("[REDACTED]")),
            ])
        );
    }

    fn param(key: &str, value: Value, source: &str) -> Param {
        Param {
            key: key.into(),
            value,
            source: source.into(),
        }
    }

    fn configs(pairs: &[(&str, Value)]) -> BTreeMap<String, Param> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), param(k, v.clone(), "params.yaml")))
            .collect()
    }

    #[test]
    fn the_command_line_wins_over_a_config_and_p_over_both() {
        let cfg = configs(&[
            ("optimizer.lr", json!(0.001)),
            ("model.depth", json!(2)),
            ("model.dropout", json!(0.1)),
            ("model.norm.eps", json!(1e-5)),
            ("seed", json!(1)),
            ("epochs", json!(3)),
        ]);
        let argv = parse(&args(
            "python train.py optimizer.lr=0.01 model.depth=4 ~model.norm seed=7 epochs=3 ~nothing.here",
        ));
        let cli = [("seed".to_string(), json!(9))];
        let (params, overrides) = merge(cfg, argv, &cli, |all| all);
        let shown: Vec<(&str, &Value, &str)> = params
            .values()
            .map(|p| (p.key.as_str(), &p.value, p.source.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("epochs", &json!(3), "argv"),
                ("model.depth", &json!(4), "argv"),
                ("model.dropout", &json!(0.1), "params.yaml"),
                ("model.norm.eps", &Value::Null, "argv"),
                ("optimizer.lr", &json!(0.01), "argv"),
                ("seed", &json!(9), "cli"),
            ]
        );
        let replaced: Vec<(&str, &str, &Value)> = overrides
            .iter()
            .map(|o| (o.key.as_str(), o.source.as_str(), &o.value))
            .collect();
        assert_eq!(
            replaced,
            [
                ("optimizer.lr", "params.yaml", &json!(0.001)),
                ("model.depth", "params.yaml", &json!(2)),
                ("model.norm.eps", "params.yaml", &json!(1e-5)),
                ("seed", "params.yaml", &json!(1)),
                ("seed", "argv", &json!(7)),
            ]
        );
    }

    #[test]
    fn replaced_values_are_shown_as_stored() {
        let cfg = configs(&[("db.password", json!("hunter2"))]);
        let argv = parse(&args("python t.py db.password=[REDACTED]"));
        let redact = |all: Vec<Param>| {
            all.into_iter()
                .map(|p| Param {
                    value: if p.key.ends_with("password") {
                        json!("[REDACTED]")
                    } else {
                        p.value
                    },
                    ..p
                })
                .collect()
        };
        let (params, overrides) = merge(cfg, argv, &[], redact);
        assert_eq!(params["db.password"].source, "argv");
        assert_eq!(overrides.len(), 1);
        assert_eq!(overrides[0].value, json!("[REDACTED]"));
    }
}

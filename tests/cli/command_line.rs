//! `lineage run CMD ...` without `--`: options before the command are lineage's, everything
//! from the command on is the job's, as `time`, `nohup` and `uv run` take it.

use crate::util::*;

#[test]
fn run_takes_the_command_as_is_without_double_dash() {
    let env = Env::local();
    env.init_repo();
    // The job's own `--lr` and `-o` are the job's, after the command; lineage's `-o` before it.
    let out = env.cmd([
        "run",
        "-q",
        "-o",
        "args.txt",
        "sh",
        "-c",
        "printf '%s\\n' \"$@\" > args.txt",
        "job",
        "--lr",
        "0.01",
        "-o",
        "elsewhere",
        "--",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("args.txt")).expect("written"),
        "--lr\n0.01\n-o\nelsewhere\n--\n"
    );
    let run = env.show(None);
    assert_eq!(
        run["command"],
        serde_json::json!([
            "sh",
            "-c",
            "printf '%s\\n' \"$@\" > args.txt",
            "job",
            "--lr",
            "0.01",
            "-o",
            "elsewhere",
            "--"
        ])
    );
    let outputs: Vec<&str> = run["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["path"].as_str().expect("path"))
        .collect();
    assert_eq!(outputs, ["args.txt"]);
    // `--` before the command still works, and an option lineage does not know, before the
    // command, is still a usage error.
    let out = env.cmd([
        "run",
        "-q",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "echo b > b.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["run", "--no-such-option", "true"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

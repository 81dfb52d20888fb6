//! The pipeline the tests record: five stages of a small ML project in a real git
//! repository, each run through the real `lineage run`:
//!
//! ```text
//! raw/data.csv ─> prepare ─> prepared/ (train.csv, sub/meta.txt) ─> train ─> model.bin
//!      │                       │            cfg.yaml, -p seed=3, API_TOKEN ─┘       │
//!      │                       └── prepared/train.csv ──> evaluate <─────────────────┘ ─> metrics.json
//!      └─> features ─> features.bin ──────────────────────> report <── metrics.json ─> report.txt
//! ```
//! `evaluate` reads `model.bin` and a file inside `prepared/` (a diamond through `prepare`);
//! `report` joins two branches that both start at `raw/data.csv`; `train` runs with a secret
//! in its environment and a config.

use std::time::Duration;

use crate::util::*;

/// The secret `train` has in its environment (as `API_TOKEN`): it must never be stored.
pub const SECRET: &str = "hunter2-very-secret-value";

pub struct Pipeline {
    pub env: Env,
    pub prepare: String,
    pub train: String,
    pub evaluate: String,
    pub features: String,
    pub report: String,
}

impl Pipeline {
    /// Record the pipeline in a new environment.
    pub fn new() -> Pipeline {
        Pipeline::record(Env::new())
    }

    /// Record the pipeline in `env` (a fresh one).
    pub fn record(env: Env) -> Pipeline {
        Pipeline::record_with(env, &[])
    }

    /// Record the pipeline in `env`, with `train_flags` added to the train stage's
    /// `lineage run` (`--sha256`, say).
    pub fn record_with(env: Env, train_flags: &[&str]) -> Pipeline {
        env.init_repo();
        env.write("raw/data.csv", "a,b\n1,2\n3,4\n");
        env.write("cfg.yaml", "lr: 0.1\nepochs: 2\n");
        let prepare = env.record(&[
            "-i",
            "raw/data.csv",
            "-o",
            "prepared",
            "--",
            "sh",
            "-c",
            "mkdir -p prepared/sub && tr , ';' < raw/data.csv > prepared/train.csv \
             && echo meta > prepared/sub/meta.txt",
        ]);
        let train = train(&env, SECRET, "seed=3", train_flags);
        let evaluate = env.record(&[
            "-i",
            "model.bin",
            "-i",
            "prepared/train.csv",
            "-o",
            "metrics.json",
            "--",
            "sh",
            "-c",
            "wc -c < model.bin > metrics.json",
        ]);
        let features = env.record(&[
            "-i",
            "raw/data.csv",
            "-o",
            "features.bin",
            "--",
            "sh",
            "-c",
            "tr 0-9 a-j < raw/data.csv > features.bin",
        ]);
        let report = env.record(&[
            "-i",
            "metrics.json",
            "-i",
            "features.bin",
            "-o",
            "report.txt",
            "--",
            "sh",
            "-c",
            "cat metrics.json features.bin > report.txt",
        ]);
        Pipeline {
            env,
            prepare,
            train,
            evaluate,
            features,
            report,
        }
    }
}

/// Record the train stage in `env` (a pipeline's, prepared): `API_TOKEN=secret`, the param
/// `seed`, and `flags` for `lineage run`. Returns the run's id.
pub fn train(env: &Env, secret: &str, seed: &str, flags: &[&str]) -> String {
    let mut cmd = env.lineage();
    cmd.env("API_TOKEN", secret)
        .args(["run", "-q"])
        .args(flags)
        .args([
            "-i",
            "prepared",
            "-c",
            "cfg.yaml",
            "-p",
            seed,
            "-o",
            "model.bin",
            "--",
            "sh",
            "-c",
            "cat prepared/train.csv cfg.yaml > model.bin",
        ]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.show(None)["id"].as_str().expect("id").to_string()
}

//! Secrets never reach the store's files, and the store is private to its user.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::util::*;

/// (variable, value, the plaintext that must never be stored).
const PLANTED: &[(&str, &str, &str)] = &[
    (
        "HF_TOKEN",
        "plain-name-secret-1111",
        "plain-name-secret-1111",
    ),
    ("MY_DB_PASSWORD", "hunter2-pass-2222", "hunter2-pass-2222"),
    ("WANDB_API_KEY", "wandbkey3333abcdef", "wandbkey3333abcdef"),
    ("SESSION_COOKIE", "cookie-4444", "cookie-4444"),
    (
        "INNOCENT_LOOKING",
        "AKIAIOSFODNN7EXAMPL5",
        "AKIAIOSFODNN7EXAMPL5",
    ),
    (
        "SOME_SETTING",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    (
        "OTHER_SETTING",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
    ),
    (
        "HUB",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
    ),
    (
        "SLACK_HOOK",
        "xoxb-123456789012-abcdefghij",
        "xoxb-123456789012-abcdefghij",
    ),
    (
        "JWT_LIKE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl",
        "eyJzdWIiOiIxMjM0NTYifQ",
    ),
    (
        "DATABASE_URL",
        "postgres://trainer:Sup3rS3cretPw@db.internal/lineage",
        "Sup3rS3cretPw",
    ),
    (
        "CACHE_URL",
        "redis://:r3d1sPw0rd@cache:6379/0",
        "r3d1sPw0rd",
    ),
];

#[test]
fn planted_secrets_never_reach_the_store_files() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "sh", "-c", "echo ok"]);
    for (name, value, _) in PLANTED {
        cmd.env(name, value);
    }
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let files = env.store_files();
    assert!(files.iter().any(|(p, _)| p.ends_with("lineage.db")));
    for (name, _, plaintext) in PLANTED {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, plaintext.as_bytes()),
                "{name}'s secret found in {}",
                path.display()
            );
        }
        assert!(
            !run.to_string().contains(plaintext),
            "{name}'s secret found in show --json"
        );
    }
    let env_json = &run["env"];
    assert_eq!(env_json["HF_TOKEN"], "[REDACTED]");
    assert_eq!(env_json["INNOCENT_LOOKING"], "[REDACTED]");
    assert_eq!(
        env_json["DATABASE_URL"],
        "postgres://trainer:***@db.internal/lineage"
    );
    assert_eq!(env_json["CACHE_URL"], "redis://:***@cache:6379/0");
    let redacted: Vec<&str> = run["env_redacted"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for (name, _, _) in PLANTED {
        assert!(redacted.contains(name), "{name} not listed as redacted");
    }
}

#[test]
fn config_params_with_secret_names_are_redacted() {
    let env = Env::new();
    env.write(
        "cfg.yaml",
        "wandb:\n  api_key: cfgkey5555secret\n  project: demo\n",
    );
    let out = env.cmd([
        "run",
        "-c",
        "cfg.yaml",
        "-p",
        "db_password=clipw6666",
        "--",
        "true",
    ]);
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    assert_eq!(run["params"]["wandb.api_key"], "[REDACTED]");
    assert_eq!(run["params"]["db_password"], "[REDACTED]");
    assert_eq!(run["params"]["wandb.project"], "demo");
    let db = env.db();
    let params: Vec<String> = db
        .prepare("SELECT value FROM params")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        !params
            .iter()
            .any(|v| v.contains("clipw6666") || v.contains("cfgkey5555"))
    );
}

#[test]
fn env_allow_and_deny_adjust_the_policy() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "--env-allow",
        "MY_AUTH_MODE",
        "--env-deny",
        "CORP_*",
        "--",
        "true",
    ])
    .env("MY_AUTH_MODE", "oauth")
    .env("CORP_INTERNAL", "confidential-7777");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(run["env"]["MY_AUTH_MODE"], "oauth");
    assert_eq!(run["env"]["CORP_INTERNAL"], "[REDACTED]");
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, b"confidential-7777"),
            "in {}",
            path.display()
        );
    }
    let out = env.cmd(["run", "--env-deny", "[", "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--env-deny"), "{}", stderr(&out));
}

#[test]
fn the_store_is_private_to_its_user() {
    let env = Env::new();
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 0);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&env.store), 0o700);
    for (path, _) in env.store_files() {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

//! `lineage export`: the shared pipeline (`fixture`), exported as PROV-JSON,
//! in-toto/SLSA and OpenLineage, checked by our own reading and by the third-party validators
//! in ../shared/interop (the `prov`, `in-toto`, `in-toto-attestation` and
//! `openlineage-python` packages, and the official OpenLineage JSON Schemas). The digests are
//! compared with what `sha256sum` says about the same files.
//!
//! The validators need the venv `../shared/interop/setup.sh DIR` builds: set
//! LINEAGE_INTEROP_VENV=DIR (.ci/run does, and sets LINEAGE_REQUIRE_INTEROP=1 so that a
//! missing venv fails instead of skipping).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

use crate::fixture::{Pipeline, SECRET};

fn pipeline() -> Pipeline {
    Pipeline::new()
}

fn export(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "export {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// `sha256sum FILE`, the reference.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

/// in-toto's dirHash by its definition in digest_set.md, with the shell tools.
fn dir_hash(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -f1 -d' '")
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn b3(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).expect("read"))
        .to_hex()
        .to_string()
}

/// The validators' python and directory, or None (with a note) when the venv is not set up.
fn interop() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("LINEAGE_INTEROP_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/interop"),
        PathBuf::from,
    );
    let python =
        std::env::var_os("LINEAGE_INTEROP_VENV").map(|v| PathBuf::from(v).join("bin/python"));
    match python {
        Some(py) if py.exists() && dir.join("validate_prov.py").exists() => Some((py, dir)),
        _ => {
            assert!(
                std::env::var_os("LINEAGE_REQUIRE_INTEROP").is_none(),
                "LINEAGE_REQUIRE_INTEROP is set but the validators are missing: set \
                 LINEAGE_INTEROP_VENV to a venv made by {}/setup.sh",
                dir.display()
            );
            eprintln!(
                "note: third-party validators skipped: run `bash {}/setup.sh DIR` and set \
                 LINEAGE_INTEROP_VENV=DIR",
                dir.display()
            );
            None
        }
    }
}

/// Run a validator on a file; panics with its report unless it says VALID.
fn validate(script: &str, file: &Path, extra: &[&str]) {
    let Some((python, dir)) = interop() else {
        return;
    };
    let out = Command::new(python)
        .arg(dir.join(script))
        .arg(file)
        .args(extra)
        .output()
        .expect("validator runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{script} rejected {}:\n{report}",
        file.display()
    );
    assert!(report.contains("VALID"), "{report}");
}

fn spec_args() -> Vec<String> {
    let dir = std::env::var_os("LINEAGE_INTEROP_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/interop"),
        PathBuf::from,
    );
    vec![
        "--spec-dir".into(),
        dir.join("../openlineage-spec").display().to_string(),
        "--require-schema".into(),
        "--facet-dir".into(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/spec/facets/1-0-0")
            .display()
            .to_string(),
        "--strict".into(),
    ]
}

#[test]
fn prov_json_of_a_models_ancestry_is_valid_prov() {
    let p = pipeline();
    let env = &p.env;
    let text = export(env, &["metrics.json", "--format", "prov-json"]);
    assert!(!text.contains(SECRET), "a secret reached the export");
    let doc: Value = serde_json::from_str(&text).expect("one JSON document");

    // Every run of the ancestry is an Activity, associated with its user and host.
    let activities = doc["activity"].as_object().expect("activities");
    for run in [&p.prepare, &p.train, &p.evaluate] {
        let a = &activities[&format!("run:{run}")];
        assert_eq!(a["lineage:status"], "succeeded", "{a}");
        assert!(a["prov:startTime"].is_string() && a["prov:endTime"].is_string());
    }
    assert_eq!(activities.len(), 3);
    let model = format!("blake3:{}", b3(&env.path("model.bin")));
    let e = &doc["entity"][&model];
    assert_eq!(
        e["lineage:sha256"],
        sha256sum(&env.path("model.bin")),
        "{e}"
    );
    let prepared = doc["entity"]
        .as_object()
        .expect("entities")
        .values()
        .find(|e| e["prov:label"] == "prepared")
        .expect("the prepared directory is an entity");
    assert_eq!(prepared["lineage:dirHash"], dir_hash(&env.path("prepared")));
    assert_eq!(prepared["prov:type"]["$"], "prov:Collection");
    let generated = doc["wasGeneratedBy"].as_object().expect("generations");
    assert!(
        generated
            .values()
            .any(|g| g["prov:entity"] == model.as_str()
                && g["prov:activity"] == format!("run:{}", p.train).as_str())
    );
    let derived = doc["wasDerivedFrom"].as_object().expect("derivations");
    assert!(
        derived
            .values()
            .any(|d| d["prov:generatedEntity"] == model.as_str()
                && d["prov:usedEntity"]
                    == format!("blake3:{}", b3(&env.path("cfg.yaml"))).as_str())
    );
    assert!(
        doc["wasAssociatedWith"]
            .as_object()
            .expect("associations")
            .len()
            >= 3
    );

    let file = env.path("prov.json");
    let out = env.cmd(
        ["export", "metrics.json", "--format", "prov-json", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([file.display().to_string()]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    assert_eq!(std::fs::read_to_string(&file).expect("written"), text);
    validate("validate_prov.py", &file, &[]);
}

#[test]
fn in_toto_statements_carry_sha256_and_dir_hash_and_pass_in_toto() {
    let p = pipeline();
    let env = &p.env;
    let text = export(env, &["metrics.json", "--format", "in-toto"]);
    assert!(!text.contains(SECRET), "a secret reached the export");
    let statements = lines(&text);
    assert_eq!(statements.len(), 3, "one statement per run");
    let by_run = |run: &str| {
        statements
            .iter()
            .find(|s| {
                s["predicate"]["runDetails"]["metadata"]["invocationId"]
                    == format!("urn:uuid:{run}").as_str()
            })
            .unwrap_or_else(|| panic!("no statement for {run}"))
    };
    let train = by_run(&p.train);
    assert_eq!(train["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(train["predicateType"], "https://slsa.dev/provenance/v1");
    let subject = &train["subject"][0];
    assert_eq!(subject["name"], "model.bin");
    assert_eq!(
        subject["digest"]["sha256"],
        sha256sum(&env.path("model.bin"))
    );
    assert_eq!(subject["digest"]["blake3"], b3(&env.path("model.bin")));
    let def = &train["predicate"]["buildDefinition"];
    assert_eq!(def["externalParameters"]["argv"][0], "sh");
    assert_eq!(def["externalParameters"]["params"]["lr"], 0.1);
    assert_eq!(
        def["externalParameters"]["environment"]["API_TOKEN"],
        "[REDACTED]"
    );
    let deps = def["resolvedDependencies"].as_array().expect("deps");
    let commit = env.git(&["rev-parse", "HEAD"]);
    assert!(
        deps.iter()
            .any(|d| d["digest"]["gitCommit"] == commit.as_str()),
        "{deps:?}"
    );
    let prepared = deps
        .iter()
        .find(|d| d["name"] == "prepared")
        .expect("prepared");
    assert_eq!(
        prepared["digest"]["dirHash"],
        dir_hash(&env.path("prepared"))
    );
    let cfg = deps.iter().find(|d| d["name"] == "cfg.yaml").expect("cfg");
    assert_eq!(cfg["digest"]["sha256"], sha256sum(&env.path("cfg.yaml")));
    assert!(def["internalParameters"]["hardware"]["cpuCores"].as_u64() > Some(0));

    for (i, s) in statements.iter().enumerate() {
        let file = env.path(&format!("statement-{i}.json"));
        std::fs::write(&file, serde_json::to_string(s).expect("json")).expect("write");
        // The evaluate statement names files only, so every digest set has sha256: strict.
        let strict = s == by_run(&p.evaluate);
        validate(
            "validate_intoto.py",
            &file,
            if strict { &["--strict"] } else { &[] },
        );
    }
}

#[test]
fn sha256_recorded_at_run_time_outlives_the_file() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "input bytes\n");
    env.record(&[
        "--sha256",
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cp in.txt out.txt; echo more >> out.txt",
    ]);
    let (want_in, want_out) = (
        sha256sum(&env.path("in.txt")),
        sha256sum(&env.path("out.txt")),
    );
    let n: i64 = env
        .db()
        .query_row(
            "SELECT COUNT(*) FROM extra_digests WHERE algorithm = 'sha256'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(n, 2, "run --sha256 recorded both digests");
    std::fs::remove_file(env.path("out.txt")).expect("rm");
    std::fs::write(env.path("in.txt"), "changed since\n").expect("rewrite");
    let out = env.cmd(["export", "--format", "in-toto"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let s = &lines(&stdout(&out))[0];
    assert_eq!(s["subject"][0]["digest"]["sha256"], want_out.as_str());
    let input = &s["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .expect("deps")
        .iter()
        .find(|d| d["name"] == "in.txt")
        .expect("in.txt")["digest"];
    assert_eq!(input["sha256"], want_in.as_str());
}

#[test]
fn a_file_changed_since_its_run_gets_no_sha256_and_a_warning() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "input bytes\n");
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cp in.txt out.txt; echo out >> out.txt",
    ]);
    std::fs::write(env.path("out.txt"), "tampered\n").expect("rewrite");
    let out = env.cmd(["export", "--format", "in-toto"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no sha256 for out.txt") && err.contains("changed since it was recorded"),
        "{err}"
    );
    let s = &lines(&stdout(&out))[0];
    let digest = &s["subject"][0]["digest"];
    assert!(
        digest.get("sha256").is_none(),
        "a sha256 of other bytes would be a lie: {digest}"
    );
    assert!(digest["blake3"].is_string());
    // The input still matches: it has its sha256, computed now and remembered.
    let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
    assert!(deps.contains(&sha256sum(&env.path("in.txt"))), "{deps}");
}

#[test]
fn openlineage_events_pass_the_official_schemas_and_client() {
    let p = pipeline();
    let env = &p.env;
    // A failing run and a rerun of the training run join the graph.
    let out = env.cmd(["run", "-q", "-i", "model.bin", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3);
    let failed = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["rerun", "-q", &p.train]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rerun = env.show(None)["id"].as_str().expect("id").to_string();

    let text = export(env, &["metrics.json", "--format", "openlineage"]);
    assert!(!text.contains(SECRET), "a secret reached the export");
    let events = lines(&text);
    // The rerun wrote the same model.bin as the training run, but after the evaluation read
    // it: it is not one of metrics.json's causes (docs/lineage-model.md).
    assert_eq!(events.len(), 6, "START and COMPLETE for each of 3 runs");
    assert!(!events.iter().any(|e| e["run"]["runId"] == rerun.as_str()));
    let of = |run: &str, kind: &str| {
        events
            .iter()
            .find(|e| e["run"]["runId"] == run && e["eventType"] == kind)
            .unwrap_or_else(|| panic!("no {kind} for {run}"))
            .clone()
    };
    let start = of(&p.train, "START");
    let done = of(&p.train, "COMPLETE");
    assert!(start["eventTime"].as_str() <= done["eventTime"].as_str());
    assert_eq!(start["job"]["name"], done["job"]["name"]);
    assert!(start["outputs"].as_array().expect("outputs").is_empty());
    let model = &done["outputs"][0];
    assert_eq!(model["namespace"], "file");
    assert_eq!(model["name"], env.path("model.bin").display().to_string());
    assert_eq!(
        model["facets"]["version"]["datasetVersion"],
        format!("blake3:{}", b3(&env.path("model.bin")))
    );
    assert_eq!(
        model["facets"]["lineage_digest"]["sha256"],
        sha256sum(&env.path("model.bin"))
    );
    let vars = start["run"]["facets"]["environmentVariables"]["environmentVariables"].to_string();
    assert!(
        vars.contains("API_TOKEN") && vars.contains("[REDACTED]"),
        "{vars}"
    );
    let commit = env.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        start["job"]["facets"]["sourceCodeLocation"]["version"],
        commit.as_str()
    );

    // The failed run alone: START then FAIL with an errorMessage; the rerun names its original.
    let failed_events = lines(&export(env, &[&failed, "--format", "openlineage"]));
    let fail = &failed_events[1];
    assert_eq!(fail["eventType"], "FAIL");
    assert!(
        fail["run"]["facets"]["errorMessage"]["message"]
            .as_str()
            .expect("message")
            .contains("exited with code 3")
    );
    let rerun_events = lines(&export(env, &[&rerun, "--format", "openlineage"]));
    let facets = &rerun_events[0]["run"]["facets"];
    assert!(
        facets.get("parent").is_none(),
        "a rerun has no parent run: {facets}"
    );
    let of = &facets["lineage_rerun"]["rerunOf"];
    assert_eq!(of["runId"], p.train.as_str());
    assert_eq!(of["job"]["name"], start["job"]["name"]);

    let spec = spec_args();
    let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
    for (name, text) in [
        ("ancestry", text),
        ("failed", export(env, &[&failed, "--format", "openlineage"])),
        ("rerun", export(env, &[&rerun, "--format", "openlineage"])),
    ] {
        let file = env.path(&format!("{name}.ol.jsonl"));
        std::fs::write(&file, text).expect("write");
        validate("validate_openlineage.py", &file, &spec);
    }
}

#[test]
fn bad_export_requests_are_one_line_errors() {
    let env = Env::new();
    env.init_repo();
    env.record(&["--", "true"]);
    let out = env.cmd(["export", "--format", "in-toto"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("needs at least one subject"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd([
        "export",
        "--format",
        "prov-json",
        "--post",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("add --format openlineage"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["export", "nope.txt", "--format", "prov-json", "--path"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).lines().filter(|l| l.contains("error")).count(),
        1,
        "{}",
        stderr(&out)
    );
    // A run without outputs is still a valid PROV activity and OpenLineage run.
    let prov: Value =
        serde_json::from_str(&export(&env, &["--format", "prov-json"])).expect("json");
    assert_eq!(prov["activity"].as_object().expect("activity").len(), 1);
    assert_eq!(lines(&export(&env, &["--format", "openlineage"])).len(), 2);
}

/// `--post` sends events over HTTP, which the team-store feature builds in.
#[cfg(feature = "team-store")]
mod post {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// One HTTP request as a tiny server saw it.
    #[derive(Clone, Debug)]
    struct Request {
        line: String,
        authorization: Option<String>,
        body: String,
    }

    /// A local HTTP server answering every request with `status`; returns its URL and the log.
    fn server(status: u16, expect: usize) -> (String, Arc<Mutex<Vec<Request>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(expect) {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                let (mut length, mut authorization) = (0usize, None);
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).expect("header");
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (name, value) = h.split_once(':').expect("header");
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().expect("length"),
                        "authorization" => authorization = Some(value.trim().to_string()),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                seen.lock().expect("lock").push(Request {
                    line: line.trim_end().to_string(),
                    authorization,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let reason = if status < 300 {
                    "Created"
                } else {
                    "Internal Server Error"
                };
                let reply = "marquez says no";
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        (url, log)
    }

    #[test]
    fn post_sends_each_event_to_an_openlineage_endpoint() {
        let p = pipeline();
        let env = &p.env;
        let expected = lines(&export(env, &["model.bin", "--format", "openlineage"]));
        let (url, log) = server(201, expected.len());
        let mut cmd = env.lineage();
        cmd.env("OPENLINEAGE_API_KEY", "key-123").args([
            "export",
            "model.bin",
            "--format",
            "openlineage",
            "--post",
            &url,
        ]);
        let out = output_within(cmd, std::time::Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "--post without -o prints no events");
        assert!(stderr(&out).contains(&format!(
            "posted 4 OpenLineage events to {url}/api/v1/lineage"
        )));
        let got = log.lock().expect("lock").clone();
        assert_eq!(got.len(), expected.len());
        for (req, want) in got.iter().zip(&expected) {
            assert_eq!(req.line, "POST /api/v1/lineage HTTP/1.1");
            assert_eq!(req.authorization.as_deref(), Some("Bearer key-123"));
            let body: Value = serde_json::from_str(&req.body).expect("a JSON event");
            assert_eq!(&body, want);
        }
        // What the server received is what the validators accept.
        let file = env.path("posted.jsonl");
        let bodies: Vec<String> = got.iter().map(|r| r.body.clone()).collect();
        std::fs::write(&file, bodies.join("\n") + "\n").expect("write");
        let spec = spec_args();
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        validate("validate_openlineage.py", &file, &spec);

        // A server that refuses: one line naming the endpoint and its answer, exit 1.
        let (url, _) = server(500, 1);
        let out = env.cmd([
            "export",
            "model.bin",
            "--format",
            "openlineage",
            "--post",
            &url,
        ]);
        assert_eq!(code(&out), 1);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "could not post OpenLineage event 1 of 4 to {url}/api/v1/lineage"
            )),
            "{err}"
        );
        assert!(err.contains("500") && !err.contains("key-123"), "{err}");
    }
}

/// `--sign` wraps each statement in a DSSE envelope whose signature checks against the key
/// `lineage verify --key` prints, over DSSE's pre-authentication encoding.
#[test]
fn in_toto_statements_can_be_signed_as_dsse_envelopes() {
    use base64::Engine as _;
    use ed25519_dalek::Verifier as _;
    let p = pipeline();
    let env = &p.env;
    let text = export(env, &["metrics.json", "--format", "in-toto", "--sign"]);
    let key = stdout(&env.cmd(["verify", "--key"])).trim().to_string();
    let raw: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&key["ed25519:".len()..][2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("32 bytes");
    let public = ed25519_dalek::VerifyingKey::from_bytes(&raw).expect("key");
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelopes = lines(&text);
    assert_eq!(envelopes.len(), 3, "one envelope per statement");
    for (i, e) in envelopes.iter().enumerate() {
        let ty = e["payloadType"].as_str().expect("type");
        assert_eq!(ty, "application/vnd.in-toto+json");
        let payload = b64
            .decode(e["payload"].as_str().expect("payload"))
            .expect("b64");
        let statement: Value = serde_json::from_slice(&payload).expect("a statement");
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        let sig = &e["signatures"][0];
        assert_eq!(sig["keyid"], key.as_str());
        let sig: [u8; 64] = b64
            .decode(sig["sig"].as_str().expect("sig"))
            .expect("b64")
            .try_into()
            .expect("64 bytes");
        let mut pae = format!("DSSEv1 {} {ty} {} ", ty.len(), payload.len()).into_bytes();
        pae.extend_from_slice(&payload);
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        assert!(public.verify(&pae, &sig).is_ok(), "envelope {i} verifies");
        let mut forged = pae.clone();
        forged.push(b' ');
        assert!(public.verify(&forged, &sig).is_err());
        let file = env.path(&format!("envelope-{i}.json"));
        std::fs::write(&file, serde_json::to_string(e).expect("json")).expect("write");
        validate("validate_intoto.py", &file, &[]);
    }
    let out = env.cmd(["export", "metrics.json", "--format", "prov-json", "--sign"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("add --format in-toto"),
        "{}",
        stderr(&out)
    );
}

/// Issue 16, item 10: the store keeps a config's exact bytes (unless it held a secret), so
/// its sha256 is known after the file changed; a config kept only redacted says so.
#[test]
fn a_configs_sha256_comes_from_its_kept_bytes_and_a_redacted_one_says_why_not() {
    let env = Env::new();
    env.init_repo();
    env.write("cfg.yaml", "lr: 0.1\nepochs: 2\n");
    env.write("secret.yaml", format!("api_key: {SECRET}\nlr: 0.1\n"));
    let want = sha256sum(&env.path("cfg.yaml"));
    env.record(&[
        "-c",
        "cfg.yaml",
        "-c",
        "secret.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat cfg.yaml > out.txt",
    ]);
    // Both configs change after the run: only the store can answer now.
    env.write("cfg.yaml", "lr: 0.2\nepochs: 2\n");
    env.write("secret.yaml", "api_key: other\n");
    for flags in [&[][..], &["--no-sha256"][..]] {
        let mut args = vec!["export", "--format", "in-toto"];
        args.extend_from_slice(flags);
        let out = env.cmd(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains("for cfg.yaml"), "{flags:?}: {err}");
        assert!(
            err.contains("no sha256 for secret.yaml")
                && err.contains("only a copy with its secrets redacted"),
            "{flags:?}: {err}"
        );
        assert!(!stdout(&out).contains(SECRET));
        let s = &lines(&stdout(&out))[0];
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .expect("deps");
        let dep = |name: &str| {
            deps.iter()
                .find(|d| d["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {deps:?}"))["digest"]
                .clone()
        };
        assert_eq!(dep("cfg.yaml")["sha256"], want.as_str(), "{flags:?}");
        assert!(dep("secret.yaml").get("sha256").is_none(), "{flags:?}");
    }
}

/// Issue 16, item 11: a `rerun --worktree` ran in a temporary copy of the repository, but
/// it is its original's job on its original's files; "rerun of" is our facet, not `parent`.
#[test]
fn a_worktree_rerun_keeps_its_originals_job_and_datasets_in_openlineage() {
    let env = Env::new();
    env.init_repo();
    env.write("data/in.txt", "data\n");
    env.write(
        "stage.sh",
        "mkdir -p out && cat data/in.txt > out/result.txt\n",
    );
    env.git(&["add", "data/in.txt", "stage.sh"]);
    env.git(&["commit", "-q", "-m", "stage"]);
    // The script by its absolute path, as `python $PWD/train.py` would give it.
    let script = env.path("stage.sh").display().to_string();
    let original = env.record(&[
        "-i",
        "data/in.txt",
        "-o",
        "out/result.txt",
        "--",
        "sh",
        &script,
    ]);
    let out = env.cmd(["rerun", "-q", "--worktree", &original]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rerun = env.show(None)["id"].as_str().expect("id").to_string();
    assert_ne!(rerun, original);
    let cwd = env.show(Some(&rerun))["cwd"]
        .as_str()
        .expect("cwd")
        .to_string();
    assert!(cwd.contains("lineage-rerun-"), "ran in a worktree: {cwd}");

    let first = lines(&export(&env, &[&original, "--format", "openlineage"]));
    let text = export(&env, &[&rerun, "--format", "openlineage"]);
    let again = lines(&text);
    let names = |events: &[Value]| -> Vec<String> {
        let end = events.last().expect("an end event");
        end["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .chain(end["outputs"].as_array().expect("outputs"))
            .map(|d| d["name"].as_str().expect("name").to_string())
            .collect()
    };
    assert_eq!(again[0]["job"]["name"], first[0]["job"]["name"], "{text}");
    assert_eq!(
        names(&again),
        vec![
            env.path("data/in.txt").display().to_string(),
            env.path("out/result.txt").display().to_string()
        ],
        "{text}"
    );
    assert_eq!(names(&again), names(&first));
    // The temporary directory appears only where the record says where it really ran.
    for e in &again {
        let mut e = e.clone();
        let facets = e["run"]["facets"].as_object_mut().expect("facets");
        facets["lineage_run"]["cwd"].take();
        facets["lineage_rerun"]["worktree"].take();
        assert!(!e.to_string().contains("lineage-rerun-"), "{e}");
    }
    for e in &again {
        let facets = &e["run"]["facets"];
        assert!(facets.get("parent").is_none(), "{facets}");
        let ours = &facets["lineage_rerun"];
        assert_eq!(ours["rerunOf"]["runId"], original.as_str());
        assert_eq!(ours["rerunOf"]["job"]["name"], first[0]["job"]["name"]);
        let dir = ours["worktree"]["directory"].as_str().expect("directory");
        assert!(cwd.starts_with(dir), "{dir} holds {cwd}");
        assert_eq!(
            ours["worktree"]["standsFor"],
            env.root().display().to_string()
        );
        // What really happened stays on record.
        assert_eq!(facets["lineage_run"]["cwd"], cwd.as_str());
    }
    let file = env.path("worktree-rerun.ol.jsonl");
    std::fs::write(&file, &text).expect("write");
    let spec = spec_args();
    let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
    validate("validate_openlineage.py", &file, &spec);
}

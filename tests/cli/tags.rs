//! `lineage tag` and `lineage note` (issue 18, item 4): annotations beside runs, shown,
//! exported, carried by bundles, and a tag accepted wherever a run id is.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

const SECRET: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

fn at(env: &Env, store: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = env.lineage();
    cmd.arg("--store").arg(store).args(args);
    output_within(cmd, Duration::from_secs(60))
}

fn ok(out: std::process::Output) -> String {
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// A repository with two runs: `prep` writes data.txt, `train` reads it and writes model.bin.
fn two_runs() -> (Env, String, String) {
    let env = Env::local();
    env.init_repo();
    env.write("raw.txt", "1,2,3\n");
    let prep = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "data.txt",
        "--",
        "sh",
        "-c",
        "cp raw.txt data.txt",
    ]);
    let train = env.record(&[
        "-i",
        "data.txt",
        "-o",
        "model.bin",
        "-p",
        "lr=0.1",
        "--",
        "sh",
        "-c",
        "cat data.txt data.txt > model.bin",
    ]);
    (env, prep, train)
}

#[test]
fn a_tag_is_accepted_wherever_a_run_id_is() {
    let (env, prep, train) = two_runs();
    let out = env.cmd(["tag", &train, "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("is tagged best"), "{}", stderr(&out));
    ok(env.cmd(["tag", &prep, "data-v1"]));

    assert_eq!(env.show(Some("best"))["id"], train.as_str());
    assert_eq!(env.show(Some("best"))["tags"], serde_json::json!(["best"]));
    let diff: Value =
        serde_json::from_str(&ok(env.cmd(["diff", "data-v1", "best", "--json"]))).expect("json");
    assert_eq!(diff["a"], prep.as_str(), "{diff}");
    let prov: Value =
        serde_json::from_str(&ok(env.cmd(["export", "best", "--format", "prov-json"])))
            .expect("json");
    assert!(
        prov["activity"][format!("run:{train}")].is_object(),
        "{prov}"
    );
    ok(env.cmd(["verify", "best"]));
    ok(env.cmd(["rerun", "--dry-run", "best"]));
    ok(env.cmd(["show", "--run", "best"]));
    let bundle = env.root().join("b.lineage");
    let out = env.cmd([
        "bundle",
        "export",
        "best",
        "-o",
        bundle.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A tag that names nothing is an unknown run, with the way to the tags.
    let out = env.cmd(["show", "--run", "nosuchtag"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("`lineage tag` the tags"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_name_on_another_run_is_refused_with_the_fix_and_force_moves_it_on_the_record() {
    let (env, prep, train) = two_runs();
    ok(env.cmd(["tag", &prep, "best"]));
    let out = env.cmd(["tag", &train, "best"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("lineage: error: tag \"best\" already names run ")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "one error line and its hint: {err}");
    assert_eq!(env.show(Some("best"))["id"], prep.as_str());

    let out = env.cmd(["tag", "--force", &train, "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("moved from run"), "{}", stderr(&out));
    assert_eq!(env.show(Some("best"))["id"], train.as_str());
    assert_eq!(env.show(Some(&prep))["tags"], serde_json::json!([]));
    // Recorded, never rewritten: the old run's tag and untag stay.
    let kinds: Vec<(String, String)> = env
        .db()
        .prepare("SELECT run_id, kind FROM annotations ORDER BY created_at, id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        kinds,
        [
            (prep.clone(), "tag".to_string()),
            (prep.clone(), "untag".to_string()),
            (train.clone(), "tag".to_string())
        ]
    );

    let out = env.cmd(["tag", "--delete", "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["show", "--run", "best"]);
    assert_eq!(code(&out), 1, "a deleted tag names nothing");
    let out = env.cmd(["tag", "--delete", "best"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no run is tagged \"best\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn names_that_read_as_run_ids_or_options_are_refused_and_tags_are_listed() {
    let (env, prep, train) = two_runs();
    for bad in ["cafe", "0192", "a b", "x\u{1b}[31m"] {
        let out = env.cmd(["tag", &train, bad]);
        assert_eq!(code(&out), 1, "{bad:?}");
        assert!(stderr(&out).contains("cannot be a tag"), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains('\u{1b}'),
            "escaped: {}",
            stderr(&out)
        );
    }
    // No tags yet: said on stderr, nothing on stdout.
    let out = env.cmd(["tag"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, ""));
    ok(env.cmd(["tag", &train, "best"]));
    ok(env.cmd(["tag", &prep, "baseline/nov"]));
    let list = ok(env.cmd(["tag"]));
    let lines: Vec<&str> = list.lines().filter(|l| l.contains("sh -c")).collect();
    assert!(
        lines[0].contains("baseline/nov") && lines[1].contains("best"),
        "{list}"
    );
    let json: Value = serde_json::from_str(&ok(env.cmd(["tag", "--json"]))).expect("json");
    assert_eq!(json[0]["name"], "baseline/nov");
    assert_eq!(json[1]["run_id"], train.as_str());
    assert!(json[1]["author"].as_str().is_some_and(|a| !a.is_empty()));
}

#[test]
fn a_note_is_stored_redacted_printed_escaped_and_leaves_the_run_as_signed() {
    let (env, _prep, train) = two_runs();
    let before = env.show(Some(&train));
    let out = env.cmd([
        "note",
        &train,
        "lr",
        "0.1",
        "beats",
        "baseline;",
        "token",
        SECRET,
        "\u{1b}[2Jgone",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("stored redacted"), "{}", stderr(&out));
    ok(env.cmd(["note", &train, "second thoughts"]));

    let shown = ok(env.cmd(["show", &train]));
    assert!(shown.contains("note by "), "{shown}");
    assert!(shown.contains("lr 0.1 beats baseline;"), "{shown}");
    assert!(
        !shown.contains(SECRET) && !shown.contains('\u{1b}'),
        "{shown}"
    );
    let json = env.show(Some(&train));
    let notes = json["user_notes"].as_array().expect("user_notes");
    assert_eq!(notes.len(), 2);
    assert!(
        notes[0]["text"]
            .as_str()
            .expect("text")
            .contains("[REDACTED]")
    );
    assert_eq!(notes[1]["text"], "second thoughts");
    // The run itself is what it was: same record, still verified.
    let strip = |mut v: Value| {
        v.as_object_mut().expect("object").remove("user_notes");
        v
    };
    assert_eq!(strip(json.clone()), strip(before));
    ok(env.cmd(["verify", &train]));
    // No secret anywhere in the store.
    for (path, bytes) in env.store_files() {
        assert!(!contains(&bytes, SECRET.as_bytes()), "{}", path.display());
    }
    let annotations: i64 = env
        .db()
        .query_row(
            "SELECT COUNT(*) FROM annotations WHERE signature IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(annotations, 2, "each note signed");
}

#[test]
fn exports_carry_tags_and_notes() {
    let (env, _prep, train) = two_runs();
    ok(env.cmd(["tag", &train, "best"]));
    ok(env.cmd(["note", &train, "the one we ship"]));

    let prov: Value =
        serde_json::from_str(&ok(env.cmd(["export", "best", "--format", "prov-json"])))
            .expect("json");
    let act = &prov["activity"][format!("run:{train}")];
    assert_eq!(act["lineage:tag"], serde_json::json!(["best"]), "{act}");
    let notes: Value =
        serde_json::from_str(act["lineage:notes"].as_str().expect("notes")).expect("json");
    assert_eq!(notes[0]["text"], "the one we ship");

    let ol = ok(env.cmd(["export", "best", "--format", "openlineage"]));
    for line in ol.lines() {
        let event: Value = serde_json::from_str(line).expect("json");
        let facet = &event["run"]["facets"]["lineage_annotations"];
        assert_eq!(facet["tags"], serde_json::json!(["best"]), "{event}");
        assert_eq!(facet["notes"][0]["text"], "the one we ship");
        assert!(facet["_producer"].is_string());
        assert!(
            facet["_schemaURL"].as_str().is_some_and(|s| s
                .ends_with("LineageAnnotationsRunFacet.json#/$defs/LineageAnnotationsRunFacet")),
            "{facet}"
        );
    }

    let statement: Value =
        serde_json::from_str(&ok(env.cmd(["export", "best", "--format", "in-toto"])))
            .expect("json");
    let by = &statement["predicate"]["runDetails"]["byproducts"][0];
    assert_eq!(by["name"], "lineage annotations", "{statement}");
    assert_eq!(by["annotations"]["tags"], serde_json::json!(["best"]));
    assert_eq!(by["annotations"]["notes"][0]["text"], "the one we ship");
    let doc = serde_json::to_vec(&by["annotations"]).expect("bytes");
    use sha2::Digest as _;
    let sha: String = sha2::Sha256::digest(&doc)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(by["digest"]["sha256"], sha.as_str());

    // A run without annotations exports as before.
    let prep = ok(env.cmd(["export", "data.txt", "--format", "openlineage"]));
    assert!(
        !prep.is_empty() && !prep.contains("lineage_annotations"),
        "{prep}"
    );
}

#[test]
fn bundles_carry_annotations_and_add_only_signed_ones_to_runs_already_there() {
    let (env, _prep, train) = two_runs();
    ok(env.cmd(["tag", &train, "best"]));
    ok(env.cmd(["note", &train, "first"]));
    let other = env.root().join("other-store");
    let b1 = env.root().join("b1.lineage");
    ok(env.cmd(["bundle", "export", "-o", b1.to_str().expect("utf-8")]));
    let out = at(
        &env,
        &other,
        &["bundle", "import", b1.to_str().expect("utf-8")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("imported 2 annotations"),
        "{}",
        stderr(&out)
    );
    let shown: Value =
        serde_json::from_str(&ok(at(&env, &other, &["show", "best", "--json"]))).expect("json");
    assert_eq!(shown["id"], train.as_str());
    assert_eq!(shown["user_notes"][0]["text"], "first");

    // Later annotations of a run the other store has travel too.
    ok(env.cmd(["note", &train, "second"]));
    let b2 = env.root().join("b2.lineage");
    ok(env.cmd([
        "bundle",
        "export",
        "best",
        "-o",
        b2.to_str().expect("utf-8"),
    ]));
    let out = at(
        &env,
        &other,
        &["bundle", "import", b2.to_str().expect("utf-8")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: Value =
        serde_json::from_str(&ok(at(&env, &other, &["show", "best", "--json"]))).expect("json");
    assert_eq!(shown["user_notes"][1]["text"], "second");

    // An annotation changed after it was signed is refused, and nothing is imported.
    ok(env.cmd(["note", &train, "third"]));
    let b3 = env.root().join("b3.lineage");
    ok(env.cmd([
        "bundle",
        "export",
        "best",
        "-o",
        b3.to_str().expect("utf-8"),
    ]));
    let c = rusqlite::Connection::open(&b3).expect("open");
    c.execute(
        "UPDATE annotations SET text = 'forged' WHERE text = 'third'",
        [],
    )
    .expect("forge");
    drop(c);
    let out = at(
        &env,
        &other,
        &["bundle", "import", b3.to_str().expect("utf-8")],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("table annotations") && stderr(&out).contains("signature"),
        "{}",
        stderr(&out)
    );
    // Unsigned, for a run already there: passed over with a word.
    let c = rusqlite::Connection::open(&b3).expect("open");
    c.execute(
        "UPDATE annotations SET public_key = NULL, signature = NULL WHERE text = 'forged'",
        [],
    )
    .expect("unsign");
    drop(c);
    let out = at(
        &env,
        &other,
        &["bundle", "import", b3.to_str().expect("utf-8")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("passed over an unsigned annotation"),
        "{}",
        stderr(&out)
    );
    let shown: Value =
        serde_json::from_str(&ok(at(&env, &other, &["show", "best", "--json"]))).expect("json");
    assert_eq!(shown["user_notes"].as_array().expect("notes").len(), 2);
}

#[test]
fn a_bundle_cannot_move_a_tag_this_store_has() {
    let victim = Env::local();
    victim.init_repo();
    let mine = victim.record(&["--", "true"]);
    let out = victim.cmd(["tag", &mine, "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Someone else's store (their own key) tags their own run `best`, later.
    let other = Env::local();
    other.init_repo();
    let theirs = other.record(&["--", "sh", "-c", "echo theirs"]);
    let out = other.cmd(["tag", &theirs, "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bundle = other.path("b.lineage");
    let out = other.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = victim.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would move this store's tag"),
        "{}",
        stderr(&out)
    );
    // `best` still names the victim's run; theirs came in, untagged here.
    let out = victim.cmd(["show", "--json", "best"]);
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(run["id"], mine.as_str());
    assert_eq!(code(&victim.cmd(["show", "--json", &theirs])), 0);
}

//! The engine end to end: each channel, the bytes in any encoding, sealing.

use super::*;

fn policy() -> Policy {
    Policy::new(&[], &[], &[], [7; 32]).expect("policy")
}

fn strings(argv: &[Vec<u8>]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[test]
fn names_values_and_urls() {
    let p = policy();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("HOME", "/home/u", None),
        ("HF_TOKEN", "x", Some(REDACTED)),
        ("db_password", "hunter2", Some(REDACTED)),
        ("MYSQL_PWD", "hunter2", Some(REDACTED)),
        ("DB_PASS", "hunter2", Some(REDACTED)),
        ("GPG_PASSPHRASE", "hunter2", Some(REDACTED)),
        ("AWS_SECRET_ACCESS_KEY", "abc", Some(REDACTED)),
        ("WANDB_API_KEY", "abc", Some(REDACTED)),
        ("MY_VAR", "AKIAIOSFODNN7EXAMPLE", Some(REDACTED)),
        ("X", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", Some(REDACTED)),
        ("PWD", "/work/tokens", None),
        ("TOKENIZERS_PARALLELISM", "false", None),
        (
            "DATABASE_URL",
            "postgres://u:pw@h/db",
            Some("postgres://u:***@h/db"),
        ),
        ("DATABASE_URL", "postgres://h/db", None),
        (
            "JAVA_OPTS",
            "-Xmx1g -Dpassword=opts-secret",
            Some("-Xmx1g -Dpassword=[REDACTED]"),
        ),
    ];
    for (name, value, want) in cases {
        assert_eq!(p.redact(name, value).as_deref(), *want, "{name}={value}");
    }
}

#[test]
fn allow_and_deny_globs() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let p = Policy::new(&s(&["MY_AUTH_TOKEN"]), &s(&["CUSTOM_*"]), &[], [0; 32]).expect("policy");
    assert_eq!(p.redact("MY_AUTH_TOKEN", "oauth"), None);
    assert_eq!(p.redact("CUSTOM_THING", "v").as_deref(), Some(REDACTED));
    // Allowing a name never lets a credential-shaped value through.
    assert_eq!(
        p.redact("MY_AUTH_TOKEN", "AKIAIOSFODNN7EXAMPLE").as_deref(),
        Some(REDACTED)
    );
    assert!(Policy::new(&["[".into()], &[], &[], [0; 32]).is_err());
}

#[test]
fn env_shapes_found_by_the_trial() {
    let p = policy();
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "SENTRY_DSN",
            "https://S3CRA15sentry@o1.ingest.sentry.io/1",
            Some("https://***@o1.ingest.sentry.io/1"),
        ),
        // A DSN's user is its key whatever it looks like.
        ("APP_DSN", "https://k@h/1", Some("https://***@h/1")),
        ("PGPASS", "S3CRA23", Some(REDACTED)),
        ("OPENAI_KEY_2", "S3CRA18", Some(REDACTED)),
        ("KAGGLE_KEY", "S3CRA06", Some(REDACTED)),
        (
            "AUTH_HEADER",
            "Basic UzNDUkEwNWJhc2ljOnB3",
            Some("Basic [REDACTED]"),
        ),
        ("AUTH_HEADER", "Token abc123", Some("Token [REDACTED]")),
        ("AUTH_HEADER_NAME", "X-Auth", None),
        ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1", None),
    ];
    for (name, value, want) in cases {
        assert_eq!(p.redact(name, value).as_deref(), *want, "{name}={value}");
    }
}

#[test]
fn an_allow_pattern_never_keeps_a_strong_secret_name_in_clear() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let p = Policy::new(&s(&["*", "HF_TOKEN"]), &[], &[], [0; 32]).expect("policy");
    // A pattern: names secret by a strong word stay redacted; weak ones are kept.
    assert_eq!(
        p.redact("AWS_SECRET_ACCESS_KEY", "abc").as_deref(),
        Some(REDACTED)
    );
    assert_eq!(p.redact("DB_PASSWORD", "abc").as_deref(), Some(REDACTED));
    assert_eq!(p.redact("MY_AUTH", "oauth"), None);
    assert_eq!(p.redact("DB_PASS", "x1"), None);
    // An exact name: kept in clear, with a note saying so.
    assert_eq!(p.redact("HF_TOKEN", "hf-in-clear"), None);
    let notes = p.allow_notes(["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "HOME"].into_iter());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("HF_TOKEN"), "{notes:?}");
    assert!(
        notes[1].contains("\"*\"") && notes[1].contains("AWS_SECRET_ACCESS_KEY"),
        "{notes:?}"
    );
    // Keys of params too.
    let param = |k: &str, v: &str| Param {
        key: k.into(),
        value: Value::from(v),
        source: "cli".into(),
    };
    let params = p.redact_params(vec![param("api_key", "k1"), param("auth", "k2")]);
    let got: Vec<&Value> = params.get().iter().map(|p| &p.value).collect();
    assert_eq!(got, [&Value::from(REDACTED), &Value::from("k2")]);
    // The environment's notes, and the sealed record's.
    let env = p.redact_env(
        [("AWS_SECRET_ACCESS_KEY", "a"), ("HF_TOKEN", "b")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .into_iter(),
    );
    assert_eq!(env.notes.len(), 2, "{:?}", env.notes);
    let c = Capture {
        env: env.vars.clone(),
        env_redacted: env.fingerprints.clone(),
        ..Capture::default()
    };
    let sealed = p.seal(c);
    assert_eq!(
        sealed.get().notes,
        env.notes,
        "the notes are kept as they are"
    );
    assert_eq!(p.seal(sealed.get().clone()).get().notes.len(), 2);
    // No pattern, no note.
    assert!(policy().allow_notes(["HF_TOKEN"].into_iter()).is_empty());
}

#[test]
fn lineage_variables_are_never_recorded() {
    let p = policy();
    let vars = [
        ("LINEAGE_ARG_3", "the-real-secret"),
        ("LINEAGE_STORE", "/s"),
        ("SEED", "3"),
    ]
    .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    let env = p.redact_env(vars.into_iter());
    assert_eq!(env.vars.keys().collect::<Vec<_>>(), ["SEED"]);
    let mut c = Capture::default();
    c.env.insert("LINEAGE_ARG_1".into(), "x".into());
    assert!(p.seal(c).get().env.is_empty());
}

#[test]
fn arguments_with_secrets_are_redacted_and_no_others() {
    let p = policy();
    let argv: Vec<Vec<u8>> = [
        "python",
        "train.py",
        "--password",
        "hunter2",
        "--api-key=abc123",
        "token=xyz",
        "--lr",
        "0.01",
        "--db",
        "postgres://u:pw@h/db",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "+db.password=hydra-pw",
        "secrets.db=nested-pw",
        "--passphrase",
        "gpg-phrase",
        "--max-tokens",
        "512",
        "pad_token_id=0",
        "--author",
        "jane",
        "--auth-free",
        "1",
        "--use_auth_token",
        "--epochs=3",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let r = p.redact_argv(&argv);
    assert_eq!(
        strings(r.argv.get()),
        [
            "python",
            "train.py",
            "--password",
            REDACTED,
            "--api-key=[REDACTED]",
            "token=[REDACTED]",
            "--lr",
            "0.01",
            "--db",
            "postgres://u:***@h/db",
            REDACTED,
            "+db.password=[REDACTED]",
            "secrets.db=[REDACTED]",
            "--passphrase",
            REDACTED,
            "--max-tokens",
            "512",
            "pad_token_id=0",
            "--author",
            "jane",
            "--auth-free",
            "1",
            "--use_auth_token",
            "--epochs=3",
        ]
    );
    assert_eq!(
        r.fingerprints.keys().copied().collect::<Vec<_>>(),
        [3, 4, 5, 9, 10, 11, 12, 14]
    );
    // A script for a shell is searched as text.
    let bash = [
        b"bash".to_vec(),
        b"-c".to_vec(),
        b"mysql --password s3cret -e 'select 1'".to_vec(),
    ];
    assert_eq!(
        strings(p.redact_argv(&bash).argv.get())[2],
        "mysql --password [REDACTED] -e 'select 1'"
    );
    // Passwords by the program that reads them, in argv and in a script.
    let argv: Vec<Vec<u8>> = [
        "curl",
        "-u",
        "bob:S3CRA29curl",
        "-H",
        "Authorization: Basic S3CRA30",
        "--user",
        "admin:S3CRA33",
        "--passcode=S3CRA35",
        "--pass-phrase",
        "S3CRA37",
        "-p",
        "8080",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    assert_eq!(
        strings(p.redact_argv(&argv).argv.get()),
        [
            "curl",
            "-u",
            "bob:[REDACTED]",
            "-H",
            "Authorization: [REDACTED]",
            "--user",
            "admin:[REDACTED]",
            "--passcode=[REDACTED]",
            "--pass-phrase",
            REDACTED,
            "-p",
            "8080",
        ]
    );
    for (argv, want) in [
        (
            &["mysql", "-pS3CRA31", "db"][..],
            &["mysql", "-p[REDACTED]", "db"][..],
        ),
        (&["mysql", "-p", "db"], &["mysql", "-p", "db"]),
        (
            &["sshpass", "-p", "S3CRA32", "ssh", "h"],
            &["sshpass", "-p", REDACTED, "ssh", "h"],
        ),
        (
            &["python", "t.py", "-p", "8", "-u", "a:b"],
            &["python", "t.py", "-p", "8", "-u", "a:b"],
        ),
        (
            &["docker", "run", "--user", "app:staff"],
            &["docker", "run", "--user", "app:staff"],
        ),
    ] {
        let argv: Vec<Vec<u8>> = argv.iter().map(|s| s.as_bytes().to_vec()).collect();
        assert_eq!(strings(p.redact_argv(&argv).argv.get()), want);
    }
    let script = [
        b"sh".to_vec(),
        b"-c".to_vec(),
        b"curl -u bob:pw1 http://x/; mysql -ppw2; sshpass -p pw3 true".to_vec(),
    ];
    assert_eq!(
        strings(p.redact_argv(&script).argv.get())[2],
        "curl -u bob:[REDACTED] http://x/; mysql -p[REDACTED]; sshpass -p [REDACTED] true"
    );
    // An argument that is not UTF-8 is searched too, and written back byte for byte.
    let latin1 = [b"x".to_vec(), b"--pass=caf\xe9-secret".to_vec()];
    let stored = p.redact_argv(&latin1);
    assert_eq!(stored.argv.get()[1], b"--pass=[REDACTED]");
}

#[test]
fn params_by_key_path_not_by_value() {
    let p = policy();
    let param = |k: &str, v: Value| Param {
        key: k.into(),
        value: v,
        source: "cfg.yaml".into(),
    };
    let params = p.redact_params(vec![
        param("auth.pass", Value::from("x1")),
        param("passwords.0", Value::from("x2")),
        param("db.password", Value::from(2048)),
        param("model.hidden_size", Value::from(2048)),
        param("tokenizer.pad_token_id", Value::from(0)),
        param("hf.use_auth_token", Value::from(true)),
        param("db.url", Value::from("mysql://root:x3@h/d")),
        param("generation.max_new_tokens", Value::from(256)),
    ]);
    let got: Vec<String> = params.get().iter().map(|p| p.value.to_string()).collect();
    assert_eq!(
        got,
        [
            "\"[REDACTED]\"",
            "\"[REDACTED]\"",
            "\"[REDACTED]\"",
            "2048",
            "0",
            "true",
            "\"mysql://root:***@h/d\"",
            "256"
        ]
    );
    let env_file = p.redact_params(vec![Param {
        key: "HOST".into(),
        value: Value::from("db.local"),
        source: "prod.env".into(),
    }]);
    assert_eq!(env_file.get()[0].value, Value::from(REDACTED));
}

#[test]
fn files_keep_their_real_hash_and_their_encoding() {
    let p = policy();
    let yaml = b"model:\n  hidden_size: 2048\ndb:\n  password: 2048\n".to_vec();
    let kept = p.keep(What::Config(Path::new("c.yaml")), yaml.clone(), &[]);
    assert_eq!(kept.hash, Hash::of(&yaml));
    let (hash, stored) = kept.blob.get();
    assert_eq!(Some(*hash), kept.redacted);
    let stored = String::from_utf8(stored.clone()).expect("utf-8");
    assert_eq!(
        stored,
        "model:\n  hidden_size: 2048\ndb:\n  password: [REDACTED]\n"
    );

    // UTF-16 with its BOM, written back as UTF-16.
    let utf16 = bytes::encode(
        bytes::Encoding::Utf16 {
            little_endian: true,
            bom: true,
        },
        "api_key = \"utf16-secret-1\"\nlr = 0.1\n",
    );
    let kept = p.keep(What::File("notes.ini"), utf16, &[]);
    let copy = &kept.blob.get().1;
    assert_eq!(&copy[..2], b"\xFF\xFE");
    let (_, text) = bytes::decode(copy);
    assert_eq!(text, "api_key = \"[REDACTED]\"\nlr = 0.1\n");

    // Latin-1, with its other bytes as they were.
    let latin1 = b"caf\xe9: 1\npassword: s\xe9cret-latin1\n".to_vec();
    let kept = p.keep(What::File("l.yaml"), latin1, &[]);
    assert_eq!(kept.blob.get().1, b"caf\xe9: 1\npassword: [REDACTED]\n");

    // A netrc entry, a Discord webhook, an auth header and a kaggle key, in any config.
    let cfg = b"machine h login bob password S3CRA04\nkaggle_key: S3CRA06\nhook: https://discord.com/api/webhooks/1/S3CRA09\nauth_header: \"Basic UzNDUkEwNWJhc2ljOnB3\"\nlr: 0.1\n".to_vec();
    let kept = p.keep(What::Config(Path::new("c.cfg")), cfg, &[]);
    let stored = String::from_utf8(kept.blob.get().1.clone()).expect("utf-8");
    for secret in ["S3CRA04", "S3CRA06", "S3CRA09", "UzNDUkEwNWJhc2ljOnB3"] {
        assert!(!stored.contains(secret), "{secret} in\n{stored}");
    }
    assert!(stored.contains("lr: 0.1"), "{stored}");

    // Nothing to redact: the real bytes under their real hash.
    let clean = b"lr: 0.1\n".to_vec();
    let kept = p.keep(What::Config(Path::new("c.yaml")), clean.clone(), &[]);
    assert_eq!(kept.redacted, None);
    assert_eq!(kept.blob.get(), &(Hash::of(&clean), clean));

    // Secret by its name: not kept at all.
    let kept = p.keep(What::File("id_rsa"), b"anything".to_vec(), &[]);
    assert_eq!(kept.blob.get().1, b"[REDACTED]\n");
}

#[test]
fn a_package_list_is_kept_as_it_is() {
    let p = policy();
    let list = b"numpy==1.26.4\nsecretstorage==3.3.3\ntokenizers==0.19.1\n".to_vec();
    let kept = p.keep(What::Packages, list.clone(), &[]);
    assert_eq!(kept.redacted, None);
    assert_eq!(kept.blob.get().1, list);
    let odd = b"x==1\ngit+https://u:pkg-pw@h/r\n".to_vec();
    let kept = p.keep(What::Packages, odd, &[]);
    assert_eq!(kept.blob.get().1, b"x==1\ngit+https://u:***@h/r\n");
}

#[test]
fn a_missed_known_value_is_replaced_only_as_a_whole_long_word() {
    let p = policy();
    // A YAML alias: the value is defined under a key that is not secret.
    let yaml = b"defaults: &d aliased-secret-1\nlr: 2048\ndb:\n  password: *d\n".to_vec();
    let kept = p.keep(
        What::Config(Path::new("c.yaml")),
        yaml,
        &["aliased-secret-1".into(), "2048".into()],
    );
    let stored = String::from_utf8(kept.blob.get().1.clone()).expect("utf-8");
    assert!(!stored.contains("aliased-secret-1"), "{stored}");
    assert!(stored.contains("lr: 2048"), "{stored}");
}

#[test]
fn sealing_searches_every_string_and_is_idempotent() {
    let p = policy();
    let mut c = Capture::default();
    c.env.insert("HF_TOKEN".into(), "env-secret-1".into());
    c.env.insert("HOME".into(), "/home/u".into());
    c.notes
        .push("config c.yaml: invalid YAML near password: note-secret-2".into());
    let sealed = p.seal(c);
    let json = serde_json::to_string(sealed.get()).expect("json");
    assert!(
        !json.contains("env-secret-1") && !json.contains("note-secret-2"),
        "{json}"
    );
    assert!(sealed.get().env_redacted.contains_key("HF_TOKEN"));
    let again = p.seal(sealed.get().clone());
    assert_eq!(
        serde_json::to_string(again.get()).expect("json"),
        json,
        "sealing twice changes nothing"
    );
}

#[test]
fn fingerprints_compare_without_revealing() {
    let p = policy();
    assert_eq!(p.fingerprint("a"), p.fingerprint("a"));
    assert_ne!(p.fingerprint("a"), p.fingerprint("b"));
    assert!(!p.fingerprint("hunter2").contains("hunter2"));
}

#[test]
fn a_pair_given_as_an_options_value_is_redacted() {
    let p = policy();
    let argv: Vec<Vec<u8>> = [
        "tool",
        "--env=PASSWORD=s1",
        "--build-arg=API_KEY=s2",
        "--set=db.password=s3",
        "--conf=spark.hadoop.fs.s3a.secret.key=s4",
        "--var=db_password=s5",
        "--from-literal=password=s6",
        "--extra-vars=ansible_password=s7",
        "--define=password=s8",
        "--env=\"HF_TOKEN=s9\"",
        "--env=LR=0.1",
        "--set=image.tag=v1",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let stored = strings(p.redact_argv(&argv).argv.get());
    assert_eq!(
        stored[1..],
        [
            "--env=PASSWORD=[REDACTED]",
            "--build-arg=API_KEY=[REDACTED]",
            "--set=db.password=[REDACTED]",
            "--conf=spark.hadoop.fs.s3a.secret.key=[REDACTED]",
            "--var=db_password=[REDACTED]",
            "--from-literal=password=[REDACTED]",
            "--extra-vars=ansible_password=[REDACTED]",
            "--define=password=[REDACTED]",
            "--env=\"HF_TOKEN=[REDACTED]\"",
            "--env=LR=0.1",
            "--set=image.tag=v1",
        ]
    );
    // In a script and in a config's string value too.
    assert_eq!(
        p.redact_text("docker run --env=HF_TOKEN=s10 img"),
        "docker run --env=HF_TOKEN=[REDACTED] img"
    );
    assert_eq!(
        p.redact_text("cmd: \"docker run --env=PASSWORD=s11 img\"\n"),
        "cmd: \"docker run --env=PASSWORD=[REDACTED] img\"\n"
    );
}

#[test]
fn name_value_pairs_and_argv_lists_in_configs() {
    let p = policy();
    let yaml = "env:\n  - name: OPENAI_API_KEY\n    value: s1\n  - name: LR\n    value: '0.1'\n  - {name: WANDB_API_KEY, value: s2}\n  - {key: HF_TOKEN, value: s3}\nargs: [\"--api-key\", \"s4\", \"--lr\", \"0.1\"]\ncommand:\n  - python\n  - --hf-token\n  - s5\n  - --epochs\n  - '3'\n";
    let out = p.redact_text(yaml);
    for s in ["s1", "s2", "s3", "s4", "s5"] {
        assert!(
            !out.contains(&format!("{s}\n"))
                && !out.contains(&format!("{s}\""))
                && !out.contains(&format!("{s}}}")),
            "{s} in {out}"
        );
    }
    assert!(out.contains("value: '0.1'"), "{out}");
    assert!(out.contains("\"--lr\", \"0.1\""), "{out}");
    assert!(out.contains("- '3'"), "{out}");
    let json = "{\"containers\": [{\"env\": [\n  {\"name\": \"OPENAI_API_KEY\",\n   \"value\": \"s6\"},\n  {\"name\": \"LR\", \"value\": \"1\"}],\n \"args\": [\"--api-key\",\n  \"s7\", \"--lr\", \"1\"]}]}";
    let out = p.redact_text(json);
    assert!(!out.contains("s6") && !out.contains("s7"), "{out}");
    assert!(
        out.contains("\"value\": \"1\"") && out.contains("\"--lr\", \"1\""),
        "{out}"
    );

    // The params, flattened: by their siblings.
    let param = |k: &str, v: &str| Param {
        key: k.into(),
        value: Value::from(v),
        source: "job.yaml".into(),
    };
    let params = p.redact_params(vec![
        param("env.0.name", "OPENAI_API_KEY"),
        param("env.0.value", "s8"),
        param("env.1.name", "LR"),
        param("env.1.value", "0.1"),
        param("args.0", "--api-key"),
        param("args.1", "s9"),
        param("args.2", "--lr"),
        param("args.3", "0.1"),
    ]);
    let got: Vec<&str> = params
        .get()
        .iter()
        .map(|p| p.value.as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        got,
        [
            "OPENAI_API_KEY",
            REDACTED,
            "LR",
            "0.1",
            "--api-key",
            REDACTED,
            "--lr",
            "0.1"
        ]
    );
    let known = p.secret_values(
        Path::new("job.yaml"),
        &[
            ("env.0.name".into(), Value::from("HF_TOKEN")),
            ("env.0.value".into(), Value::from("s10-long-value")),
        ],
    );
    assert_eq!(known, ["s10-long-value"]);
}

#[test]
fn connection_strings_and_positional_settings() {
    let p = policy();
    assert_eq!(
        p.redact_text("Server=h;Uid=u;Pwd=s1;"),
        "Server=h;Uid=u;Pwd=[REDACTED];"
    );
    assert_eq!(p.redact_text("PWD=/tmp/x"), "PWD=/tmp/x");
    let argv: Vec<Vec<u8>> = [
        "aws",
        "configure",
        "set",
        "aws_secret_access_key",
        "s2",
        "npm",
        "config",
        "set",
        "//registry.npmjs.org/:_authToken",
        "s3",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let stored = strings(p.redact_argv(&argv).argv.get());
    assert_eq!(stored[4], REDACTED);
    assert_eq!(stored[9], REDACTED);
    assert_eq!(
        p.redact_text(
            "dvc remote modify --local r password s4; git config --global credential.helper store"
        ),
        "dvc remote modify --local r password [REDACTED]; git config --global credential.helper store"
    );
}

#[test]
fn ml_settings_that_sound_like_secrets_stay_in_clear() {
    let p = policy();
    let argv: Vec<Vec<u8>> = [
        "ffmpeg",
        "-pass",
        "1",
        "--eval_pass",
        "2",
        "--passkey_depth",
        "0.5",
        "--response_token",
        "<|assistant|>",
        "--ignore_token",
        "-100",
        "--label_token=<l>",
        "--pass=2",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let stored = p.redact_argv(&argv);
    assert!(
        stored.fingerprints.is_empty(),
        "{:?}",
        strings(stored.argv.get())
    );
    // A longer value under `pass` is a password still; a marker under a credential is one.
    let argv: Vec<Vec<u8>> = ["x", "--pass", "hunter2", "--hf_token=<x>", "-pass", "1234"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(
        strings(p.redact_argv(&argv).argv.get()),
        [
            "x",
            "--pass",
            REDACTED,
            "--hf_token=[REDACTED]",
            "-pass",
            REDACTED
        ]
    );
    let json = r#"{"start_of_turn_token": "<start_of_turn>", "query_token": "[Q]", "eval": {"pass": 2, "final_pass": 1}, "passkey_len": 5, "auth": {"pass": 2}}"#;
    let out = p.redact_text(json);
    assert!(
        out.contains("\"<start_of_turn>\"") && out.contains("\"[Q]\""),
        "{out}"
    );
    assert!(out.contains("\"pass\": 2, \"final_pass\": 1"), "{out}");
    // Under a secret parent (`auth`), every value is secret.
    assert!(out.ends_with(r#""auth": {"pass": "[REDACTED]"}}"#), "{out}");
    let yaml = "eval:\n  pass: 1\nuser_token: \"<|user|>\"\ndb:\n  pass: 12345\n";
    assert_eq!(
        p.redact_text(yaml),
        "eval:\n  pass: 1\nuser_token: \"<|user|>\"\ndb:\n  pass: [REDACTED]\n"
    );
    let param = |k: &str, v: Value| Param {
        key: k.into(),
        value: v,
        source: "cfg.yaml".into(),
    };
    let params = p.redact_params(vec![
        param("eval.pass", Value::from(1)),
        param("eval.pass_str", Value::from("2")),
        param("chat.system_token", Value::from("<|system|>")),
        param("kv_cache.session_key", Value::from("run-42")),
    ]);
    let got: Vec<String> = params.get().iter().map(|p| p.value.to_string()).collect();
    assert_eq!(got, ["1", "\"2\"", "\"<|system|>\"", "\"[REDACTED]\""]);
}

#[test]
fn names_with_a_word_after_the_secret_word_and_bot_tokens() {
    for name in [
        "TELEGRAM_BOT_TOKEN",
        "DISCORD_BOT_TOKEN",
        "SLACK_BOT_TOKEN",
        "BOT_TOKEN",
        "SLACK_USER_TOKEN",
        "HF_TOKEN_WRITE",
        "OPENAI_API_KEY_PROD",
        "GITHUB_TOKEN_RO",
        "PRIVATE_KEY_BASE64",
        "WANDB_KEY_TEAM",
        "KEY_OPENAI",
        "TOKEN_GITHUB",
        "GH_PAT",
        "GITLAB_PAT",
        "passkey",
        "DB_PASSKEY",
        "session_key",
        "secret_sauce",
        "google_maps_key",
    ] {
        assert!(names::is_secret_name(name), "{name} should be secret");
    }
    for name in [
        "token_id",
        "key_dim",
        "max_tokens",
        "token_type_ids",
        "token_dropout",
        "token_embedding",
        "key_value_heads",
        "HF_TOKEN_PATH",
        "passkey_depth",
        "pass_key_depth",
        "response_token",
        "start_of_turn_token",
        "end_of_turn_token",
        "system_token",
        "user_token",
        "query_token",
        "ignore_token",
        "tool_call_token",
        "pat",
    ] {
        assert!(!names::is_secret_name(name), "{name} should stay clear");
    }
    // Secret by a weak word: its small counts stay in clear (`--eval_pass 2`).
    assert_eq!(names::secrecy("eval_pass"), names::Secrecy::Weak);
}

#[test]
fn a_name_value_pair_with_its_value_first() {
    let p = policy();
    assert_eq!(
        p.redact_text("env:\n  - value: s1\n    name: HF_TOKEN\n  - value: '0.1'\n    name: LR\n"),
        "env:\n  - value: [REDACTED]\n    name: HF_TOKEN\n  - value: '0.1'\n    name: LR\n"
    );
    assert_eq!(
        p.redact_text("env: [{value: s2, name: OPENAI_API_KEY}, {value: '1', name: LR}]\n"),
        "env: [{value: [REDACTED], name: OPENAI_API_KEY}, {value: '1', name: LR}]\n"
    );
    assert_eq!(
        p.redact_text(r#"{"env": [{"value": "s3", "name": "HF_TOKEN"}]}"#),
        r#"{"env": [{"value": "[REDACTED]", "name": "HF_TOKEN"}]}"#
    );
}

/// A key whose qualifier is its parent's name (`api:` then `key:`; TOML's `[api]` then
/// `key =`; Hadoop's `fs.s3a.access.key`) is judged as the whole path read as one name,
/// as `api_key` would be; nested ML settings whose parent is no qualifier stay.
#[test]
fn a_key_qualified_by_its_parent_is_secret() {
    assert!(names::is_secret_path("fs.s3a.access.key"));
    assert!(names::is_secret_path("api.key"));
    assert!(names::is_secret_path("storage.account.key"));
    assert!(names::is_secret_path(
        "fs.azure.account.key.acct.blob.core.windows.net"
    ));
    for path in [
        "attention.key.dim",
        "dataset.text.key",
        "model.num.key.value.heads",
        "sort.key",
        "cache.key.prefix",
        "storage.key_prefix",
        "storage.key_template",
        "account.key_vault",
    ] {
        assert!(!names::is_secret_path(path), "{path} should stay clear");
    }
    let p = policy();
    for (text, kept) in [
        ("api:\n  key: zq1x\n  base: https://x\n", "base: https://x"),
        ("[api]\nkey = \"zq2x\"\nretries = 3\n", "retries = 3"),
        ("[storage.account]\nkey = zq3x\n", "[storage.account]"),
        (
            "aws:\n  access:\n    key: zq4x\n  region: eu\n",
            "region: eu",
        ),
        (r#"{"api": {"key": "zq5x", "url": "u"}}"#, r#""url": "u""#),
        (r#"[{"aws": {"access": {"keys": ["zq6x"]}}}]"#, "aws"),
        (
            "fs.s3a.access.key=zq7x\nfs.s3a.endpoint=e\n",
            "fs.s3a.endpoint=e",
        ),
        (
            "<property><name>fs.s3a.access.key</name><value>zq8x</value></property>",
            "fs.s3a.access.key",
        ),
    ] {
        let out = p.redact_text(text);
        for secret in [
            "zq1x", "zq2x", "zq3x", "zq4x", "zq5x", "zq6x", "zq7x", "zq8x",
        ] {
            assert!(!out.contains(secret), "{secret} kept in {out:?}");
        }
        assert!(out.contains(kept), "{kept} lost in {out:?}");
    }
    // Okta's scheme after a key that is not secret.
    assert_eq!(
        p.redact_text("hdr: SSWS 00QCjAl4MlV-WPXM\n"),
        "hdr: SSWS [REDACTED]\n"
    );
    assert_eq!(
        p.redact_text("hdr: ssws 00QCjAl4MlV-WPXM\n"),
        "hdr: ssws [REDACTED]\n"
    );
    for text in [
        // A prompt's lines are text: `key: value` in it is no `openai.key`.
        "openai:\n  system_prompt: |\n    Reply in YAML like:\n    key: value\n  model: gpt\n",
        "attention:\n  key: 64\n",
        "dataset:\n  key: text\n",
        "[model]\nkey = \"input_ids\"\n",
        r#"{"sort": {"key": "loss"}}"#,
    ] {
        assert_eq!(p.redact_text(text), text, "over-redacted");
    }
}

#[test]
fn a_name_value_pair_split_across_arguments_keeps_the_value_out_of_the_command() {
    let p = policy();
    let argv =
        |words: &[&str]| -> Vec<Vec<u8>> { words.iter().map(|s| s.as_bytes().to_vec()).collect() };
    // Each half alone says nothing; together, the value is a secret's.
    let stored = p.redact_argv(&argv(&[
        "python",
        "train.py",
        "e.var=AWS_SECRET_ACCESS_KEY",
        "e.val=hunter2",
        "+f.name=HOME",
        "+f.value=/home/u",
        "--g.name",
        "WANDB_API_KEY",
        "--g.value",
        "abc123",
        "lr=0.1",
    ]));
    assert_eq!(
        strings(stored.argv.get()),
        [
            "python",
            "train.py",
            "e.var=AWS_SECRET_ACCESS_KEY",
            "e.val=[REDACTED]",
            "+f.name=HOME",
            "+f.value=/home/u",
            "--g.name",
            "WANDB_API_KEY",
            "--g.value",
            REDACTED,
            "lr=0.1",
        ]
    );
    assert_eq!(
        stored.fingerprints.keys().copied().collect::<Vec<_>>(),
        [3, 9],
        "a rerun asks for exactly the arguments changed"
    );
    // Other spellings of the two halves of one parent.
    for (words, want) in [
        (
            &["t", "--env-name", "OPENAI_API_KEY", "--env-value", "s1"][..],
            &["t", "--env-name", "OPENAI_API_KEY", "--env-value", REDACTED][..],
        ),
        (
            &["t", "env_name=WANDB_API_KEY", "env_value=s2"],
            &["t", "env_name=WANDB_API_KEY", "env_value=[REDACTED]"],
        ),
        (
            &["t", "envName=WANDB_API_KEY", "envValue=s3"],
            &["t", "envName=WANDB_API_KEY", "envValue=[REDACTED]"],
        ),
        (
            &[
                "t",
                "--set",
                "env[0].name=HF_TOKEN",
                "--set",
                "env[0].value=s4",
            ],
            &[
                "t",
                "--set",
                "env[0].name=HF_TOKEN",
                "--set",
                "env[0].value=[REDACTED]",
            ],
        ),
        (
            &["t", "--name", "WANDB_API_KEY", "--value", "s6"],
            &["t", "--name", "WANDB_API_KEY", "--value", REDACTED],
        ),
        (
            &[
                "aws",
                "ssm",
                "put-parameter",
                "--name",
                "/prod/db/password",
                "--value",
                "s7",
            ],
            &[
                "aws",
                "ssm",
                "put-parameter",
                "--name",
                "/prod/db/password",
                "--value",
                REDACTED,
            ],
        ),
        (
            &[
                "az",
                "keyvault",
                "secret",
                "set",
                "--name",
                "DB-PASSWORD",
                "--value",
                "s8",
            ],
            &[
                "az",
                "keyvault",
                "secret",
                "set",
                "--name",
                "DB-PASSWORD",
                "--value",
                REDACTED,
            ],
        ),
        (
            &[
                "helm",
                "--set",
                "env.name=AWS_SECRET_ACCESS_KEY,env.value=s5,replicas=2",
            ],
            &[
                "helm",
                "--set",
                "env.name=AWS_SECRET_ACCESS_KEY,env.value=[REDACTED],replicas=2",
            ],
        ),
        // Inside a script given as one argument, and with a colon between the parts.
        (
            &[
                "bash",
                "-c",
                "python t.py e.var=AWS_SECRET_ACCESS_KEY e.val=hunter2 --lr 0.1",
            ],
            &[
                "bash",
                "-c",
                "python t.py e.var=AWS_SECRET_ACCESS_KEY e.val=[REDACTED] --lr 0.1",
            ],
        ),
        (
            &[
                "sh",
                "-c",
                "helm install x --set env.name=HF_TOKEN,env.value='s 9'&&echo done",
            ],
            &[
                "sh",
                "-c",
                "helm install x --set env.name=HF_TOKEN,env.value=[REDACTED]&&echo done",
            ],
        ),
        (
            &[
                "sh",
                "-c",
                "aws ssm put-parameter --name /prod/db/password --value \"s 10\"; \
                 mysql --password hunter3",
            ],
            &[
                "sh",
                "-c",
                "aws ssm put-parameter --name /prod/db/password --value \"[REDACTED]\"; \
                 mysql --password [REDACTED]",
            ],
        ),
        (
            &["t", "env:name=DB_PASSWORD", "env:value=s11"],
            &["t", "env:name=DB_PASSWORD", "env:value=[REDACTED]"],
        ),
        (
            &["sh", "-c", "t \"e.name=OPENAI_API_KEY\" 'e.value=s12' é\\"],
            &[
                "sh",
                "-c",
                "t \"e.name=OPENAI_API_KEY\" 'e.value=[REDACTED]' é\\",
            ],
        ),
    ] {
        assert_eq!(strings(p.redact_argv(&argv(words)).argv.get()), want);
    }
    // A value with no name beside it, a harmless name, halves of different parents, and a
    // bare --name/--val (a run's name and a validation set): stay.
    for words in [
        &["python", "t.py", "e.val=hunter2"][..],
        &["python", "t.py", "e.name=lr", "e.value=0.1"][..],
        &["python", "t.py", "a.name=WANDB_API_KEY", "b.value=0.1"][..],
        &[
            "python",
            "t.py",
            "--name",
            "secret_detector",
            "--val",
            "data/val.jsonl",
        ][..],
        &[
            "python",
            "t.py",
            "--dataset-name",
            "secret_detector",
            "--dataset-val",
            "v.jsonl",
        ][..],
        &[
            "python",
            "t.py",
            "--task-name",
            "secret-santa",
            "--task-val",
            "0.2",
        ][..],
        &["python", "t.py", "--sort-key", "auth", "--sort-val", "desc"][..],
        &[
            "python",
            "t.py",
            "dataset.name=secret_detector",
            "dataset.val=v.jsonl",
        ][..],
        &[
            "bash",
            "-c",
            "python t.py --name secret_detector --val data/val.jsonl",
        ][..],
        &[
            "python",
            "gen.py",
            "--prompt",
            "name a key-value store; value it",
        ][..],
    ] {
        assert_eq!(strings(p.redact_argv(&argv(words)).argv.get()), words);
    }
}

/// A long value searched once is not searched again (a CUDA image's `NVIDIA_REQUIRE_CUDA`,
/// 2,000 characters, at each seal), and what is remembered stays within its budget.
#[test]
fn long_texts_are_searched_once_within_a_budget() {
    let p = policy();
    let require = "cuda>=13.0 ".to_string() + &"brand=tesla,driver>=535,driver<536 ".repeat(60);
    assert!(require.len() > 2000);
    assert_eq!(p.redact("NVIDIA_REQUIRE_CUDA", &require), None);
    assert!(p.seen.lock().expect("seen").texts.contains_key(&require));
    let secret = format!("{require} password=hunter2");
    let once = p.redact_text(&secret);
    assert!(!once.contains("hunter2"), "{once}");
    assert_eq!(p.redact_text(&secret), once);
    // Over the length: searched each time, never kept.
    let huge = "x".repeat(SEEN_LEN + 1);
    assert_eq!(p.redact_text(&huge), huge);
    assert!(!p.seen.lock().expect("seen").texts.contains_key(&huge));
    // Many texts: no more than the budgets are held.
    for i in 0..SEEN_COUNT + 8 {
        let _ = p.redact_text(&format!("short {i}"));
    }
    assert!(p.seen.lock().expect("seen").texts.len() <= SEEN_COUNT);
    let p = policy();
    for i in 0..(SEEN_BYTES / SEEN_LEN + 8) {
        let text = format!("{i} {}", "y".repeat(SEEN_LEN - 16));
        assert_eq!(p.redact_text(&text), text);
    }
    let seen = p.seen.lock().expect("seen");
    let held: usize = seen.texts.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(held, seen.bytes);
    assert!(seen.bytes <= SEEN_BYTES, "{}", seen.bytes);
}

/// What an attacking trial found in the first version of the script reading: each value
/// stays out of the stored command, whatever its blanks, commas, quotes or nesting; a few
/// ordinary commands stay as given; and none of it panics.
#[test]
fn split_secrets_an_attacking_trial_found_stay_out_of_the_command() {
    let p = policy();
    let token = format!(
        "ghp_{}",
        "a1B2c3D4e5".repeat(4).get(..36).unwrap_or_default()
    );
    let curl_user = format!("{token}:x-oauth-basic");
    let token_kept = [token.as_str()];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec![
                "echo",
                "t.py",
                "--name",
                "WANDB_API_KEY",
                "--value",
                "leak12 XXXX-12",
            ],
            &["leak12", "XXXX-12"],
        ),
        (
            vec![
                "echo",
                "t.py",
                "e.var=AWS_SECRET_ACCESS_KEY",
                "e.val=leak11 XXXX-11",
            ],
            &["leak11", "XXXX-11"],
        ),
        (
            vec![
                "helm",
                "--set",
                "env.name=AWS_SECRET_ACCESS_KEY,env.value=leak13 XXXX-13",
            ],
            &["leak13", "XXXX-13"],
        ),
        (
            vec![
                "curl",
                "--form",
                "key=DB_PASSWORD",
                "--form",
                "value=my XXXX91 phrase",
            ],
            &["XXXX91", "phrase"],
        ),
        (
            vec!["t", "e.var=AWS_SECRET_ACCESS_KEY", "e.val=leak2,XXXX-2"],
            &["leak2", "XXXX-2"],
        ),
        (
            vec![
                "sh",
                "-c",
                "echo e.var=AWS_SECRET_ACCESS_KEY e.val='leak1,XXXX-1234'",
            ],
            &["leak1", "XXXX-1234"],
        ),
        (
            vec![
                "helm",
                "--set",
                "env[0].name=AWS_SECRET_ACCESS_KEY,env[0].value=abc\\,leak4-XXXX",
            ],
            &["leak4"],
        ),
        (
            vec![
                "bash",
                "-c",
                "# don't worry\necho t.py e.var=AWS_SECRET_ACCESS_KEY e.val=leak17",
            ],
            &["leak17"],
        ),
        (
            vec![
                "bash",
                "-c",
                "echo $'it\\'s' ; echo t.py e.var=AWS_SECRET_ACCESS_KEY e.val=leak16",
            ],
            &["leak16"],
        ),
        (
            vec![
                "sh",
                "-c",
                "echo t.py --name WANDB_API_KEY \\\n--value leak60",
            ],
            &["leak60"],
        ),
        (
            vec![
                "sh",
                "-c",
                "echo 'x e.var=AWS_SECRET_ACCESS_KEY e.val=leak52",
            ],
            &["leak52"],
        ),
        (
            vec![
                "sh",
                "-c",
                "ssh host 'python t.py --name AWS_SECRET_ACCESS_KEY --value leak14'",
            ],
            &["leak14"],
        ),
        (
            vec![
                "sh",
                "-c",
                "docker exec c sh -c 'python t.py e.var=AWS_SECRET_ACCESS_KEY e.val=leak15'",
            ],
            &["leak15"],
        ),
        (
            vec![
                "helm",
                "install",
                "x",
                "--set=env.name=AWS_SECRET_ACCESS_KEY,env.value=leak3-XXXX",
            ],
            &["leak3"],
        ),
        (
            vec!["curl", "-d", "name=AWS_SECRET_ACCESS_KEY&value=leak92"],
            &["leak92"],
        ),
        (
            vec!["curl", "https://x/api?name=HF_TOKEN&value=leak93"],
            &["leak93"],
        ),
        (
            vec![
                "sh",
                "-c",
                "t.py \"e.var\"=AWS_SECRET_ACCESS_KEY \"e.val\"=leak7",
            ],
            &["leak7"],
        ),
        (
            vec![
                "sh",
                "-c",
                "t.py e.var=AWS_SECRET_ACCESS_KE\"Y\" e.v\"a\"l=leak5",
            ],
            &["leak5"],
        ),
        (
            vec!["t", "--name", "PGPASSWORD", "--value", "leak20"],
            &["leak20"],
        ),
        (
            vec!["t", "e.var=OPENAI_API_KEY_2", "e.val=leak21"],
            &["leak21"],
        ),
        (vec!["curl", "-u", &curl_user, "http://x"], &token_kept),
        // Two readings found the same value (and one its `value=` part): replaced once.
        (
            vec![
                "echo",
                "t.py",
                "--name",
                "WANDB_API_KEY",
                "--value",
                "value=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
            &["aaaaaaaaaaaaaaaaaaaa"],
        ),
        (
            vec![
                "sh",
                "-c",
                "python3 t.py --name HF_TOKEN --val val=data/very/long/validation/path.jsonl",
            ],
            &["validation/path"],
        ),
        (
            vec![
                "echo",
                "t.py",
                "--name",
                "WANDB_API_KEY",
                "--value",
                "value=ab",
            ],
            &["=ab"],
        ),
    ];
    for (words, secrets) in &cases {
        let argv: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let stored = strings(p.redact_argv(&argv).argv.get()).join(" ");
        for secret in *secrets {
            assert!(!stored.contains(secret), "{secret} kept: {stored}");
        }
        assert!(!stored.contains("EDACTED]EDACTED"), "{stored}");
    }
    // Bytes that begin like UTF-16 are not read as UTF-16: no argument can hold a NUL.
    let stored = p.redact_argv(&[b"echo".to_vec(), b"\xff\xfe password=leak78 ".to_vec()]);
    assert!(!contains_bytes(&stored.argv.get()[1], b"leak78"));
    // Ordinary commands stay as given: a name and a value of different statements.
    for words in [
        &[
            "sh",
            "-c",
            "aws ssm get-parameter --name /ml/hf/token --query x; python train.py --val data/val.jsonl",
        ][..],
        &[
            "sh",
            "-c",
            "python t.py --name my_run --val data/val.jsonl && echo done",
        ][..],
    ] {
        let argv: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        assert_eq!(strings(p.redact_argv(&argv).argv.get()), words);
    }
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What a second attacking trial found: JSON with escaped quotes in a script, a value with
/// blanks in a script in a script, an acronym before the secret's word, a version after it,
/// backquotes; and ML names ending in `token` that are not credentials.
#[test]
fn split_secrets_a_second_trial_found_stay_out_and_ml_names_stay_in() {
    let p = policy();
    let stored = |words: &[&str]| {
        let argv: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        strings(p.redact_argv(&argv).argv.get())
    };
    for (words, secret) in [
        (
            &[
                "bash",
                "-c",
                r#"curl -d "{\"password\":\"leakK-187\"}" http://x"#,
            ][..],
            "leakK-187",
        ),
        (
            &[
                "bash",
                "-c",
                r#"curl -d "{\"name\":\"HF_TOKEN\",\"value\":\"leakK-188\"}" http://x"#,
            ],
            "leakK-188",
        ),
        (
            &[
                "bash",
                "-c",
                r#"ssh host 'python t.py --name HF_TOKEN --value "leakA-32 tail-32"'"#,
            ],
            "tail-32",
        ),
        (
            &[
                "az", "keyvault", "secret", "set", "--name", "SASToken", "--value", "leakA-40",
            ],
            "leakA-40",
        ),
        (
            &["t", "--name", "JWTSecret", "--value", "leakA-41"],
            "leakA-41",
        ),
        (
            &["t", "--name", "HFToken", "--value", "leakA-42"],
            "leakA-42",
        ),
        (
            &[
                "bash",
                "-c",
                "python t.py --name HF_TOKEN --value `printf leakA-21`",
            ],
            "leakA-21",
        ),
        (
            &["t", "--name", "/ml/hf/token", "--value", "leakA-44"],
            "leakA-44",
        ),
        (&["t", "e.var=api_key", "e.val=leakA-45"], "leakA-45"),
    ] {
        let out = stored(words).join(" ");
        assert!(!out.contains(secret), "{secret} kept: {out}");
    }
    for words in [
        &[
            "python",
            "eval.py",
            "--metric-name",
            "loss_per_token",
            "--metric-value",
            "2.31",
        ][..],
        &[
            "python",
            "train.py",
            "model.name=llama",
            "data.key=input_token",
            "data.val=data/val.jsonl",
        ],
        &["t", "--name", "token", "--value", "3"],
        &["t", "loss.name=masked_token", "loss.value=0.5"],
        &["t", "tokenizer.name=bpe_token", "tokenizer.value=32000"],
        &[
            "bash",
            "-c",
            "python t.py --name sort_key --val desc && echo \"{\\\"lr\\\": 0.1}\"",
        ],
    ] {
        assert_eq!(stored(words), words);
    }
}

/// A name/value pair split across the words of a text that is not a command line: a
/// variable holding one, a note, a config's `command:` string, a script kept as code.
#[test]
fn split_pairs_in_free_text_stay_out() {
    let p = policy();
    let env = p.redact(
        "TRAIN_ARGS",
        "--name WANDB_API_KEY --value leakE-1 --lr 0.1",
    );
    assert_eq!(
        env.as_deref(),
        Some("--name WANDB_API_KEY --value [REDACTED] --lr 0.1")
    );
    let note =
        p.redact_note("rotated: aws ssm put-parameter --name /prod/db/password --value leakN-1");
    assert!(!note.get().contains("leakN-1"), "{}", note.get());
    let config = b"steps:\n  - command: aws ssm put-parameter --name /prod/db/password --value leakC-1\n  - lr: 0.1\n".to_vec();
    let kept = p.keep(What::Config(Path::new("job.yaml")), config, &[]);
    let copy = String::from_utf8(kept.blob.get().1.clone()).expect("utf8");
    assert!(!copy.contains("leakC-1"), "{copy}");
    assert!(copy.contains("lr: 0.1"), "{copy}");
    let script =
        b"#!/bin/sh\nhelm upgrade x --set env.name=HF_TOKEN,env.value=leakS-1\necho done\n"
            .to_vec();
    let kept = p.keep(What::File("deploy.sh"), script, &[]);
    let copy = String::from_utf8(kept.blob.get().1.clone()).expect("utf8");
    assert!(!copy.contains("leakS-1"), "{copy}");
    // Prose that names no secret stays.
    for text in [
        "set the name and the value of each key in the table",
        "--name resnet50_key_frames --val data/val.jsonl",
    ] {
        assert_eq!(p.redact_text(text), text);
    }
}

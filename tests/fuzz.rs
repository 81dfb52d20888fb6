//! Property tests (fuzzing with proptest): the config parsers, secret redaction and run-id
//! resolution take arbitrary input without panicking, and redaction never lets a planted
//! secret through. `PROPTEST_CASES=100000 cargo test --release --test fuzz` runs a longer
//! campaign; docs/reliability.md records the last one.

use std::path::Path;

use lineage::capture::config;
use lineage::redact::{Policy, REDACTED, What};
use lineage::store::Store;
use proptest::prelude::*;

fn policy() -> Policy {
    Policy::new(&[], &[], &[], [9; 32]).expect("policy")
}

proptest! {
    #[test]
    fn config_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                  ext in prop::sample::select(vec!["yaml", "yml", "json", "toml", "cfg", ""])) {
        let path = format!("config.{ext}");
        let _ = config::parse(Path::new(&path), &bytes);
    }

    #[test]
    fn config_parsers_never_panic_on_near_valid_text(
        text in "([a-z_]{1,8}(: |=| = )(\\[|\\{|\"|'|-)?[a-z0-9.:, \\[\\]{}\"'-]{0,12}\n){0,20}",
        ext in prop::sample::select(vec!["yaml", "json", "toml", "txt"]))
    {
        let path = format!("c.{ext}");
        if let Ok(params) = config::parse(Path::new(&path), text.as_bytes()) {
            // Keys are flat: nested maps became dotted names.
            for (k, v) in params {
                prop_assert!(!k.is_empty());
                prop_assert!(!v.is_object() || v.as_object().is_some_and(|o| o.is_empty()));
            }
        }
    }

    #[test]
    fn redaction_never_panics_and_never_lets_a_planted_secret_through(
        name in "[A-Z_]{1,12}",
        noise in "[ -~]{0,40}",
        secret in "[A-Za-z0-9]{36}",
        kind in 0usize..5)
    {
        let p = policy();
        let (var, value, plain) = match kind {
            // (`PAD_TOKEN`, `NO_PASSWORD` are not secret names: a prefix keeps them secret.)
            0 => (format!("X{name}_ACCESS_TOKEN"), secret.clone(), secret.clone()),
            1 => (name.clone(), format!("ghp_{secret}"), format!("ghp_{secret}")),
            2 => (name.clone(), format!("{noise} hf_{secret}"), format!("hf_{secret}")),
            3 => (name.clone(), format!("postgres://user:{secret}@db/x"), secret.clone()),
            // (A value after a secret flag that starts with `-` is taken for the next option.)
            _ => (
                format!("X{name}_PASSWORD"),
                noise.trim_start_matches('-').to_string() + &secret,
                secret.clone(),
            ),
        };
        let stored = p.redact(&var, &value).unwrap_or(value.clone());
        prop_assert!(!stored.contains(&plain), "{var}={value} stored as {stored}");
        // The argv form: flag, flag=value, key=value and bare values.
        let argv: Vec<Vec<u8>> = vec![
            b"prog".to_vec(),
            format!("--{}", var.to_lowercase().replace('_', "-")).into_bytes(),
            value.clone().into_bytes(),
            format!("--{}={value}", var.to_lowercase()).into_bytes(),
            noise.clone().into_bytes(),
        ];
        let r = p.redact_argv(&argv);
        prop_assert_eq!(r.argv.get().len(), argv.len());
        for a in r.argv.get() {
            let a = String::from_utf8_lossy(a);
            prop_assert!(!a.contains(&plain) || a.contains(REDACTED), "{a}");
        }
        let _ = p.redact_argv(&[noise.into_bytes()]);
    }

    #[test]
    fn arbitrary_bytes_in_arguments_never_panic(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let r = policy().redact_argv(&args);
        prop_assert_eq!(r.argv.get().len(), args.len());
    }

    /// Scripts given as one argument, made of the pieces the name/value rule reads inside
    /// them (quotes, escapes, separators, a character of two bytes): never a panic.
    #[test]
    fn scripts_with_name_value_pairs_never_panic(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            "e.name=", "e.value=", "env:name=", "HF_TOKEN", " ", "'", "\"", "\\", "é", ";",
            ",", "--name", "--value", "x", "&&", "(", "\t",
        ]), 0..40),
    ) {
        let script: String = pieces.concat();
        let args = vec![b"sh".to_vec(), b"-c".to_vec(), script.into_bytes(), b"--value".to_vec()];
        let r = policy().redact_argv(&args);
        prop_assert_eq!(r.argv.get().len(), args.len());
    }

    #[test]
    fn arbitrary_bytes_in_files_never_panic_and_keep_their_hash(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        text in "\\PC{0,200}",
        kind in 0usize..4)
    {
        let p = policy();
        let mut planted = bytes.clone();
        planted.extend_from_slice(text.as_bytes());
        planted.extend_from_slice(b"\npassword: planted-fuzz-secret\n");
        let what = match kind {
            0 => What::Patch,
            1 => What::File(".env"),
            2 => What::Config(std::path::Path::new("c.yaml")),
            _ => What::Text,
        };
        let kept = p.keep(what, planted.clone(), &[]);
        prop_assert_eq!(kept.hash, lineage::model::Hash::of(&planted));
        prop_assert!(!String::from_utf8_lossy(&kept.blob.get().1).contains("planted-fuzz-secret"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn run_id_resolution_takes_any_prefix(prefix in "\\PC{0,40}") {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        // An empty store: every prefix is unknown, none crashes the query.
        prop_assert!(store.resolve(Some(&prefix)).is_err());
    }
}

//! `doctor --repair` never panics: a fixed-seed campaign of random corruptions of a real
//! store (bytes flipped and files cut short in the database and its WAL, and text columns
//! given bytes that are not UTF-8), each followed by `doctor --repair` and `doctor`, which
//! must exit 0 or 1 (never 101, never "panicked") within a hang guard.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::Pipeline;
use crate::util::*;

/// A small deterministic generator (xorshift64*): the same seed, the same campaign.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A store with the fixture pipeline's runs, plus rows that stay in the WAL (written with
/// checkpoints off), to corrupt copies of.
fn template() -> (Pipeline, Vec<(String, String)>) {
    let p = Pipeline::new();
    let db = p.env.store.join("lineage.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    // Most of it in the database file, the last writes in the WAL.
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    assert_eq!(busy, 0, "checkpoint of {log} pages: {done} done");
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("pragma");
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .expect("no checkpoint on close");
    conn.execute_batch("UPDATE edges SET changed = 0; UPDATE runs SET cwd = cwd || '';")
        .expect("write to the wal");
    let mut text_columns = Vec::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    for t in tables {
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .expect("count");
        if rows == 0 {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({t})"))
            .expect("info");
        let cols: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("columns");
        for (c, ty) in cols {
            if ty.eq_ignore_ascii_case("TEXT") {
                text_columns.push((t.clone(), c));
            }
        }
    }
    drop(conn);
    assert!(
        p.env.store.join("lineage.db-wal").exists(),
        "the template has a WAL"
    );
    (p, text_columns)
}

fn copy_store(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").filter_map(Result::ok) {
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// Apply corruption number `i` to the store in `dir`; returns what was done.
fn corrupt(dir: &Path, rng: &mut Rng, i: u64, text_columns: &[(String, String)]) -> String {
    let db = dir.join("lineage.db");
    let wal = dir.join("lineage.db-wal");
    let flip = |path: &PathBuf, rng: &mut Rng| {
        let mut bytes = std::fs::read(path).expect("read");
        let n = 1 + rng.below(8);
        for _ in 0..n {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        std::fs::write(path, bytes).expect("write");
        format!("{n} bits flipped in {}", path.display())
    };
    let cut = |path: &PathBuf, rng: &mut Rng| {
        let len = std::fs::metadata(path).expect("stat").len();
        let to = rng.below(len);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        f.set_len(to).expect("truncate");
        format!("{} cut to {to} of {len} bytes", path.display())
    };
    match i % 5 {
        0 => flip(&db, rng),
        1 => cut(&db, rng),
        2 => flip(&wal, rng),
        3 => cut(&wal, rng),
        _ => {
            let (t, c) = &text_columns[rng.below(text_columns.len() as u64) as usize];
            let bad: &[u8] = match rng.below(4) {
                0 => b"\xff\xfe",
                1 => b"run-\xc3\x28-\x80",
                // Valid UTF-8, but not ASCII: byte offsets are not character boundaries.
                2 => "é✓🙂é✓🙂".as_bytes(),
                _ => b"\xed\xa0\x80 surrogate",
            };
            let conn = rusqlite::Connection::open(&db).expect("open");
            conn.pragma_update(None, "ignore_check_constraints", "ON")
                .expect("pragma");
            let as_text = rng.below(2) == 0;
            let sql = if as_text {
                format!(
                    "UPDATE {t} SET {c} = CAST(?1 AS TEXT) WHERE {c} IN (SELECT {c} FROM {t} LIMIT 1 OFFSET ?2)"
                )
            } else {
                format!(
                    "UPDATE {t} SET {c} = ?1 WHERE {c} IN (SELECT {c} FROM {t} LIMIT 1 OFFSET ?2)"
                )
            };
            let offset = rng.below(3) as i64;
            let r = conn.execute(&sql, rusqlite::params![bad, offset]);
            format!(
                "{t}.{c} = {bad:?} (as {}): {r:?}",
                if as_text { "text" } else { "blob" }
            )
        }
    }
}

fn campaign(trials: u64, seed: u64) {
    let (p, text_columns) = template();
    let scratch = p.env.root().join("fuzz-store");
    let mut rng = Rng(seed);
    let mut outcomes = [0usize; 2];
    for i in 0..trials {
        copy_store(&p.env.store, &scratch);
        let what = corrupt(&scratch, &mut rng, i, &text_columns);
        if std::env::var_os("LINEAGE_FUZZ_VERBOSE").is_some() {
            eprintln!("trial {i}: {what}");
        }
        for args in [
            &["doctor", "--repair"][..],
            &["doctor"],
            &["list", "--json"],
        ] {
            let mut cmd = p.env.lineage();
            cmd.args(args).env("LINEAGE_STORE", &scratch);
            let out = output_within(cmd, Duration::from_secs(60));
            let err = stderr(&out);
            assert!(
                !err.contains("panicked") && out.status.code().is_some_and(|c| c < 100),
                "trial {i} ({what}): `lineage {}` exited {:?}: {err}{}",
                args.join(" "),
                out.status.code(),
                stdout(&out)
            );
            if args == ["doctor", "--repair"] {
                outcomes[usize::from(code(&out) != 0)] += 1;
            }
        }
    }
    eprintln!(
        "{trials} corruptions: doctor --repair exit 0 {} times, 1 {} times",
        outcomes[0], outcomes[1]
    );
}

#[test]
fn doctor_repair_never_panics_on_a_few_random_corruptions() {
    campaign(25, 0x5eed_0015);
}

#[test]
#[ignore = "slow: 500 corruptions, each with doctor --repair, doctor and list (a few minutes)"]
fn doctor_repair_never_panics_on_500_random_corruptions() {
    campaign(500, 0x1ee5_0015);
}

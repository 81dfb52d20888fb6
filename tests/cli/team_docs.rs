//! docs/team-store.md, followed literally: `scripts/check-team-store-docs.sh` sets up a fresh
//! PostgreSQL server as the page says (a non-superuser admin, TLS, the roles, the owner's
//! `lineage team migrate`) and runs every marked command block verbatim, as three members
//! and a reader, checking between the steps what the page says follows.

use std::process::Command;

#[test]
#[ignore = "starts servers and runs the documented setup; .ci/run runs it"]
fn the_team_store_page_works_when_followed_literally() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/check-team-store-docs.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .env("LINEAGE", env!("CARGO_BIN_EXE_lineage"))
        .output()
        .expect("bash runs the script");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

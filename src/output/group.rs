//! Distributed jobs as one logical run (docs/recording.md, "Distributed jobs"): the ranks of
//! a launch as `show` lists them under a member, the cells `list` shows for the launch's one
//! row, their resources added up, and the JSON of it all.

use std::collections::{BTreeMap, HashMap};

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{Cell, ContentArrangement, Table};
use serde::Serialize;

use super::{bytes, duration, escape, seconds};
use crate::model::{Group, GroupMember, GroupRow, Resources, Status};

/// `4 ranks`, or `3 of 4 ranks` while some are not (or never were) recorded here.
pub fn ranks(row: &GroupRow) -> String {
    let (n, of) = (row.members.len(), row.group.world_size as usize);
    if n == of {
        format!("{n} ranks")
    } else {
        format!("{n} of {of} ranks")
    }
}

/// What `list` adds to the launch's status: which ranks failed, were interrupted or still
/// run (`rank 1 exit 3`, `ranks 1, 3`); nothing when all succeeded.
pub fn status_detail(row: &GroupRow) -> String {
    let status = row.status();
    if status == Status::Succeeded {
        return String::new();
    }
    let which: Vec<&GroupMember> = row.members.iter().filter(|m| m.status == status).collect();
    match which.as_slice() {
        [m] if status != Status::Running => format!("rank {} {}", m.rank, outcome(m)),
        [m] => format!("rank {}", m.rank),
        ms => format!(
            "ranks {}",
            ms.iter()
                .map(|m| m.rank.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `exit 3`, `signal 9`, `running`.
fn outcome(m: &GroupMember) -> String {
    match (m.exit_code, m.signal) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit {c}"),
        (None, None) => m.status.as_str().to_string(),
    }
}

/// The launch's span: from its first rank's start to its last rank's end (None while one
/// runs).
pub fn span(row: &GroupRow) -> (String, Option<String>) {
    let started = row
        .members
        .iter()
        .map(|m| m.started_at.as_str())
        .min()
        .unwrap_or_default()
        .to_string();
    let ended = row
        .members
        .iter()
        .map(|m| m.ended_at.as_deref())
        .collect::<Option<Vec<&str>>>()
        .and_then(|e| e.into_iter().max().map(str::to_string));
    (started, ended)
}

/// What the ranks used together: wall time from the first start to the last end, CPU times
/// and memory added up (each rank's peak total: an upper bound, the peaks need not
/// coincide), the largest process of all, and each GPU's peak (by `host:index` when the
/// ranks ran on several hosts). None when no rank has finished.
pub fn resources(row: &GroupRow) -> Option<Resources> {
    let done: Vec<(&GroupMember, &Resources)> = row
        .members
        .iter()
        .filter_map(|m| m.resources.as_ref().map(|r| (m, r)))
        .collect();
    if done.is_empty() {
        return None;
    }
    let (started, ended) = span(row);
    let hosts: std::collections::BTreeSet<Option<&str>> =
        row.members.iter().map(|m| m.hostname.as_deref()).collect();
    let mut gpus: Option<BTreeMap<String, u64>> = None;
    for (m, r) in &done {
        for (i, b) in r.gpu_peak_memory_bytes.iter().flatten() {
            let key = if hosts.len() > 1 {
                format!("{}:{i}", m.hostname.as_deref().unwrap_or("?"))
            } else {
                i.clone()
            };
            *gpus
                .get_or_insert_with(BTreeMap::new)
                .entry(key)
                .or_default() += b;
        }
    }
    let wall = duration(&started, ended.as_deref())
        .unwrap_or_else(|| done.iter().map(|(_, r)| r.wall_seconds).fold(0.0, f64::max));
    Some(Resources {
        wall_seconds: wall,
        user_cpu_seconds: done.iter().map(|(_, r)| r.user_cpu_seconds).sum(),
        system_cpu_seconds: done.iter().map(|(_, r)| r.system_cpu_seconds).sum(),
        max_rss_bytes: done.iter().map(|(_, r)| r.max_rss_bytes).max().unwrap_or(0),
        peak_total_rss_bytes: Some(
            done.iter()
                .map(|(_, r)| r.peak_total_rss_bytes.unwrap_or(r.max_rss_bytes))
                .sum(),
        ),
        gpu_peak_memory_bytes: gpus,
    })
}

/// Under `show RUN` of a rank: the launch, its ranks (this one marked), and what they used
/// together. `shorts`: the ranks' short ids.
pub fn table(row: &GroupRow, this: &str, shorts: &HashMap<String, String>, color: bool) -> String {
    let g = &row.group;
    let rank = row
        .members
        .iter()
        .find(|m| m.id == this)
        .map_or_else(String::new, |m| format!("rank {} of ", m.rank));
    let mut out = format!(
        "\n\nlaunch: {rank}{} ({}, {}) · group {}",
        escape(&g.launch),
        ranks(row),
        row.status().as_str(),
        escape(&g.id)
    );
    let mut t = Table::new();
    t.load_style(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(vec!["rank", "run", "host", "status", "took", "memory"]);
    for m in &row.members {
        let short = shorts.get(&m.id).map_or(m.id.as_str(), String::as_str);
        let memory = m
            .resources
            .as_ref()
            .map(|r| bytes(r.peak_total_rss_bytes.unwrap_or(r.max_rss_bytes)))
            .unwrap_or_default();
        t.add_row(vec![
            Cell::new(match m.local_rank {
                Some(l) => format!("{} (local {l})", m.rank),
                None => m.rank.to_string(),
            }),
            Cell::new(format!(
                "{}{}",
                escape(short),
                if m.id == this { " (this run)" } else { "" }
            )),
            Cell::new(escape(m.hostname.as_deref().unwrap_or("?"))),
            Cell::new(format!("{} ({})", m.status.as_str(), outcome(m))),
            Cell::new(
                duration(&m.started_at, m.ended_at.as_deref())
                    .map(seconds)
                    .unwrap_or_default(),
            ),
            Cell::new(memory),
        ]);
    }
    out += &format!("\n{t}");
    if let Some(r) = resources(row) {
        out += &format!(
            "\nall ranks: wall {} · cpu {} user + {} sys · memory {} (each rank's peak, added up)",
            seconds(r.wall_seconds),
            seconds(r.user_cpu_seconds),
            seconds(r.system_cpu_seconds),
            bytes(r.peak_total_rss_bytes.unwrap_or(r.max_rss_bytes))
        );
        for (i, b) in r.gpu_peak_memory_bytes.iter().flatten() {
            out += &format!(" · gpu {} peak {}", escape(i), bytes(*b));
        }
    }
    out
}

/// The launch in JSON (`show --json` and `list --json`: `group`).
#[derive(Serialize)]
pub struct GroupJson {
    /// The launch's id, shared by its ranks.
    pub id: String,
    pub launcher: String,
    pub launch: String,
    pub world_size: u32,
    /// The launch's status (running, failed, interrupted, succeeded: the first any rank has).
    pub status: &'static str,
    /// `show` only: this run's rank and local rank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_rank: Option<u32>,
    /// The ranks recorded in this store, by rank.
    pub members: Vec<MemberJson>,
    /// `show` only: what the ranks used together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

#[derive(Serialize)]
pub struct MemberJson {
    pub id: String,
    pub rank: u32,
    pub local_rank: Option<u32>,
    pub hostname: Option<String>,
    pub status: &'static str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

impl GroupJson {
    /// `this`: the rank `show` shows (its rank and the ranks' resources added); None in
    /// `list`.
    pub fn of(row: &GroupRow, this: Option<&Group>) -> GroupJson {
        let g = &row.group;
        GroupJson {
            id: g.id.clone(),
            launcher: g.launcher.clone(),
            launch: g.launch.clone(),
            world_size: g.world_size,
            status: row.status().as_str(),
            rank: this.map(|t| t.rank),
            local_rank: this.and_then(|t| t.local_rank),
            members: row
                .members
                .iter()
                .map(|m| MemberJson {
                    id: m.id.clone(),
                    rank: m.rank,
                    local_rank: m.local_rank,
                    hostname: m.hostname.clone(),
                    status: m.status.as_str(),
                    exit_code: m.exit_code,
                    signal: m.signal,
                    started_at: m.started_at.clone(),
                    ended_at: m.ended_at.clone(),
                })
                .collect(),
            resources: this.and_then(|_| resources(row)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(rank: u32, host: &str, status: Status, res: Option<(u64, u64, u64)>) -> GroupMember {
        GroupMember {
            id: format!("run-{rank}"),
            rank,
            local_rank: Some(0),
            hostname: Some(host.into()),
            status,
            exit_code: Some(if status == Status::Failed { 3 } else { 0 }),
            signal: None,
            started_at: format!("2026-11-26T00:00:0{rank}.000000Z"),
            ended_at: res.map(|_| format!("2026-11-26T00:00:1{rank}.000000Z")),
            resources: res.map(|(max, total, gpu)| Resources {
                wall_seconds: 10.0,
                user_cpu_seconds: 2.0,
                system_cpu_seconds: 1.0,
                max_rss_bytes: max,
                peak_total_rss_bytes: (total > 0).then_some(total),
                gpu_peak_memory_bytes: Some(BTreeMap::from([("0".to_string(), gpu)])),
            }),
        }
    }

    fn row(members: Vec<GroupMember>) -> GroupRow {
        GroupRow {
            group: Group {
                id: "g".into(),
                launcher: "slurm".into(),
                launch: "slurm job 1 step 0".into(),
                rank: 0,
                world_size: 3,
                local_rank: Some(0),
            },
            members,
        }
    }

    /// Memory and CPU add up over the ranks, each GPU is named by its host, and the wall
    /// time spans the first start to the last end.
    #[test]
    fn the_ranks_resources_add_up() {
        let r = row(vec![
            member(0, "node1", Status::Succeeded, Some((100, 300, 7))),
            member(1, "node2", Status::Succeeded, Some((200, 0, 9))),
        ]);
        let res = resources(&r).expect("resources");
        assert_eq!(
            res.peak_total_rss_bytes,
            Some(500),
            "300 + rank 1's largest"
        );
        assert_eq!(res.max_rss_bytes, 200);
        assert_eq!(res.user_cpu_seconds, 4.0);
        assert_eq!(res.wall_seconds, 11.0, "from 00:00:00 to 00:00:11");
        let gpus = res.gpu_peak_memory_bytes.expect("gpus");
        assert_eq!(gpus["node1:0"], 7);
        assert_eq!(gpus["node2:0"], 9);
        assert_eq!(ranks(&r), "2 of 3 ranks");
        assert_eq!(status_detail(&r), "");
    }

    #[test]
    fn a_launch_is_running_then_failed_and_says_which_ranks() {
        let running = row(vec![
            member(0, "n", Status::Failed, Some((1, 1, 0))),
            member(1, "n", Status::Running, None),
        ]);
        assert_eq!(running.status(), Status::Running);
        assert_eq!(status_detail(&running), "rank 1");
        assert_eq!(span(&running).1, None, "not ended while a rank runs");
        let failed = row(vec![
            member(0, "n", Status::Failed, Some((1, 1, 0))),
            member(1, "n", Status::Interrupted, Some((1, 1, 0))),
            member(2, "n", Status::Failed, Some((1, 1, 0))),
        ]);
        assert_eq!(failed.status(), Status::Failed);
        assert_eq!(status_detail(&failed), "ranks 0, 2");
        assert_eq!(ranks(&failed), "3 ranks");
        // One host: GPUs by index, added up.
        let gpus = resources(&failed)
            .and_then(|r| r.gpu_peak_memory_bytes)
            .expect("gpus");
        assert_eq!(gpus.keys().collect::<Vec<_>>(), ["0"]);
    }
}

//! Where the job runs and for whom: container runtime and image, scheduler identifiers
//! (Slurm, Kubernetes, GitHub Actions, GitLab CI), and the owner (OS user, git identity,
//! `LINEAGE_OWNER`), and the launch a run is one rank of (Slurm's `srun`, torchrun, MPI).
//! Everything is read from the environment and a few files in /proc and /run.

use std::collections::BTreeMap;

use crate::model::{Container, Group, Owner, Scheduler};

/// Read-only view of the environment, so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn container(env: Env) -> Option<Container> {
    if let Some(image) = env("APPTAINER_CONTAINER").or_else(|| env("SINGULARITY_CONTAINER")) {
        return Some(Container {
            runtime: "apptainer".into(),
            image: Some(image),
            id: env("APPTAINER_NAME").or_else(|| env("SINGULARITY_NAME")),
        });
    }
    let image_var = || env("CONTAINER_IMAGE");
    if let Ok(text) = std::fs::read_to_string("/run/.containerenv") {
        let field = |name: &str| {
            text.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.strip_prefix('=')?;
                Some(v.trim_matches('"').to_string()).filter(|v| !v.is_empty())
            })
        };
        return Some(Container {
            runtime: "podman".into(),
            image: field("image").or_else(image_var),
            id: field("id"),
        });
    }
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let runtime = if std::path::Path::new("/.dockerenv").exists() {
        "docker"
    } else if cgroup.contains("kubepods") || env("KUBERNETES_SERVICE_HOST").is_some() {
        "kubernetes"
    } else if cgroup.contains("docker") {
        "docker"
    } else if cgroup.contains("libpod") {
        "podman"
    } else if cgroup.contains("containerd") {
        "containerd"
    } else if cgroup.contains("lxc") {
        "lxc"
    } else {
        return None;
    };
    Some(Container {
        runtime: runtime.into(),
        image: image_var(),
        id: None,
    })
}

pub fn scheduler(env: Env) -> Option<Scheduler> {
    let pick = |kind: &str, names: &[&str]| {
        let ids: BTreeMap<String, String> = names
            .iter()
            .filter_map(|n| env(n).map(|v| (n.to_string(), v)))
            .collect();
        Scheduler {
            kind: kind.into(),
            ids,
        }
    };
    if env("SLURM_JOB_ID").is_some() {
        return Some(pick(
            "slurm",
            &[
                "SLURM_JOB_ID",
                "SLURM_JOB_NAME",
                "SLURM_ARRAY_JOB_ID",
                "SLURM_ARRAY_TASK_ID",
                "SLURM_STEP_ID",
                "SLURM_JOB_PARTITION",
                "SLURM_JOB_ACCOUNT",
                "SLURM_JOB_NODELIST",
                "SLURM_JOB_NUM_NODES",
                "SLURM_NODEID",
                "SLURM_PROCID",
                "SLURM_CPUS_ON_NODE",
                "SLURM_CPUS_PER_TASK",
                "SLURM_JOB_GPUS",
                "SLURM_GPUS_ON_NODE",
                "SLURM_STEP_GPUS",
            ],
        ));
    }
    if env("KUBERNETES_SERVICE_HOST").is_some() {
        let mut s = pick("kubernetes", &["POD_NAME", "POD_NAMESPACE", "NODE_NAME"]);
        if !s.ids.contains_key("POD_NAME")
            && let Some(host) = env("HOSTNAME")
        {
            s.ids.insert("POD_NAME".into(), host);
        }
        if !s.ids.contains_key("POD_NAMESPACE")
            && let Ok(ns) =
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        {
            s.ids.insert("POD_NAMESPACE".into(), ns.trim().to_string());
        }
        return Some(s);
    }
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        return Some(pick(
            "github-actions",
            &[
                "GITHUB_REPOSITORY",
                "GITHUB_WORKFLOW",
                "GITHUB_RUN_ID",
                "GITHUB_RUN_ATTEMPT",
                "GITHUB_JOB",
                "GITHUB_SHA",
                "GITHUB_REF",
            ],
        ));
    }
    if env("GITLAB_CI").is_some() {
        return Some(pick(
            "gitlab-ci",
            &[
                "CI_PROJECT_PATH",
                "CI_PIPELINE_ID",
                "CI_JOB_ID",
                "CI_JOB_NAME",
                "CI_COMMIT_SHA",
                "CI_COMMIT_REF_NAME",
            ],
        ));
    }
    None
}

/// The launch this process is one rank of, when its launcher says so (docs/recording.md,
/// "Distributed jobs"); None for a process that is a launch of its own (a world of one, or no
/// launcher's variables). Innermost launcher first: the `torch.distributed` variables
/// (torchrun, DeepSpeed, Accelerate: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
/// `MASTER_PORT`, `TORCHELASTIC_RUN_ID`), Open MPI (`OMPI_COMM_WORLD_*`), PMI (MPICH, Intel
/// MPI: `PMI_RANK`, `PMI_SIZE`), then Slurm's `srun` (`SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`);
/// an inner launcher that numbers the ranks as the Slurm step does is that step.
///
/// Every rank computes the same id on its own: a BLAKE3 over what the launcher set alike in
/// all of them. Where nothing it set is unique to the launch (a torchrun without `--rdzv-id`
/// or `--standalone`, outside a Slurm step), `parent` (this process's parent: boot id, pid,
/// start) tells two launches apart, so the ranks of one node make one group.
pub fn group(env: Env, parent: &dyn Fn() -> Option<String>) -> Option<Group> {
    let num = |k: &str| env(k).and_then(|v| v.trim().parse::<u32>().ok());
    let slurm = match (
        env("SLURM_JOB_ID"),
        env("SLURM_STEP_ID").or_else(|| env("SLURM_STEPID")),
    ) {
        (Some(job), Some(step)) => Some(Launch {
            launcher: "slurm",
            launch: format!("slurm job {job} step {step}"),
            rank: num("SLURM_PROCID"),
            size: num("SLURM_STEP_NUM_TASKS"),
            local: num("SLURM_LOCALID"),
            parts: vec![
                (
                    "SLURM_CLUSTER_NAME",
                    env("SLURM_CLUSTER_NAME").unwrap_or_default(),
                ),
                ("SLURM_JOB_ID", job),
                ("SLURM_STEP_ID", step),
            ],
            unique: true,
        }),
        _ => None,
    };
    let part = |k: &'static str| (k, env(k).unwrap_or_default());
    let addr = || {
        format!(
            "{}:{}",
            env("MASTER_ADDR").unwrap_or_else(|| "?".into()),
            env("MASTER_PORT").unwrap_or_else(|| "?".into())
        )
    };
    let torch = env("TORCHELASTIC_RUN_ID").map(|id| id.trim().to_string());
    let inner = [
        Launch {
            launcher: "torch",
            launch: match &torch {
                Some(id) if !id.is_empty() && id != "none" => {
                    format!("torchrun {} (rendezvous {id})", addr())
                }
                Some(_) => format!("torchrun {}", addr()),
                None => format!("torch.distributed {}", addr()),
            },
            rank: num("RANK"),
            size: num("WORLD_SIZE"),
            local: num("LOCAL_RANK"),
            parts: vec![
                part("MASTER_ADDR"),
                part("MASTER_PORT"),
                part("TORCHELASTIC_RUN_ID"),
                part("TORCHELASTIC_RESTART_COUNT"),
            ],
            unique: torch
                .as_deref()
                .is_some_and(|id| !id.is_empty() && id != "none"),
        },
        Launch {
            launcher: "mpi",
            launch: format!(
                "mpirun {}",
                env("PMIX_NAMESPACE")
                    .or_else(|| env("OMPI_MCA_ess_base_jobid"))
                    .unwrap_or_else(|| "(Open MPI)".into())
            ),
            rank: num("OMPI_COMM_WORLD_RANK"),
            size: num("OMPI_COMM_WORLD_SIZE"),
            local: num("OMPI_COMM_WORLD_LOCAL_RANK"),
            parts: vec![
                part("PMIX_NAMESPACE"),
                part("OMPI_MCA_orte_hnp_uri"),
                part("OMPI_MCA_ess_base_jobid"),
            ],
            unique: env("PMIX_NAMESPACE").is_some() || env("OMPI_MCA_orte_hnp_uri").is_some(),
        },
        Launch {
            launcher: "pmi",
            launch: "mpiexec (PMI)".into(),
            rank: num("PMI_RANK"),
            size: num("PMI_SIZE"),
            local: num("MPI_LOCALRANKID"),
            parts: vec![part("PMI_PORT")],
            unique: false,
        },
    ]
    .into_iter()
    .find(|l| l.rank.is_some() && l.size.is_some());
    let mut found = match (inner, slurm) {
        // Ranks numbered as the Slurm step numbers its tasks: the step is the launch.
        (Some(i), Some(s)) if (i.rank, i.size) == (s.rank, s.size) => s,
        (Some(mut i), Some(s)) => {
            i.launch = format!("{} in {}", i.launch, s.launch);
            i.parts.extend(s.parts);
            i.unique = true;
            i
        }
        (Some(i), None) => i,
        (None, s) => s?,
    };
    let (rank, size) = (found.rank?, found.size?);
    if size < 2 || rank >= size {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(found.launcher.as_bytes());
    if !found.unique
        && let Some(p) = parent()
    {
        found.parts.push(("parent", p));
    }
    found.parts.push(("size", size.to_string()));
    for (k, v) in &found.parts {
        // Length-prefixed: no two lists of parts hash alike.
        for s in [k.as_bytes(), v.as_bytes()] {
            hasher.update(&(s.len() as u64).to_le_bytes());
            hasher.update(s);
        }
    }
    let hex = hasher.finalize().to_hex();
    Some(Group {
        id: hex[..32].to_string(),
        launcher: found.launcher.to_string(),
        launch: found.launch,
        rank,
        world_size: size,
        local_rank: found.local,
    })
}

/// What a launcher said of this process, for [`group`].
struct Launch {
    launcher: &'static str,
    launch: String,
    rank: Option<u32>,
    size: Option<u32>,
    local: Option<u32>,
    /// What it set alike in every rank of one launch.
    parts: Vec<(&'static str, String)>,
    /// Whether `parts` name this launch alone (not also an earlier one like it).
    unique: bool,
}

/// This process's parent, uniquely on this machine: boot id, pid, start time. The local
/// ranks of one torchrun or mpirun share it.
pub fn parent_process() -> Option<String> {
    let ppid = nix::unistd::getppid().as_raw() as u32;
    let start = crate::host::process_start(ppid)?;
    Some(format!("{}:{ppid}:{start}", crate::host::boot_id()?))
}

pub fn owner(env: Env, git_name: Option<String>, git_email: Option<String>) -> Owner {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| env("USER"));
    Owner {
        user,
        uid: uid.as_raw(),
        git_name,
        git_email,
        lineage_owner: env("LINEAGE_OWNER"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_array_jobs_are_identified() {
        let vars: BTreeMap<&str, &str> = [
            ("SLURM_JOB_ID", "4242"),
            ("SLURM_ARRAY_JOB_ID", "4200"),
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_JOB_PARTITION", "gpu"),
            ("SLURM_JOB_GPUS", "0,1"),
        ]
        .into();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        let s = scheduler(&env).expect("slurm");
        assert_eq!(s.kind, "slurm");
        assert_eq!(s.ids["SLURM_ARRAY_TASK_ID"], "7");
        assert_eq!(s.ids["SLURM_JOB_GPUS"], "0,1");
        assert_eq!(s.ids.len(), 5);
    }

    /// The environment `vars` gives, as `group` reads it.
    fn group_of(vars: &[(&str, &str)], parent: &str) -> Option<Group> {
        let vars: BTreeMap<&str, &str> = vars.iter().copied().collect();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        let parent = parent.to_string();
        group(&env, &move || Some(parent.clone()))
    }

    #[test]
    fn the_tasks_of_one_srun_step_are_one_group_on_every_node() {
        let task = |procid: &str, localid: &str, step: &str| {
            group_of(
                &[
                    ("SLURM_JOB_ID", "4242"),
                    ("SLURM_STEP_ID", step),
                    ("SLURM_PROCID", procid),
                    ("SLURM_LOCALID", localid),
                    ("SLURM_STEP_NUM_TASKS", "4"),
                    ("SLURM_NTASKS", "4"),
                ],
                // Each node's slurmstepd is another parent: not part of the identity.
                &format!("node-{procid}"),
            )
            .expect("a rank")
        };
        let ranks: Vec<Group> = (0..4)
            .map(|r| task(&r.to_string(), &(r % 2).to_string(), "0"))
            .collect();
        assert!(ranks.iter().all(|g| g.id == ranks[0].id), "{ranks:?}");
        assert_eq!(ranks[3].rank, 3);
        assert_eq!(ranks[3].local_rank, Some(1));
        assert_eq!(ranks[0].world_size, 4);
        assert_eq!(ranks[0].launcher, "slurm");
        assert_eq!(ranks[0].launch, "slurm job 4242 step 0");
        assert_eq!(ranks[0].id.len(), 32);
        assert_ne!(
            task("0", "0", "1").id,
            ranks[0].id,
            "the next step is another launch"
        );
    }

    #[test]
    fn one_process_is_no_group() {
        // A batch script: the job's variables, no step of several tasks.
        let batch = [
            ("SLURM_JOB_ID", "4242"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "4"),
        ];
        assert_eq!(group_of(&batch, "p"), None);
        let one = [
            ("SLURM_JOB_ID", "4242"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_PROCID", "0"),
            ("SLURM_STEP_NUM_TASKS", "1"),
        ];
        assert_eq!(group_of(&one, "p"), None);
        assert_eq!(group_of(&[("RANK", "0"), ("WORLD_SIZE", "1")], "p"), None);
        assert_eq!(group_of(&[("RANK", "2"), ("WORLD_SIZE", "2")], "p"), None);
        assert_eq!(group_of(&[("RANK", "x"), ("WORLD_SIZE", "2")], "p"), None);
        assert_eq!(group_of(&[], "p"), None);
    }

    #[test]
    fn torchrun_workers_are_one_group_and_two_launches_two() {
        let worker = |rank: &str, run_id: &str, parent: &str| {
            group_of(
                &[
                    ("RANK", rank),
                    ("LOCAL_RANK", rank),
                    ("WORLD_SIZE", "2"),
                    ("MASTER_ADDR", "127.0.0.1"),
                    ("MASTER_PORT", "29500"),
                    ("TORCHELASTIC_RUN_ID", run_id),
                    ("TORCHELASTIC_RESTART_COUNT", "0"),
                ],
                parent,
            )
            .expect("a rank")
        };
        // `--standalone`: a fresh rendezvous id names the launch on every node.
        let a = worker("0", "5c6f0e1e", "agent-1");
        assert_eq!(a.id, worker("1", "5c6f0e1e", "agent-2").id);
        assert_ne!(a.id, worker("0", "9d1e2f3a", "agent-1").id);
        assert_eq!(a.launcher, "torch");
        assert_eq!(a.launch, "torchrun 127.0.0.1:29500 (rendezvous 5c6f0e1e)");
        // The default id `none` is every launch's: the agent (their parent) tells them apart.
        let b = worker("0", "none", "agent-1");
        assert_eq!(b.id, worker("1", "none", "agent-1").id);
        assert_ne!(b.id, worker("1", "none", "agent-3").id);
        assert_eq!(b.launch, "torchrun 127.0.0.1:29500");
    }

    #[test]
    fn torchrun_under_srun_is_named_by_both_and_srun_alone_when_it_numbers_the_ranks() {
        let slurm = [
            ("SLURM_JOB_ID", "77"),
            ("SLURM_STEP_ID", "3"),
            ("SLURM_PROCID", "1"),
            ("SLURM_STEP_NUM_TASKS", "2"),
        ];
        // `srun torchrun --nproc-per-node 4 --no-python lineage run ...`: rank 6 of 8.
        let mut vars = slurm.to_vec();
        vars.extend([
            ("RANK", "6"),
            ("WORLD_SIZE", "8"),
            ("MASTER_ADDR", "node1"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_RUN_ID", "none"),
        ]);
        let g = group_of(&vars, "agent-on-node2").expect("a rank");
        assert_eq!(g.launch, "torchrun node1:29500 in slurm job 77 step 3");
        assert_eq!(
            g.id,
            group_of(&vars, "agent-on-node1").expect("a rank").id,
            "the step names the launch: the parent does not count"
        );
        assert_eq!((g.rank, g.world_size), (6, 8));
        // `srun` with RANK=$SLURM_PROCID set by hand: the step itself.
        let mut vars = slurm.to_vec();
        vars.extend([("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "node1")]);
        let g = group_of(&vars, "p").expect("a rank");
        assert_eq!((g.launcher.as_str(), g.rank), ("slurm", 1));
    }

    #[test]
    fn mpi_ranks_are_grouped_by_their_namespace() {
        let rank = |r: &str, ns: &str| {
            group_of(
                &[
                    ("OMPI_COMM_WORLD_RANK", r),
                    ("OMPI_COMM_WORLD_SIZE", "3"),
                    ("OMPI_COMM_WORLD_LOCAL_RANK", r),
                    ("PMIX_NAMESPACE", ns),
                ],
                r,
            )
            .expect("a rank")
        };
        assert_eq!(rank("0", "prterun-a-1@1").id, rank("2", "prterun-a-1@1").id);
        assert_ne!(rank("0", "prterun-a-1@1").id, rank("0", "prterun-a-2@1").id);
        let pmi = group_of(&[("PMI_RANK", "1"), ("PMI_SIZE", "2")], "hydra-proxy").expect("rank");
        assert_eq!(
            (pmi.launcher.as_str(), pmi.rank, pmi.world_size),
            ("pmi", 1, 2)
        );
    }

    #[test]
    fn no_scheduler_outside_one() {
        assert!(scheduler(&|_: &str| None).is_none());
    }
}

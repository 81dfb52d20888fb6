//! Where the job runs and for whom: container runtime and image, scheduler identifiers
//! (Slurm, Kubernetes, GitHub Actions, GitLab CI), and the owner (OS user, git identity,
//! `LINEAGE_OWNER`). Everything is read from the environment and a few files in /proc and /run.

use std::collections::BTreeMap;

use crate::model::{Container, Owner, Scheduler};

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

    #[test]
    fn no_scheduler_outside_one() {
        assert!(scheduler(&|_: &str| None).is_none());
    }
}

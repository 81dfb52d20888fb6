//! GPU capture against a real NVIDIA driver. Ignored by default (no GPU on CI machines); run
//! on a GPU machine with `cargo test --test cli gpu -- --ignored`. nvidia-smi is the truth.

use std::process::Command;

use crate::util::*;

fn nvidia_smi(query: &str) -> Vec<Vec<String>> {
    let out = Command::new("nvidia-smi")
        .args([
            format!("--query-gpu={query}"),
            "--format=csv,noheader,nounits".into(),
        ])
        .output()
        .expect("nvidia-smi runs");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .collect()
}

#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn gpus_match_nvidia_smi() {
    let env = Env::new();
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let gpus = run["system"]["gpus"].as_array().expect("gpus");
    let truth = nvidia_smi("index,name,uuid,memory.total,driver_version");
    assert_eq!(gpus.len(), truth.len(), "{run}");
    for (gpu, row) in gpus.iter().zip(&truth) {
        assert_eq!(gpu["index"].to_string(), row[0]);
        assert_eq!(gpu["name"], row[1].as_str());
        assert_eq!(gpu["uuid"], row[2].as_str());
        // nvidia-smi reports MiB.
        let mib: u64 = row[3].parse().expect("memory");
        assert_eq!(
            gpu["memory_bytes"].as_u64().expect("bytes") / (1 << 20),
            mib
        );
        assert_eq!(gpu["driver_version"], row[4].as_str());
        assert_eq!(gpu["visible"], true);
    }
    assert!(
        run["resources"]["gpu_peak_memory_bytes"].is_object(),
        "{run}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn cuda_visible_devices_by_uuid_selects_that_gpu() {
    let env = Env::new();
    let truth = nvidia_smi("index,uuid");
    let last = truth.last().expect("a GPU");
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "true"])
        .env("CUDA_VISIBLE_DEVICES", &last[1]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    for gpu in run["system"]["gpus"].as_array().expect("gpus") {
        let want = gpu["uuid"] == last[1].as_str();
        assert_eq!(gpu["visible"], want, "{gpu}");
    }
}

/// A job that holds GPU memory, started through a shell (a grandchild of lineage), has its
/// peak recorded on the GPU it used. Needs PyTorch with CUDA as `python3`.
#[test]
#[ignore = "needs an NVIDIA GPU, its driver and PyTorch"]
fn a_jobs_gpu_memory_peak_is_recorded() {
    let env = Env::new();
    let gib: u64 = 2;
    let job = format!(
        "python3 -c 'import torch, time; x = torch.empty({gib} << 30, dtype=torch.uint8, \
         device=\"cuda:0\"); torch.cuda.synchronize(); time.sleep(2)'"
    );
    let mut cmd = env.lineage();
    cmd.args(["run", "--sample-interval", "0.1", "--", "sh", "-c", &job]);
    let out = output_within(cmd, std::time::Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let peaks = &run["resources"]["gpu_peak_memory_bytes"];
    let peak = peaks["0"].as_u64().unwrap_or_else(|| panic!("{peaks}"));
    let total = run["system"]["gpus"][0]["memory_bytes"]
        .as_u64()
        .expect("total");
    // The tensor, plus the CUDA context (a few hundred MiB), never more than the GPU has.
    assert!(peak >= gib << 30, "peak {peak} < {gib} GiB: {peaks}");
    assert!(peak < total, "peak {peak} >= the GPU's {total}");
}

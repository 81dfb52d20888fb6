//! Host, OS, CPU and memory, through sysinfo with targeted refreshes (never `new_all`, which
//! walks every process and costs tens of milliseconds).

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use crate::model::SystemInfo;

/// Everything but the GPUs (see `gpu`).
pub fn capture() -> SystemInfo {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    let cpus = sys.as_ref().map_or(&[][..], System::cpus);
    let cpu_model = cpus
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty());
    SystemInfo {
        hostname: System::host_name().ok(),
        os: System::name().ok(),
        os_version: System::os_version().ok(),
        kernel: System::kernel_version().ok(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model,
        cpu_cores: cpus.len(),
        cpu_physical_cores: System::physical_core_count().ok(),
        memory_bytes: sys.as_ref().map_or(0, System::total_memory),
        boot_id: crate::host::boot_id(),
        gpus: Vec::new(),
        gpu_note: None,
    }
}

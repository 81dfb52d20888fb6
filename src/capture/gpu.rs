//! NVIDIA GPUs through NVML (nvml-wrapper, which loads `libnvidia-ml.so.1` at run time, so
//! lineage builds and runs without a driver). NVML lists GPUs in PCI order and ignores
//! CUDA_VISIBLE_DEVICES, so visibility is worked out here, by UUID where the variable uses
//! UUIDs. Initialisation runs on its own thread, bounded by a timeout, off the critical path.
//! While the job runs, a sampler records the peak memory its processes use on each GPU.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

use crate::model::{Gpu, MigDevice};

/// NVML's value for "MIG mode enabled" (nvml.h).
const NVML_DEVICE_MIG_ENABLE: u32 = 1;

/// How long NVML may take to initialise and list devices.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct GpuCapture {
    pub gpus: Vec<Gpu>,
    pub note: Option<String>,
    /// Kept for the memory sampler when there are GPUs.
    pub nvml: Option<Kept>,
}

impl GpuCapture {
    /// No GPUs, and no word why: the capture was lost (its thread could not be joined).
    fn none() -> GpuCapture {
        GpuCapture {
            gpus: Vec::new(),
            note: Some("the GPUs could not be read: lineage's thread for them failed".into()),
            nvml: None,
        }
    }
}

/// NVML, never shut down: `nvmlShutdown` took 9 ms of every run on an H200 (driver
/// 580.159), after the job had ended. lineage exits soon after, and the driver lets go of
/// what a process held when it exits.
pub type Kept = std::mem::ManuallyDrop<Nvml>;

/// Start NVML on a background thread; `finish` collects the result.
pub fn start(cuda_visible_devices: Option<String>) -> Pending {
    // NVML needs the kernel driver: without one, neither its library nor a thread to load
    // it (a third of a millisecond of every run on a machine without a GPU).
    if !DRIVER_SIGNS
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        return Pending::Failed(format!(
            "no NVIDIA driver (none of {} exists)",
            DRIVER_SIGNS.join(", ")
        ));
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lineage-nvml".into())
        .spawn(move || {
            let _ = tx.send(capture(cuda_visible_devices.as_deref()));
        })
        .map_or_else(
            |e| Pending::Failed(format!("could not start the NVML thread: {e}")),
            |_| Pending::Waiting(rx),
        )
}

/// Where a loaded NVIDIA driver shows, one of them at least: its procfs directory (also
/// seen in containers), its control device (what a container is given), WSL2's GPU device.
const DRIVER_SIGNS: &[&str] = &["/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg"];

pub enum Pending {
    Waiting(mpsc::Receiver<GpuCapture>),
    Failed(String),
}

impl Pending {
    pub fn finish(self) -> GpuCapture {
        let note = match self {
            Pending::Waiting(rx) => match rx.recv_timeout(INIT_TIMEOUT) {
                Ok(capture) => return capture,
                Err(_) => format!("NVML did not answer within {}s", INIT_TIMEOUT.as_secs()),
            },
            Pending::Failed(note) => note,
        };
        GpuCapture {
            gpus: Vec::new(),
            note: Some(note),
            nvml: None,
        }
    }
}

fn capture(cuda_visible_devices: Option<&str>) -> GpuCapture {
    let nvml = match Nvml::init() {
        Ok(nvml) => Kept::new(nvml),
        Err(e) => {
            let note = match e {
                nvml_wrapper::error::NvmlError::LibloadingError(_) => {
                    "no NVIDIA driver (libnvidia-ml.so.1 could not be loaded)".to_string()
                }
                e => format!("NVML could not be initialised: {e}"),
            };
            return GpuCapture {
                gpus: Vec::new(),
                note: Some(note),
                nvml: None,
            };
        }
    };
    let visible = Visibility::parse(cuda_visible_devices);
    let driver_version = nvml.sys_driver_version().unwrap_or_default();
    let cuda = nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            nvml_wrapper::cuda_driver_version_major(v),
            nvml_wrapper::cuda_driver_version_minor(v)
        )
    });
    let mut gpus = Vec::new();
    let mut note = None;
    let count = nvml.device_count().unwrap_or(0);
    for index in 0..count {
        let device = match nvml.device_by_index(index) {
            Ok(d) => d,
            Err(e) => {
                note = Some(format!("GPU {index} could not be read: {e}"));
                continue;
            }
        };
        let uuid = device.uuid().unwrap_or_default();
        let mig_enabled = device
            .mig_mode()
            .is_ok_and(|m| m.current == NVML_DEVICE_MIG_ENABLE);
        let mut mig_devices = Vec::new();
        if mig_enabled {
            let n = device.mig_device_count().unwrap_or(0);
            for i in 0..n {
                if let Ok(mig) = device.mig_device_by_index(i) {
                    let mig_uuid = mig.uuid().unwrap_or_default();
                    mig_devices.push(MigDevice {
                        visible: visible.allows(None, &mig_uuid),
                        memory_bytes: mig.memory_info().map(|m| m.total).unwrap_or(0),
                        uuid: mig_uuid,
                    });
                }
            }
        }
        gpus.push(Gpu {
            index,
            name: device.name().unwrap_or_default(),
            visible: visible.allows(Some(index), &uuid) || mig_devices.iter().any(|m| m.visible),
            uuid,
            memory_bytes: device.memory_info().map(|m| m.total).unwrap_or(0),
            driver_version: driver_version.clone(),
            cuda_driver_version: cuda.clone(),
            mig_devices,
        });
    }
    GpuCapture {
        nvml: (!gpus.is_empty()).then_some(nvml),
        gpus,
        note,
    }
}

/// What CUDA_VISIBLE_DEVICES lets a job see.
#[derive(Debug, PartialEq)]
pub enum Visibility {
    All,
    /// Device indices and UUID prefixes (`GPU-...`, `MIG-...`), in CUDA order.
    Only(Vec<String>),
}

impl Visibility {
    /// CUDA reads the list up to the first invalid entry; an empty or `-1` list hides all.
    pub fn parse(var: Option<&str>) -> Visibility {
        let Some(var) = var else {
            return Visibility::All;
        };
        let mut ids = Vec::new();
        for token in var.split(',').map(str::trim) {
            let valid = token.parse::<u32>().is_ok()
                || token.starts_with("GPU-")
                || token.starts_with("MIG-");
            if !valid {
                break;
            }
            ids.push(token.to_string());
        }
        Visibility::Only(ids)
    }

    /// Indices are taken in PCI order (as with CUDA_DEVICE_ORDER=PCI_BUS_ID).
    pub fn allows(&self, index: Option<u32>, uuid: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Only(ids) => ids.iter().any(|id| match id.parse::<u32>() {
                Ok(i) => Some(i) == index,
                Err(_) => !uuid.is_empty() && uuid.starts_with(id.as_str()),
            }),
        }
    }
}

/// The job's GPUs, read while it runs, and the peak memory its processes used on each.
///
/// NVML takes 10-20 ms to initialise on a real driver (measured on an H200, driver
/// 580.159): waited for before launch, that was the largest part of what lineage added to a
/// short job there. The inventory does not change while the job runs, so the sampler's
/// thread waits for it instead, and the job starts at once.
pub struct Sampler {
    /// Dropped to stop the sampler: it wakes at once, not at its next sample.
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<Sampled>>,
    /// Kept here when no thread could be started: finished in place.
    unstarted: Option<Pending>,
}

/// What the sampler leaves: the GPUs, why there are none, the peaks (None without NVML).
pub struct Sampled {
    pub gpus: Vec<Gpu>,
    pub note: Option<String>,
    pub peaks: Option<BTreeMap<String, u64>>,
}

impl Sampler {
    /// Sample the GPU memory of `child` and its descendants every `interval`, from when NVML
    /// has listed the GPUs (`pending`) until `finish`.
    pub fn start(pending: Pending, child: u32, interval: Duration) -> Sampler {
        // No driver: nothing to wait for or sample, and no thread for it.
        if let Pending::Failed(_) = pending {
            return Sampler {
                stop: None,
                handle: None,
                unstarted: Some(pending),
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let slot = Arc::new(Mutex::new(Some(pending)));
        let spawned = {
            let slot = slot.clone();
            std::thread::Builder::new()
                .name("lineage-gpu-sampler".into())
                .spawn(move || {
                    let pending = slot.lock().ok().and_then(|mut p| p.take());
                    let capture = pending.map_or_else(GpuCapture::none, Pending::finish);
                    sample_until(capture, child, interval, &stopped)
                })
        };
        match spawned {
            Ok(handle) => Sampler {
                stop: Some(stop),
                handle: Some(handle),
                unstarted: None,
            },
            Err(_) => Sampler {
                stop: None,
                handle: None,
                unstarted: slot.lock().ok().and_then(|mut p| p.take()),
            },
        }
    }

    /// Stop sampling; the GPUs and the peaks.
    pub fn finish(mut self) -> Sampled {
        drop(self.stop.take());
        if let Some(sampled) = self.handle.take().and_then(|h| h.join().ok()) {
            return sampled;
        }
        let capture = self
            .unstarted
            .take()
            .map_or_else(GpuCapture::none, Pending::finish);
        Sampled {
            peaks: capture.nvml.is_some().then(BTreeMap::new),
            gpus: capture.gpus,
            note: capture.note,
        }
    }
}

/// Sample until `stopped` says so (or its sender is dropped).
fn sample_until(
    capture: GpuCapture,
    child: u32,
    interval: Duration,
    stopped: &mpsc::Receiver<()>,
) -> Sampled {
    let GpuCapture { gpus, note, nvml } = capture;
    let Some(nvml) = nvml else {
        return Sampled {
            gpus,
            note,
            peaks: None,
        };
    };
    let indices: Vec<u32> = gpus.iter().map(|g| g.index).collect();
    let mut peaks: BTreeMap<String, u64> = indices.iter().map(|i| (i.to_string(), 0)).collect();
    // A job that ended before NVML was ready (a few milliseconds) held no GPU memory.
    let mut ended = !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty));
    while !ended {
        sample(&nvml, &indices, child, &mut peaks);
        ended = !matches!(
            stopped.recv_timeout(interval),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
    }
    Sampled {
        gpus,
        note,
        peaks: Some(peaks),
    }
}

fn sample(nvml: &Nvml, indices: &[u32], child: u32, peaks: &mut BTreeMap<String, u64>) {
    let family: HashSet<u32> = family(child).into_iter().collect();
    for &index in indices {
        let Ok(device) = nvml.device_by_index(index) else {
            continue;
        };
        let mut used = 0u64;
        let compute = device.running_compute_processes().unwrap_or_default();
        let graphics = device.running_graphics_processes().unwrap_or_default();
        let mut seen = HashSet::new();
        for p in compute.into_iter().chain(graphics) {
            if family.contains(&p.pid)
                && seen.insert(p.pid)
                && let UsedGpuMemory::Used(bytes) = p.used_gpu_memory
            {
                used += bytes;
            }
        }
        let peak = peaks.entry(index.to_string()).or_default();
        *peak = (*peak).max(used);
    }
}

/// `root` and its descendants: through each thread's `children` list, which names only the
/// family (a few files read, however many processes the machine runs); where the kernel
/// offers no such list, through every process's parent in /proc.
pub fn family(root: u32) -> Vec<u32> {
    if !std::path::Path::new(&format!("/proc/{root}/task/{root}/children")).exists() {
        return descendants(root).into_iter().collect();
    }
    let mut family = vec![root];
    let mut i = 0;
    while let Some(&pid) = family.get(i) {
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children"));
            for c in children.iter().flat_map(|c| c.split_whitespace()) {
                if let Ok(c) = c.parse()
                    && !family.contains(&c)
                {
                    family.push(c);
                }
            }
        }
    }
    family
}

/// `root` and every process descended from it, read from every process's parent in /proc.
fn descendants(root: u32) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_pid(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut family = HashSet::from([root]);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &c in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if family.insert(c) {
                todo.push(c);
            }
        }
    }
    family
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_visible_devices() {
        let uuid0 = "GPU-aaaa1111";
        let uuid1 = "GPU-bbbb2222";
        let cases: &[(Option<&str>, bool, bool)] = &[
            (None, true, true),
            (Some(""), false, false),
            (Some("-1"), false, false),
            (Some("1"), false, true),
            (Some("0,1"), true, true),
            (Some("GPU-bbbb"), false, true),
            (Some("0,bogus,1"), true, false),
        ];
        for (var, see0, see1) in cases {
            let v = Visibility::parse(*var);
            assert_eq!(v.allows(Some(0), uuid0), *see0, "{var:?} gpu0");
            assert_eq!(v.allows(Some(1), uuid1), *see1, "{var:?} gpu1");
        }
    }

    /// Where no driver shows (this machine, CI's), no thread tries to load NVML: the note
    /// says what was looked for. Where one does, the thread is started.
    #[test]
    fn without_a_driver_nvml_is_not_loaded() {
        let driver = DRIVER_SIGNS
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        match start(None) {
            Pending::Failed(note) => {
                assert!(!driver, "a driver shows, yet: {note}");
                assert!(note.contains("/dev/nvidiactl"), "{note}");
            }
            Pending::Waiting(_) => assert!(driver, "no driver shows, yet NVML was loaded"),
        }
    }

    #[test]
    fn descendants_include_grandchildren() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        // Wait until sh has started its sleep.
        let mut family = HashSet::new();
        for _ in 0..100 {
            family = descendants(pid);
            if family.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(family.contains(&pid));
        assert!(family.len() >= 2, "sleep not found among {family:?}");
    }
}

//! Facts about this machine and its processes, read from /proc: the boot id, when a process
//! started (so a pid reused after a run's wrapper died is not mistaken for it), and which
//! paths are on network filesystems.

/// The kernel's boot id, new at every boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat); None
/// when there is no such process, or it has ended and only its exit status is left (a
/// zombie its parent has not waited for yet: a killed lineage whose shell has not reaped it
/// will never finish its record).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Network and cluster filesystems (statfs f_type): WAL's shared-memory index cannot be
/// trusted there, nor can inotify see changes made from other hosts.
const NETWORK_FILESYSTEMS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x6573_5546, "FUSE"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
    (0x00C3_6400, "CephFS"),
    (0x1983_0326, "BeeGFS"),
    (0x5346_414F, "AFS"),
    (0x0102_1997, "9p"),
];

/// The name of the network or cluster filesystem `path` is on, if it is on one.
pub fn network_filesystem(path: &std::path::Path) -> Option<&'static str> {
    // f_type is i64 on x86_64 and aarch64 glibc but another integer elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let fs_type = nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64)
        .unwrap_or(0);
    NETWORK_FILESYSTEMS
        .iter()
        .find(|(magic, _)| *magic == fs_type)
        .map(|(_, name)| *name)
}

/// The host name, from the same source as the one recorded with each run.
pub fn hostname() -> Option<String> {
    sysinfo::System::host_name().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time_and_pid_zero_has_none() {
        let me = process_start(std::process::id()).expect("start time");
        assert_eq!(process_start(std::process::id()), Some(me), "stable");
        assert_eq!(process_start(0), None);
        assert!(boot_id().is_some_and(|b| b.len() == 36));
    }

    #[test]
    fn a_process_that_has_ended_but_is_not_yet_reaped_has_none() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        let began = std::time::Instant::now();
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(
                began.elapsed() < std::time::Duration::from_secs(30),
                "never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(process_start(pid), None, "a zombie");
        let _ = child.wait();
    }
}

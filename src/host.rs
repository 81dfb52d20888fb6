//! Facts about this machine and its processes, read from /proc: the boot id, and when a
//! process started (so a pid reused after a run's wrapper died is not mistaken for it).

/// The kernel's boot id, new at every boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat); None
/// when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The host name, from the same source as the one recorded with each run.
pub fn hostname() -> Option<String> {
    sysinfo::System::host_name()
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
}

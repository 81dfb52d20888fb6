//! The seccomp filter: which system calls are handed to lineage's supervisor, compiled to
//! BPF by `seccompiler`. seccompiler knows no user-notification action and kills a process
//! of another architecture, so two of its return values are mapped after compiling (see
//! [`program`]): the match action becomes `SECCOMP_RET_USER_NOTIF`, and a system call of
//! another ABI (a 32-bit program on a 64-bit kernel, `int $0x80`) is handed over too,
//! instead of killed: the supervisor cannot read it, lets it continue, and says the job made
//! such calls.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The tag of the placeholder action that becomes `SECCOMP_RET_USER_NOTIF`.
const TAG: u32 = 0x1ea9;

/// What a system call does to the paths it names, by its number (`Call::of`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// open(path, flags)
    Open,
    /// openat(dirfd, path, flags)
    OpenAt,
    /// openat2(dirfd, path, how): the flags are the first field of `how`.
    OpenAt2,
    /// creat(path, mode)
    Creat,
    /// rename(old, new), link(old, new), symlink(target, new): `new` is made.
    Rename,
    Link,
    Symlink,
    /// renameat(olddirfd, old, newdirfd, new), renameat2 likewise.
    RenameAt,
    /// linkat(olddirfd, old, newdirfd, new, flags)
    LinkAt,
    /// symlinkat(target, newdirfd, new)
    SymlinkAt,
    /// unlink(path), rmdir(path)
    Unlink,
    Rmdir,
    /// unlinkat(dirfd, path, flags)
    UnlinkAt,
    /// truncate(path, length)
    Truncate,
    /// execve(path, argv, envp)
    Execve,
    /// execveat(dirfd, path, argv, envp, flags)
    ExecveAt,
    /// chdir(path), fchdir(fd): names nothing the job reads, but changes what a relative
    /// path means (the supervisor's memory of each thread's directory is forgotten).
    Chdir,
    /// io_uring_setup: files opened through the ring are not seen (a note says so).
    IoUring,
}

/// The observed calls of this architecture, by number.
fn calls() -> Vec<(i64, Call)> {
    let mut v = vec![
        (libc::SYS_openat, Call::OpenAt),
        (libc::SYS_openat2, Call::OpenAt2),
        (libc::SYS_renameat, Call::RenameAt),
        (libc::SYS_renameat2, Call::RenameAt),
        (libc::SYS_linkat, Call::LinkAt),
        (libc::SYS_symlinkat, Call::SymlinkAt),
        (libc::SYS_unlinkat, Call::UnlinkAt),
        (libc::SYS_truncate, Call::Truncate),
        (libc::SYS_execve, Call::Execve),
        (libc::SYS_execveat, Call::ExecveAt),
        (libc::SYS_chdir, Call::Chdir),
        (libc::SYS_fchdir, Call::Chdir),
        (libc::SYS_io_uring_setup, Call::IoUring),
    ];
    // The old calls exist on x86_64 only (aarch64 and riscv64 have just the *at forms).
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (libc::SYS_open, Call::Open),
        (libc::SYS_creat, Call::Creat),
        (libc::SYS_rename, Call::Rename),
        (libc::SYS_link, Call::Link),
        (libc::SYS_symlink, Call::Symlink),
        (libc::SYS_unlink, Call::Unlink),
        (libc::SYS_rmdir, Call::Rmdir),
    ]);
    v
}

impl Call {
    pub fn of(nr: i32) -> Option<Call> {
        calls()
            .into_iter()
            .find(|(n, _)| *n == i64::from(nr))
            .map(|(_, c)| c)
    }
}

/// The BPF program: every observed call is handed to the supervisor, except an open of a
/// directory or of a path only (`O_DIRECTORY`, `O_PATH`: a listing, never file bytes), which
/// BPF tells by its flags and lets through untouched, as it does every other call.
pub fn program() -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let skip_dirs = |arg: u8| -> Result<Vec<SeccompRule>, String> {
        let cond = SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq((libc::O_DIRECTORY | libc::O_PATH) as u64),
            0,
        )
        .map_err(|e| e.to_string())?;
        Ok(vec![
            SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?,
        ])
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, call) in calls() {
        let chain = match call {
            Call::Open => skip_dirs(1)?,
            Call::OpenAt => skip_dirs(2)?,
            _ => Vec::new(), // always
        };
        rules.insert(nr, chain);
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(TAG), arch)
        .map_err(|e| e.to_string())?;
    let mut program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let placeholder = libc::SECCOMP_RET_TRACE | TAG;
    for insn in &mut program {
        if insn.code == RET_K && insn.k == placeholder {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        } else if insn.code == RET_K && insn.k == libc::SECCOMP_RET_KILL_PROCESS {
            // Only the architecture check returns this: another ABI is handed over, to be
            // let through and noted.
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    Ok(program)
}

/// BPF_RET | BPF_K.
const RET_K: u16 = 0x06;

/// This architecture's `AUDIT_ARCH_*` (linux/audit.h): a call of another is not ours to read.
pub const NATIVE_ARCH: u32 = if cfg!(target_arch = "x86_64") {
    0xC000_003E
} else if cfg!(target_arch = "aarch64") {
    0xC000_00B7
} else {
    0xC000_00F3 // riscv64
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_return_is_allow_or_notify() {
        let p = program().unwrap();
        let rets: Vec<u32> = p.iter().filter(|i| i.code == RET_K).map(|i| i.k).collect();
        assert!(rets.contains(&libc::SECCOMP_RET_USER_NOTIF));
        assert!(rets.contains(&libc::SECCOMP_RET_ALLOW));
        assert!(
            rets.iter()
                .all(|k| *k == libc::SECCOMP_RET_USER_NOTIF || *k == libc::SECCOMP_RET_ALLOW),
            "{rets:x?}"
        );
    }

    #[test]
    fn calls_are_known_by_number() {
        assert_eq!(Call::of(libc::SYS_openat as i32), Some(Call::OpenAt));
        assert_eq!(Call::of(libc::SYS_read as i32), None);
    }
}

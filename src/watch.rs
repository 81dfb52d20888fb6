//! Whether an input changed since a moment, without walking it again: inotify watches on the
//! input (each of its directories, or a file and its directory), each set before the stats
//! it guards are taken: while the input is walked before launch, or before launch on every
//! directory of a large input walked only once the job has started. No event at all means
//! no change; any event (or a watch that could not be set, or a network filesystem, whose
//! changes from other hosts inotify cannot see) sends the caller back to comparing stats,
//! which decides (or, for an input walked after launch, records it without a hash).

use std::path::Path;

use std::os::fd::{AsFd, AsRawFd};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// At most this many directories are watched per input: watches are a per-user resource
/// (`fs.inotify.max_user_watches`) that editors and other tools need too.
const MAX_WATCHES: usize = 4096;

/// The watches on one input.
pub struct Watch {
    inotify: Option<Inotify>,
    count: usize,
    /// Something was seen (reading the events consumes them).
    seen: std::cell::Cell<bool>,
}

impl Watch {
    /// Ready to watch an input at `path`; inert on network filesystems.
    pub fn new(path: &Path) -> Watch {
        let inotify = match crate::host::network_filesystem(path) {
            Some(_) => None,
            None => Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok(),
        };
        // Its last close waits out the kernel's grace period (15-20 ms with watches): the
        // observer's heir, which outlives lineage, closes it last, after lineage has ended.
        if let Some(inotify) = &inotify {
            crate::observe::leave_to_heir(inotify.as_fd().as_raw_fd());
        }
        Watch {
            inotify,
            count: 0,
            seen: Default::default(),
        }
    }

    /// A watch that never vouches for anything (the caller compares stats).
    pub fn none() -> Watch {
        Watch {
            inotify: None,
            count: 0,
            seen: Default::default(),
        }
    }

    /// Watch `path` (a directory, or a file) for any change. A watch that cannot be set
    /// makes the whole input unvouched.
    pub fn add(&mut self, path: &Path) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO;
        self.count += 1;
        if self.count > MAX_WATCHES || inotify.add_watch(path, mask).is_err() {
            self.close();
        }
    }

    /// Close the inotify instance (watching stops).
    fn close(&mut self) {
        if let Some(inotify) = self.inotify.take() {
            crate::observe::take_back_from_heir(inotify.as_fd().as_raw_fd());
        }
    }

    /// Whether every watch set so far is in place (none refused, not on a network
    /// filesystem).
    pub fn active(&self) -> bool {
        self.inotify.is_some()
    }

    /// True only when every watch was set and none has seen anything since (asked again,
    /// still false once something was seen).
    pub fn quiet(&self) -> bool {
        if self.seen.get() {
            return false;
        }
        let quiet = match &self.inotify {
            None => false,
            Some(inotify) => match inotify.read_events() {
                Ok(events) => events.is_empty(),
                Err(nix::errno::Errno::EAGAIN) => true,
                Err(_) => false,
            },
        };
        self.seen.set(!quiet);
        quiet
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.close();
    }
}

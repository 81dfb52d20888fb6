//! The in-job API's channel (docs/python.md): what a job tells lineage while it runs (a
//! metric at a step, a param, a tag, a note, a path it read or wrote), sent by the
//! `lineage_ml` Python module or anything else that speaks the protocol.
//!
//! lineage listens on a Unix `SOCK_SEQPACKET` socket in a directory of its own that only the
//! user can enter, and hands the job its path in `LINEAGE_API`. Each process of the job
//! connects once; each datagram of at most [`MAX_MESSAGE`] bytes holds one message or
//! several, a line each, each a JSON object with an `op`. A thread here receives them and keeps them, bounded, until the job
//! has ended; what was sent is only ever about this run, and everything in it is a string
//! from the job: the command redacts and checks it before it reaches the store.
//!
//! A sender never waits: its socket is non-blocking, so when lineage has not caught up a
//! message is dropped (the module keeps the latest value of each metric and sends it later,
//! and reports how many it dropped).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr, accept4, bind, listen, recv,
    socket,
};
use serde::Deserialize;

/// The environment variable that gives the job the socket's path.
pub const ENV: &str = "LINEAGE_API";
/// The largest message taken; a longer one is refused.
pub const MAX_MESSAGE: usize = 60_000;
/// At most this many metric names are kept for a run.
pub const MAX_METRICS: usize = 10_000;
/// At most this many points of one metric are kept; past it, the last point is replaced, so
/// the series always ends with the last value sent.
pub const MAX_POINTS: usize = 100_000;
/// At most this many points of all metrics together.
pub const MAX_ALL_POINTS: usize = 2_000_000;
/// At most this many params, tags, notes, inputs and outputs (each).
pub const MAX_ITEMS: usize = 10_000;
/// At most this many bytes of params, tags, notes and paths together, as sent.
pub const MAX_TEXT_BYTES: usize = 4 << 20;
/// The longest name (of a metric, a param, a tag) taken, in bytes.
pub const MAX_NAME: usize = 256;
/// At most this many processes connected at once.
const MAX_CONNECTIONS: usize = 4096;

/// One point of a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub step: Option<i64>,
    pub value: f64,
}

/// A path the job declared, and what it was when lineage heard of it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub path: PathBuf,
    /// A file's (size, modification time) when the message arrived; None for a directory
    /// or a path that was not there.
    pub stat: Option<(u64, SystemTime)>,
}

/// Everything the job sent, as it arrived (each list in arrival order).
#[derive(Debug, Default)]
pub struct Inbox {
    /// Each metric's points, by name.
    pub metrics: BTreeMap<String, Vec<Point>>,
    pub params: Vec<(String, serde_json::Value)>,
    pub tags: Vec<String>,
    pub notes: Vec<String>,
    pub inputs: Vec<Sent>,
    pub outputs: Vec<Sent>,
    /// Messages taken.
    pub messages: u64,
    /// Messages the job's processes said they dropped (lineage had not caught up).
    pub dropped: u64,
    /// Points not kept: past a metric's [`MAX_POINTS`] (the last one still replaces the
    /// series' end) or [`MAX_ALL_POINTS`].
    pub points_over: u64,
    /// Messages refused, by why.
    pub refused: BTreeMap<&'static str, u64>,
    /// Bytes of params, tags, notes and paths taken (their messages' length).
    text_bytes: usize,
}

/// One message, as sent.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Message {
    Metric {
        name: String,
        value: f64,
        #[serde(default)]
        step: Option<i64>,
    },
    Param {
        name: String,
        value: serde_json::Value,
    },
    Tag {
        name: String,
    },
    Note {
        text: String,
    },
    Input {
        path: String,
    },
    Output {
        path: String,
    },
    Dropped {
        count: u64,
    },
}

impl Inbox {
    fn refuse(&mut self, why: &'static str) {
        *self.refused.entry(why).or_default() += 1;
    }

    fn points(&self) -> usize {
        self.metrics.values().map(Vec::len).sum()
    }

    /// Take one datagram.
    fn take(&mut self, bytes: &[u8], all_points: &mut usize) {
        let Ok(message) = serde_json::from_slice::<Message>(bytes) else {
            self.refuse("not a message lineage understands");
            return;
        };
        // A NUL is in no name, text or path a store can keep (PostgreSQL's text refuses it).
        if contains_nul(bytes) {
            self.refuse("a string holds a NUL character");
            return;
        }
        // Memory stays bounded by bytes too: what is not a metric point is kept whole.
        if !matches!(message, Message::Metric { .. }) {
            if self.text_bytes + bytes.len() > MAX_TEXT_BYTES {
                self.refuse("over 4 MiB of params, tags, notes and paths");
                return;
            }
            self.text_bytes += bytes.len();
        }
        self.messages += 1;
        let name_ok = |n: &str| !n.is_empty() && n.len() <= MAX_NAME;
        match message {
            Message::Metric { name, value, step } => {
                if !name_ok(&name) {
                    return self.refuse("a metric's name is empty or too long");
                }
                if !value.is_finite() {
                    return self.refuse("a metric's value is not a finite number");
                }
                let point = Point { step, value };
                let known = self.metrics.len();
                match self.metrics.get_mut(&name) {
                    Some(series) if series.len() >= MAX_POINTS || *all_points >= MAX_ALL_POINTS => {
                        // Full: the last point is always the last value sent.
                        if let Some(last) = series.last_mut() {
                            *last = point;
                        }
                        self.points_over += 1;
                    }
                    Some(series) => {
                        series.push(point);
                        *all_points += 1;
                    }
                    None if known >= MAX_METRICS => self.refuse("over 10000 metrics"),
                    None => {
                        self.metrics.insert(name, vec![point]);
                        *all_points += 1;
                    }
                }
            }
            Message::Param { name, value } => {
                if !name_ok(&name) {
                    return self.refuse("a param's name is empty or too long");
                }
                if self.params.len() >= MAX_ITEMS {
                    return self.refuse("over 10000 params");
                }
                self.params.push((name, value));
            }
            Message::Tag { name } => {
                if !name_ok(&name) {
                    return self.refuse("a tag is empty or too long");
                }
                if self.tags.len() >= MAX_ITEMS {
                    return self.refuse("over 10000 tags");
                }
                if !self.tags.contains(&name) {
                    self.tags.push(name);
                }
            }
            Message::Note { text } => {
                if text.trim().is_empty() {
                    return self.refuse("a note is empty");
                }
                if self.notes.len() >= MAX_ITEMS {
                    return self.refuse("over 10000 notes");
                }
                self.notes.push(text);
            }
            Message::Input { path } | Message::Output { path }
                if !Path::new(&path).is_absolute() =>
            {
                self.refuse("a path is not absolute")
            }
            Message::Input { path } => {
                if let Err(why) = add_path(&mut self.inputs, path, "over 10000 inputs") {
                    self.refuse(why);
                }
            }
            Message::Output { path } => {
                if let Err(why) = add_path(&mut self.outputs, path, "over 10000 outputs") {
                    self.refuse(why);
                }
            }
            Message::Dropped { count } => self.dropped = self.dropped.saturating_add(count),
        }
    }
}

/// Whether the process at the other end of a connection runs as this process's user.
fn same_user(conn: &OwnedFd) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(conn, PeerCredentials).is_ok_and(|c| c.uid() == nix::unistd::geteuid().as_raw())
}

/// Add a path the job declared to `list`, once, up to [`MAX_ITEMS`] (else `over`).
fn add_path(list: &mut Vec<Sent>, path: String, over: &'static str) -> Result<(), &'static str> {
    if list.iter().any(|p| p.path.as_os_str() == path.as_str()) {
        return Ok(());
    }
    if list.len() >= MAX_ITEMS {
        return Err(over);
    }
    list.push(declared(path));
    Ok(())
}

/// Whether a message's JSON holds a NUL: raw (which JSON forbids) or escaped as `\u0000`.
fn contains_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0) || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// A declared path, with a file's stat as it is now.
fn declared(path: String) -> Sent {
    let path = PathBuf::from(path);
    let stat = std::fs::metadata(&path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .and_then(|m| Some((m.len(), m.modified().ok()?)));
    Sent { path, stat }
}

/// The socket, listened on by a thread until [`Channel::close`].
pub struct Channel {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Written to on close, to wake the thread from its poll at once.
    wake: std::os::unix::net::UnixStream,
    thread: Option<JoinHandle<Inbox>>,
}

impl Channel {
    /// Listen on a new socket in a new directory only the user can enter: under
    /// `$XDG_RUNTIME_DIR` when it is there, else the temporary directory (or `/tmp` when its
    /// path would be too long for a socket).
    pub fn open() -> std::io::Result<Channel> {
        let mut bases: Vec<PathBuf> = Vec::new();
        if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            bases.push(run.into());
        }
        bases.push(std::env::temp_dir());
        bases.push("/tmp".into());
        let mut last = std::io::Error::other("no directory for the socket");
        for base in bases {
            match Self::open_in(&base) {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open_in(base: &Path) -> std::io::Result<Channel> {
        let dir = tempfile::Builder::new()
            .prefix("lineage-")
            .tempdir_in(base)?;
        // Only the user may enter it, whatever the umask (tempfile's follows it).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let path = dir.path().join("api");
        let addr = UnixAddr::new(&path)?;
        let listener = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        bind(listener.as_raw_fd(), &addr)?;
        listen(&listener, Backlog::new(128).unwrap_or(Backlog::MAXCONN))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let (wake, woken) = std::os::unix::net::UnixStream::pair()?;
        let thread = std::thread::Builder::new()
            .name("lineage-api".into())
            .spawn(move || serve(&listener, &woken, &stopping))?;
        Ok(Channel {
            dir: Some(dir),
            path,
            stop,
            wake,
            thread: Some(thread),
        })
    }

    /// The socket's path (the value of [`ENV`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take what is still queued, stop listening, remove the socket: everything the job sent.
    pub fn close(mut self) -> Inbox {
        self.stop.store(true, Ordering::Release);
        let _ = std::io::Write::write(&mut self.wake, &[1]);
        let inbox = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        inbox
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = std::io::Write::write(&mut self.wake, &[1]);
    }
}

/// The thread: accept each process's connection, take each message, until asked to stop;
/// then take what is queued and return.
fn serve(listener: &OwnedFd, woken: &std::os::unix::net::UnixStream, stop: &AtomicBool) -> Inbox {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut inbox = Inbox::default();
    let mut all_points = 0usize;
    let mut conns: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    // Once the job has ended, what is queued is taken, for a second at most: a process it
    // left behind that keeps sending must not keep lineage from finishing.
    let mut deadline: Option<std::time::Instant> = None;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if stopping && deadline.is_none() {
            deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
        }
        {
            let mut fds: Vec<PollFd> = [listener.as_fd(), woken.as_fd()]
                .into_iter()
                .chain(conns.iter().map(AsFd::as_fd))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            // Woken by close: nothing else wakes it but a process of the job.
            let timeout = if stopping {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        let mut took = 0usize;
        while conns.len() < MAX_CONNECTIONS {
            match accept4(
                listener.as_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                // Only the user's processes: a peer of another uid is hung up on (the
                // directory already keeps them out; this holds under any umask or mount).
                Ok(c) if same_user(&c) => conns.push(c),
                Ok(_) => inbox.refuse("a connection from another user"),
                Err(Errno::EINTR | Errno::ECONNABORTED) => {}
                Err(_) => break,
            }
        }
        conns.retain(|c| {
            // At most a few thousand at a time from one process, so none starves the rest.
            for _ in 0..4096 {
                match recv(c.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                    Ok(0) => return false, // closed (or an empty message: never sent)
                    Ok(n) if n > MAX_MESSAGE => {
                        took += 1;
                        inbox.refuse("a message over 60000 bytes");
                    }
                    Ok(n) => {
                        took += 1;
                        // A datagram holds one message or several, a line each.
                        for line in buf[..n].split(|b| *b == b'\n') {
                            if !line.iter().all(u8::is_ascii_whitespace) {
                                inbox.take(line, &mut all_points);
                            }
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => return true,
                    Err(_) => return false,
                }
            }
            true
        });
        if stopping && (took == 0 || deadline.is_some_and(|d| std::time::Instant::now() > d)) {
            break;
        }
    }
    debug_assert_eq!(all_points, inbox.points());
    inbox
}

//! The files of a walk past those held in memory ([`DIR_CACHE_FILES`]), kept in an unnamed
//! temporary file (`TMPDIR`, mode 0600, gone with the process however it ends) until they
//! are hashed: so a directory of any size can be walked before launch, its stat digest
//! looked up, and its bytes left for while the job runs, in bounded memory.

use super::*;
use std::io::{BufRead, Read as _, Seek, Write};

/// Records are written to the file in blocks of about this many bytes.
const BLOCK: usize = 1 << 20;

/// Walked files written past the head of a walk. A failed write (a full disk) leaves the
/// file at the last whole block and the records since in memory: nothing is lost, and the
/// caller hashes them at once instead.
pub(super) struct Spill {
    file: File,
    /// Bytes of whole records in the file.
    written: u64,
    /// Records not yet written.
    buf: Vec<u8>,
    count: u64,
}

impl Spill {
    pub(super) fn new() -> io::Result<Spill> {
        Ok(Spill::in_file(tempfile::tempfile()?))
    }

    fn in_file(file: File) -> Spill {
        Spill {
            file,
            written: 0,
            buf: Vec::with_capacity(BLOCK + 4096),
            count: 0,
        }
    }

    /// Keep `f`. Its record is always kept (in memory if the write failed); the error says
    /// the file can take no more.
    pub(super) fn push(&mut self, f: &WalkedFile) -> io::Result<()> {
        encode(&mut self.buf, f);
        self.count += 1;
        if self.buf.len() < BLOCK {
            return Ok(());
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                // Part of the block may be there: cut back to the whole records.
                let _ = self.file.set_len(self.written);
                let _ = self.file.seek(io::SeekFrom::Start(self.written));
                Err(e)
            }
        }
    }

    /// The files kept, in the order they were pushed, with their paths under `root`.
    pub(super) fn files(mut self, root: &Path) -> io::Result<SpillReader> {
        self.file.rewind()?;
        let left = self.count;
        let written = io::BufReader::with_capacity(256 << 10, self.file.take(self.written));
        Ok(SpillReader {
            bytes: Box::new(written.chain(io::Cursor::new(self.buf))),
            root: root.to_path_buf(),
            left,
        })
    }
}

/// The files of a [`Spill`], read back.
pub(super) struct SpillReader {
    bytes: Box<dyn BufRead + Send>,
    root: PathBuf,
    left: u64,
}

impl Iterator for SpillReader {
    type Item = io::Result<WalkedFile>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = decode(&mut self.bytes, &self.root);
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }
}

// A record: u32 length and bytes of the relative path, a flags byte (1: executable, 2: a
// link recorded as a link), the stat key (dev, ino, size, mtime, ctime: 8 bytes each, little
// endian), then, for a link, u32 length and bytes of its target.
const EXECUTABLE: u8 = 1;
const LINK: u8 = 2;

fn encode(buf: &mut Vec<u8>, f: &WalkedFile) {
    buf.extend_from_slice(&(f.rel.len() as u32).to_le_bytes());
    buf.extend_from_slice(&f.rel);
    let flags = u8::from(f.executable) * EXECUTABLE + u8::from(f.link.is_some()) * LINK;
    buf.push(flags);
    let k = &f.key;
    for n in [k.dev, k.ino, k.size] {
        buf.extend_from_slice(&n.to_le_bytes());
    }
    for n in [k.mtime_ns, k.ctime_ns] {
        buf.extend_from_slice(&n.to_le_bytes());
    }
    if let Some(target) = &f.link {
        buf.extend_from_slice(&(target.len() as u32).to_le_bytes());
        buf.extend_from_slice(target);
    }
}

fn decode(r: &mut dyn BufRead, root: &Path) -> io::Result<WalkedFile> {
    let mut word = [0u8; 8];
    let bytes = |r: &mut dyn BufRead| -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let mut v = vec![0; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut v)?;
        Ok(v)
    };
    let rel = bytes(r)?;
    let mut flags = [0u8];
    r.read_exact(&mut flags)?;
    let mut n = [0u64; 5];
    for x in &mut n {
        r.read_exact(&mut word)?;
        *x = u64::from_le_bytes(word);
    }
    let link = if flags[0] & LINK != 0 {
        Some(bytes(r)?)
    } else {
        None
    };
    Ok(WalkedFile {
        path: root.join(std::ffi::OsStr::from_bytes(&rel)),
        rel,
        executable: flags[0] & EXECUTABLE != 0,
        key: StatKey {
            dev: n[0],
            ino: n[1],
            size: n[2],
            mtime_ns: n[3] as i64,
            ctime_ns: n[4] as i64,
        },
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rel: &str, exec: bool, link: Option<&str>, n: u64) -> WalkedFile {
        WalkedFile {
            path: PathBuf::from("/r").join(rel),
            rel: rel.as_bytes().to_vec(),
            executable: exec,
            key: StatKey {
                dev: n,
                ino: n + 1,
                size: n * 3,
                mtime_ns: -(n as i64),
                ctime_ns: i64::MAX - n as i64,
            },
            link: link.map(|l| l.as_bytes().to_vec()),
        }
    }

    fn same(a: &WalkedFile, b: &WalkedFile) -> bool {
        (a.path == b.path && a.rel == b.rel && a.executable == b.executable)
            && (a.key == b.key && a.link == b.link)
    }

    #[test]
    fn files_read_back_are_those_pushed_across_blocks() -> io::Result<()> {
        let mut spill = Spill::new()?;
        // Enough records for several blocks, and some left in memory at the end.
        let files: Vec<WalkedFile> = (0..40_000u64)
            .map(|n| {
                let name = format!("d{}/{}-{}", n % 7, "x".repeat((n % 50) as usize), n);
                let link = (n % 11 == 0).then_some("../target");
                file(&name, n % 3 == 0, link, n)
            })
            .collect();
        for f in &files {
            spill.push(f)?;
        }
        assert_eq!(spill.count, 40_000);
        assert!(
            spill.written > 0 && !spill.buf.is_empty(),
            "some on disk, some held"
        );
        let back: Vec<WalkedFile> = spill.files(Path::new("/r"))?.collect::<io::Result<_>>()?;
        assert_eq!(back.len(), files.len());
        assert!(files.iter().zip(&back).all(|(a, b)| same(a, b)));
        Ok(())
    }

    /// A disk that fills: the write fails, and every file pushed is still read back.
    #[test]
    fn a_failed_write_loses_no_file() -> io::Result<()> {
        let full = File::options().read(true).write(true).open("/dev/full")?;
        let mut spill = Spill::in_file(full);
        let mut pushed = Vec::new();
        let failed = loop {
            let f = file(
                &format!("dir/{}", pushed.len()),
                false,
                None,
                pushed.len() as u64,
            );
            let result = spill.push(&f);
            pushed.push(f);
            if let Err(e) = result {
                break e;
            }
            assert!(pushed.len() < 1_000_000, "no write failed");
        };
        assert_eq!(failed.raw_os_error(), Some(28), "ENOSPC: {failed}");
        let back: Vec<WalkedFile> = spill.files(Path::new("/r"))?.collect::<io::Result<_>>()?;
        assert_eq!(back.len(), pushed.len());
        assert!(pushed.iter().zip(&back).all(|(a, b)| same(a, b)));
        Ok(())
    }
}

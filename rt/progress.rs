//! How far the image is written: the progress record `<status dir>/<ProcName>.progress`
//! (format: `mtcp_core::progress`), which `mtcp checkpoint` reads to show it. The writer
//! calls `start`, `advance` after each piece it writes, `syncing` and `finish`; that is
//! all it knows of progress.
//!
//! Cheap by design: the clock is read once a MiB at most and the record rewritten (one
//! 64-byte `pwrite`) every 50 ms at most; no allocation, raw syscalls only. Without a
//! usable status directory nothing is written.

use core::fmt::Write;

use mtcp_core::fmt::FmtBuf;
use mtcp_core::progress::{ProgressName, Record, PHASE_DONE, PHASE_FAILED, PHASE_SYNCING, PHASE_WRITING};
use mtcp_core::sys::{self, CPathBuf, Fd};

/// Bytes written between two looks at the clock.
const CLOCK_EVERY: u64 = 1 << 20;
/// The least time between two rewrites of the record.
const WRITE_EVERY_NS: u64 = 50_000_000;

pub struct Progress {
    fd: Option<Fd>,
    rec: Record,
    unclocked: u64,
}

impl Progress {
    /// Writing an image of `total` bytes begins, in the progress file of process `proc`
    /// (a forked writer reports as the program it writes).
    pub fn start(total: u64, proc: mtcp_core::protocol::ProcName) -> Progress {
        let now = sys::monotonic_ns();
        let p = Progress {
            fd: open_record(proc),
            rec: Record {
                phase: PHASE_WRITING,
                done: 0,
                total,
                started_ns: now,
                updated_ns: now,
            },
            unclocked: 0,
        };
        p.write();
        p
    }

    /// `n` more bytes are written.
    pub fn advance(&mut self, n: u64) {
        self.rec.done = self.rec.done.saturating_add(n).min(self.rec.total);
        self.unclocked += n;
        if self.unclocked < CLOCK_EVERY || self.fd.is_none() {
            return;
        }
        self.unclocked = 0;
        let now = sys::monotonic_ns();
        if now.saturating_sub(self.rec.updated_ns) >= WRITE_EVERY_NS {
            self.rec.updated_ns = now;
            self.write();
        }
    }

    /// Everything is written; the file is being synced to disk.
    pub fn syncing(&mut self) {
        self.rec.done = self.rec.total;
        self.set_phase(PHASE_SYNCING);
    }

    /// The image is in place (`ok`), or the checkpoint failed.
    pub fn finish(mut self, ok: bool) {
        if ok {
            self.rec.done = self.rec.total;
        }
        self.set_phase(if ok { PHASE_DONE } else { PHASE_FAILED });
    }

    fn set_phase(&mut self, phase: u32) {
        self.rec.phase = phase;
        self.rec.updated_ns = sys::monotonic_ns();
        self.write();
    }

    /// Failures are ignored: progress is only shown, the image is what matters.
    fn write(&self) {
        if let Some(fd) = &self.fd {
            let _ = sys::pwrite_all(fd.raw(), &self.rec.to_bytes(), 0);
        }
    }
}

/// This process's progress file in its status directory (the status file's checks
/// apply: a directory of this user's alone), opened for writing.
fn open_record(proc: mtcp_core::protocol::ProcName) -> Option<Fd> {
    let dir = crate::status::private_dir()?;
    let mut name = FmtBuf::<64>::new();
    let _ = write!(name, "{}", ProgressName(proc));
    let name = CPathBuf::<64>::new(name.as_bytes()).ok()?;
    let flags = sys::O_WRONLY | sys::O_CREAT | sys::O_NOFOLLOW | sys::O_NONBLOCK | sys::O_CLOEXEC;
    sys::openat(dir.raw(), &name, flags, 0o600).ok()
}

//! Step 4, files: inotify descriptors made again, each watch under its old number.

use core::fmt::Write;

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::{FdRecord, InotifyState, Meta, FD_INOTIFY, NOT_SHARED};
use mtcp_core::sys::{self, CPath, Fd};
use mtcp_core::Errno;

use crate::deleted_files::{aside, put_at, unlinked_file_in};

const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;
const IN_ATTRIB: u32 = 0x4;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
const IN_MASK_ADD: u32 = 0x2000_0000;
const IN_MASK_CREATE: u32 = 0x1000_0000;

/// Makes inotify record `rec` (record `index`) again: a new instance with the record's
/// flags, its watches added in wd order. The kernel numbers watches upwards from 1 and
/// never reuses a number, so a number the program no longer had is taken by a
/// placeholder watch (of a nameless file of our own) removed at once; the IN_IGNORED
/// events that leaves are read out before the program runs.
pub fn restore(meta: &Meta, index: usize, rec: &FdRecord, verbose: bool) {
    let Some((state, watches)) = InotifyState::of(rec, meta.string(rec.data)) else {
        eprint_line!(
            "mtcp_restart: warning: fd {} (inotify): malformed record; it stays closed",
            rec.fd
        );
        return;
    };
    if state.same_as != NOT_SHARED {
        let known = (0..index).any(|j| meta.fd(j).fd == state.same_as && meta.fd(j).kind == FD_INOTIFY);
        let shared = if known {
            sys::dup3(state.same_as as i32, rec.fd as i32, (rec.flags & O_CLOEXEC) as usize)
        } else {
            Err(Errno::EBADF)
        };
        if let Err(e) = shared {
            eprint_line!(
                "mtcp_restart: warning: fd {} (inotify) shared fd {}, which is not back ({}); it stays closed",
                rec.fd,
                state.same_as,
                ErrnoName(e)
            );
        }
        return;
    }
    let made = (|| -> Result<(), Errno> {
        let fd = aside(sys::inotify_init((O_NONBLOCK | O_CLOEXEC) as usize)?, rec)?;
        let mut placeholders = 0;
        let mut next = 1u32;
        for (w, path) in watches {
            while next < w.wd {
                placeholder(&fd)?;
                placeholders += 1;
                next += 1;
            }
            let added = if path.is_empty() {
                Err(Errno::ENOENT)
            } else {
                let mask = (w.mask & !(IN_MASK_ADD | IN_MASK_CREATE)) | IN_DONT_FOLLOW;
                CPath::new(path).and_then(|p| sys::inotify_add_watch(fd.raw(), &p, mask))
            };
            match added {
                Ok(wd) if wd == w.wd => {
                    if verbose {
                        eprint_line!(
                            "mtcp_restart: fd {} (inotify) watches {} again as wd {}",
                            rec.fd,
                            Lossy(path),
                            wd
                        );
                    }
                }
                Ok(wd) => eprint_line!(
                    "mtcp_restart: warning: fd {} (inotify): {} is watched as wd {}, not {} (it was watched twice?)",
                    rec.fd,
                    Lossy(path),
                    wd,
                    w.wd
                ),
                Err(e) => {
                    if path.is_empty() {
                        eprint_line!(
                            "mtcp_restart: warning: fd {} (inotify): the file of wd {} (inode {}) had no path the checkpoint could find; that watch is lost",
                            rec.fd,
                            w.wd,
                            w.inode
                        );
                    } else {
                        eprint_line!(
                            "mtcp_restart: warning: fd {} (inotify): {} (wd {}) cannot be watched again: {}; that watch is lost",
                            rec.fd,
                            Lossy(path),
                            w.wd,
                            ErrnoName(e)
                        );
                    }
                    placeholder(&fd)?;
                    placeholders += 1;
                }
            }
            next = w.wd + 1;
        }
        if placeholders > 0 {
            drain(&fd);
        }
        sys::fcntl(fd.raw(), sys::F_SETFL, (rec.flags & O_NONBLOCK) as usize)?;
        put_at(fd, rec)
    })();
    if let Err(e) = made {
        eprint_line!(
            "mtcp_restart: warning: fd {} (inotify) cannot be made again: {}; it stays closed",
            rec.fd,
            ErrnoName(e)
        );
    }
}

/// Takes the next watch descriptor number with a watch that is removed at once.
fn placeholder(fd: &Fd) -> Result<(), Errno> {
    let file = unlinked_file_in(b"/tmp", 0o600)?;
    let mut link = FmtBuf::<48>::new();
    let _ = write!(link, "/proc/self/fd/{}", file.raw());
    let wd = sys::inotify_add_watch(fd.raw(), &CPath::new(link.as_bytes())?, IN_ATTRIB)?;
    sys::inotify_rm_watch(fd.raw(), wd)
}

/// Reads out the events queued so far (the placeholders' IN_IGNORED); `fd` is
/// non-blocking.
fn drain(fd: &Fd) {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for writes of its length.
    while matches!(unsafe { sys::read(fd.raw(), buf.as_mut_ptr(), buf.len()) }, Ok(n) if n > 0) {}
}

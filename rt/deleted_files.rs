//! Deleted files still open (their contents, within the limits) and FIFOs opened by path, at checkpoint time.

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::fmt::{FmtBuf, Lossy};
use mtcp_core::image::*;
use mtcp_core::sys::{self, CPath};

use crate::config::CONFIG;
use crate::state::FailMessage;

const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// Filesystems whose "regular files" are something else (an unlinked message queue
/// shows up as `/name (deleted)`): mqueue, hugetlbfs, proc, sysfs, cgroup2, debugfs,
/// tracefs, securityfs, bpf, configfs.
const NOT_FILES: [u32; 10] = [
    0x1980_0202,
    0x9584_58f6,
    0x9fa0,
    0x6265_6572,
    0x6367_7270,
    0x6462_6720,
    0x7472_6163,
    0x7363_6673,
    0xcafe_4a11,
    0x6265_6570,
];

/// Whether descriptor `fd`, whose /proc/self/fd link is `target` and whose file type
/// is `mode`, is a deleted regular file (memfds included: they come back as plain
/// unlinked files).
pub fn is_deleted(fd: u32, target: &[u8], mode: u32) -> bool {
    mode & 0o170000 == 0o100000
        && target.starts_with(b"/")
        && target.ends_with(DELETED_SUFFIX)
        && sys::filesystem_type(fd as i32).is_ok_and(|t| !NOT_FILES.contains(&t))
}

/// The most bytes of deleted files one image carries: mtcp_restart reads the whole
/// metadata, where they are, into its scratch memory (128 MiB on x86_64, 32 MiB on
/// i386: linker/restart-*.ld), which must hold the rest of the metadata too.
#[cfg(target_pointer_width = "64")]
const MAX_TOTAL: u64 = 96 << 20;
#[cfg(target_pointer_width = "32")]
const MAX_TOTAL: u64 = 24 << 20;

/// Before anything is written: a deleted file larger than `MTCP_DELETED_LIMIT` fails
/// the checkpoint, naming the file and the limit (its bytes would otherwise be lost),
/// and so do deleted files that together are more than a restart can take back.
pub fn refuse_oversized() -> Result<(), FailMessage> {
    // SAFETY: the configuration is written only before the first checkpoint.
    let limit = unsafe { (*CONFIG.get()).deleted_limit };
    let mut refused = None;
    // Each file counts once, however many descriptors it has (beyond this many files,
    // every descriptor counts: the sum only errs upwards).
    let mut seen = [(0u64, 0u32, 0u32); 256];
    let mut seen_count = 0;
    let mut total = 0u64;
    let listed = crate::tasks::for_each_entry(b"/proc/self/fd", |fd| {
        if refused.is_some() {
            return;
        }
        let mut link = FmtBuf::<48>::new();
        let _ = write!(link, "/proc/self/fd/{}", fd);
        let mut target = [0u8; 4096];
        let Ok(target) = sys::readlink(link.as_bytes(), &mut target) else {
            return;
        };
        let Ok(st) = CPath::new(link.as_bytes()).and_then(|p| sys::statx(sys::AT_FDCWD, &p, 0)) else {
            return;
        };
        if is_deleted(fd, target, st.mode as u32) && st.size > limit {
            let mut m = FailMessage::new();
            let _ = write!(
                m,
                "fd {} is a deleted file of {} bytes ({}), more than MTCP_DELETED_LIMIT ({} bytes): raise the limit (mtcp launch --deleted-limit) or close the file",
                fd,
                st.size,
                Lossy(target),
                limit
            );
            refused = Some(m);
            return;
        }
        if is_deleted(fd, target, st.mode as u32) {
            let key = (st.ino, st.dev_major, st.dev_minor);
            if seen[..seen_count].contains(&key) {
                return;
            }
            if seen_count < seen.len() {
                seen[seen_count] = key;
                seen_count += 1;
            }
            total += st.size;
            if total > MAX_TOTAL {
                let mut m = FailMessage::new();
                let _ = write!(
                    m,
                    "the deleted files this process holds open (the last one fd {}, {}) are more than the {} bytes an image can carry: close some",
                    fd,
                    Lossy(target),
                    MAX_TOTAL
                );
                refused = Some(m);
            }
        }
    });
    match (refused, listed) {
        (Some(m), _) => Err(m),
        (None, Ok(())) => Ok(()),
        (None, Err(_)) => Ok(()), // fds::capture reports an unreadable /proc/self/fd
    }
}

/// Appends the payload of deleted file `rec` (its fd, inode and device filled in) to
/// `out`: a DeletedFile, then the contents unless an `earlier` record is the same file.
/// Errors: ENOMEM (scratch memory full), or what opening and reading the file returns
/// (EIO if it shrank while being read).
pub fn capture(rec: &FdRecord, earlier: &[FdRecord], out: &mut ArenaVec<u8>) -> Result<(), Errno> {
    let same = earlier.iter().find(|r| {
        r.kind == FD_DELETED && r.inode == rec.inode && r.dev_major == rec.dev_major && r.dev_minor == rec.dev_minor
    });
    if let Some(first) = same {
        let dup = sys::same_open_file(first.fd as i32, rec.fd as i32) == Ok(true);
        let head = DeletedFile {
            same_as: first.fd,
            flags: if dup { DELETED_SAME_OPEN_FILE } else { 0 },
            size: 0,
        };
        return push_all(out, as_bytes(&head));
    }
    // Our own open file: the program's may be write-only, and its offset stays put.
    let mut link = FmtBuf::<48>::new();
    let _ = write!(link, "/proc/self/fd/{}", rec.fd);
    let file = sys::open(link.as_bytes(), sys::O_RDONLY | sys::O_CLOEXEC, 0)?;
    let size = sys::fstat(file.raw())?.size;
    let head = DeletedFile {
        same_as: NOT_SHARED,
        flags: 0,
        size,
    };
    push_all(out, as_bytes(&head))?;
    let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
    let contents = out.grow(size)?;
    // SAFETY: contents is valid for writes of `size` bytes.
    unsafe { sys::pread_exact(file.raw(), contents.as_mut_ptr(), size, 0) }
}

/// The bytes waiting in FIFO `rec` when the process holds a write end of it too (an
/// O_RDWR descriptor holds both): read out and written straight back, and appended to
/// `out`. Only the first readable descriptor of a FIFO carries them. Ok(false): none
/// saved here.
pub fn capture_fifo(
    rec: &FdRecord,
    earlier: &[FdRecord],
    all: &[FdRecord],
    out: &mut ArenaVec<u8>,
) -> Result<bool, Errno> {
    let same = |r: &&FdRecord| {
        r.kind == FD_FIFO && r.inode == rec.inode && r.dev_minor == rec.dev_minor && r.dev_major == rec.dev_major
    };
    let readable = |r: &FdRecord| r.flags & 3 != sys::O_WRONLY as u32;
    if !readable(rec) || earlier.iter().filter(same).any(readable) {
        return Ok(false);
    }
    let Some(writer) = all.iter().filter(same).find(|r| r.flags & 3 != sys::O_RDONLY as u32) else {
        return Ok(false);
    };
    let start = out.len();
    let mut chunk = [0u8; 4096];
    loop {
        let want = sys::bytes_readable(rec.fd as i32)?.min(chunk.len());
        if want == 0 {
            break;
        }
        // SAFETY: chunk is valid for writes of `want` bytes.
        let got = unsafe { sys::read(rec.fd as i32, chunk.as_mut_ptr(), want)? };
        push_all(out, &chunk[..got])?;
    }
    sys::write_all(writer.fd as i32, &out.as_slice()[start..])?;
    Ok(true)
}

fn push_all(out: &mut ArenaVec<u8>, bytes: &[u8]) -> Result<(), Errno> {
    out.grow(bytes.len())?.copy_from_slice(bytes);
    Ok(())
}

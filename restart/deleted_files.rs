//! Step 4, files: deleted files made again unlinked with their contents; FIFOs reopened by path.
#![deny(unsafe_code)]

use core::fmt::Write;

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::{
    DeletedFile, FdRecord, Meta, DELETED_SAME_OPEN_FILE, FD_DELETED, KIND_ANON_SHARED, NOT_SHARED, REGION_DELETED,
};
use mtcp_core::sys::{self, CPath, Fd};
use mtcp_core::Errno;

const O_TMPFILE: usize = 0o20000000 | sys::O_DIRECTORY;
const O_APPEND: u32 = 0o2000;
const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;
/// What of a record's flags an open gets: access mode, APPEND, NONBLOCK, CLOEXEC, LARGEFILE.
const KEEP: u32 = 0o3 | O_APPEND | O_NONBLOCK | O_CLOEXEC | 0o100000;
const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// Makes deleted file `rec` (record `index`) again: the first record of a file gets a
/// new unlinked file in its old directory (else the image's, else /tmp) holding the
/// saved contents; a later record of the same file reopens that one, or shares it
/// where it was a dup. Then the flags and offset are put back.
pub fn restore_deleted(meta: &Meta, index: usize, rec: &FdRecord, verbose: bool) {
    let path = meta.string(rec.path);
    let Some((head, contents)) = DeletedFile::of(rec, meta.string(rec.data)) else {
        eprint_line!(
            "mtcp_restart: warning: fd {} ({}): malformed record; it stays closed",
            rec.fd,
            Lossy(path)
        );
        return;
    };
    let made = if head.same_as == NOT_SHARED {
        say_if_mapped_shared(meta, rec, path);
        recreate(path, rec, contents)
    } else if !(0..index).any(|j| meta.fd(j).fd == head.same_as && meta.fd(j).kind == FD_DELETED) {
        Err(Errno::EBADF)
    } else if head.flags & DELETED_SAME_OPEN_FILE != 0 {
        let shared = sys::dup3(head.same_as as i32, rec.fd as i32, (rec.flags & O_CLOEXEC) as usize);
        match shared {
            Ok(()) if verbose => eprint_line!(
                "mtcp_restart: fd {} (deleted file) shares fd {} again",
                rec.fd,
                head.same_as
            ),
            Ok(()) => {}
            Err(e) => eprint_line!(
                "mtcp_restart: warning: fd {} ({}) shared fd {}, which is not back ({}); it stays closed",
                rec.fd,
                Lossy(path),
                head.same_as,
                ErrnoName(e)
            ),
        }
        return;
    } else {
        reopen(head.same_as, rec)
    };
    let placed = made.and_then(|file| {
        sys::seek_set(file.raw(), rec.pos)?;
        put_at(file, rec)
    });
    match placed {
        Ok(()) if verbose => eprint_line!(
            "mtcp_restart: fd {} deleted file {} made again ({} bytes) at offset {}",
            rec.fd,
            Lossy(path),
            if head.same_as == NOT_SHARED { contents.len() } else { 0 },
            rec.pos
        ),
        Ok(()) => {}
        Err(e) => eprint_line!(
            "mtcp_restart: warning: fd {} (deleted file {}) cannot be made again: {}; it stays closed",
            rec.fd,
            Lossy(path),
            ErrnoName(e)
        ),
    }
}

/// A shared mapping of the same deleted file came back as shared memory of its own
/// (with the bytes it had): the file and the mapping no longer see each other's writes.
fn say_if_mapped_shared(meta: &Meta, rec: &FdRecord, path: &[u8]) {
    let mapped = (0..meta.region_count).map(|i| meta.region(i)).any(|r| {
        r.kind == KIND_ANON_SHARED
            && r.flags & REGION_DELETED != 0
            && r.inode == rec.inode
            && (r.dev_major, r.dev_minor) == (rec.dev_major, rec.dev_minor)
    });
    if mapped {
        eprint_line!(
            "mtcp_restart: warning: fd {} ({}) was also mapped shared; the mapping comes back as memory of its own, and writes through one are no longer seen through the other",
            rec.fd,
            Lossy(path)
        );
    }
}

/// A new unlinked file with `contents`, opened as `rec` was.
fn recreate(path: &[u8], rec: &FdRecord, contents: &[u8]) -> Result<Fd, Errno> {
    let original = path.strip_suffix(DELETED_SUFFIX).unwrap_or(path);
    let parent = |p: &'static [u8]| match p.iter().rposition(|&c| c == b'/') {
        Some(0) => &b"/"[..],
        Some(i) => &p[..i],
        None => &b"."[..],
    };
    let mut last = Errno::ENOENT;
    let image_dir = parent(crate::image_name());
    let original_dir = match original.iter().rposition(|&c| c == b'/') {
        Some(0) => &b"/"[..],
        Some(i) => &original[..i],
        None => &b"."[..],
    };
    for dir in [original_dir, image_dir, b"/tmp"] {
        match unlinked_file_in(dir, rec.mode & 0o7777) {
            Ok(writer) => {
                let writer = aside(writer, rec)?;
                sys::write_all(writer.raw(), contents)?;
                // The program's own open file, with its access mode and flags.
                return reopen(writer.raw() as u32, rec);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A new read-write file in `dir` that has no name: O_TMPFILE, or where the filesystem
/// does not have it, a file made under a random name and unlinked at once.
pub fn unlinked_file_in(dir: &[u8], mode: u32) -> Result<Fd, Errno> {
    let mode = if mode == 0 { 0o600 } else { mode as usize };
    match sys::open(dir, O_TMPFILE | sys::O_RDWR | sys::O_CLOEXEC, mode) {
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {}
        other => return other,
    }
    let dirfd = sys::open(dir, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0)?;
    let mut name = FmtBuf::<64>::new();
    let _ = write!(name, ".mtcp-deleted.{:016x}", sys::random_u64());
    let name = CPath::new(name.as_bytes())?;
    let file = sys::openat(
        dirfd.raw(),
        &name,
        sys::O_RDWR | sys::O_CREAT | sys::O_EXCL | sys::O_NOFOLLOW | sys::O_CLOEXEC,
        mode,
    )?;
    sys::unlinkat(dirfd.raw(), &name)?;
    Ok(file)
}

/// Another open file of the file at descriptor `fd`, with `rec`'s access mode and flags.
fn reopen(fd: u32, rec: &FdRecord) -> Result<Fd, Errno> {
    let mut link = FmtBuf::<48>::new();
    let _ = write!(link, "/proc/self/fd/{}", fd);
    sys::open(link.as_bytes(), (rec.flags & KEEP) as usize, 0)
}

/// A descriptor of our own, moved off `rec`'s number if it got that one: it is closed
/// once the program's file is there.
pub fn aside(fd: Fd, rec: &FdRecord) -> Result<Fd, Errno> {
    if fd.raw() as u32 != rec.fd {
        return Ok(fd);
    }
    sys::dup_at_least(fd.raw(), rec.fd as usize + 1)
}

/// Moves `file` to `rec`'s number (with its close-on-exec flag).
pub fn put_at(file: Fd, rec: &FdRecord) -> Result<(), Errno> {
    if file.raw() as u32 == rec.fd {
        let _ = file.into_raw();
        return Ok(());
    }
    sys::dup3(file.raw(), rec.fd as i32, (rec.flags & O_CLOEXEC) as usize)
}

/// Reopens FIFO `rec` by path at its number with its flags, never blocking: while it
/// is opened, a descriptor of our own holds both ends, so that neither a read-only
/// open waits for a writer nor a write-only one fails for want of a reader. Bytes that
/// waited in it go back in.
pub fn restore_fifo(meta: &Meta, rec: &FdRecord, verbose: bool) {
    let path = meta.string(rec.path);
    let data = meta.string(rec.data);
    let done = (|| -> Result<(), Errno> {
        let keeper = sys::open(
            path,
            sys::O_RDWR | sys::O_NONBLOCK | sys::O_NOFOLLOW | sys::O_CLOEXEC,
            0,
        )?;
        let keeper = aside(keeper, rec)?;
        let st = sys::fstat(keeper.raw())?;
        if st.mode as u32 & 0o170000 != 0o010000 || st.ino != rec.inode {
            return Err(Errno::ESTALE);
        }
        let file = sys::open(path, ((rec.flags & KEEP) | O_NONBLOCK) as usize | sys::O_NOFOLLOW, 0)?;
        sys::fcntl(file.raw(), sys::F_SETFL, (rec.flags & (O_APPEND | O_NONBLOCK)) as usize)?;
        sys::write_all(keeper.raw(), data)?;
        put_at(file, rec)
    })();
    match done {
        Ok(()) if verbose => eprint_line!(
            "mtcp_restart: fd {} FIFO {} reopened with {} byte(s) in it",
            rec.fd,
            Lossy(path),
            data.len()
        ),
        Ok(()) => {}
        Err(Errno::ESTALE) => eprint_line!(
            "mtcp_restart: warning: fd {}: {} is no longer the FIFO it was at checkpoint time; it stays closed",
            rec.fd,
            Lossy(path)
        ),
        Err(e) => eprint_line!(
            "mtcp_restart: warning: fd {} (FIFO {}) cannot be reopened: {}; it stays closed",
            rec.fd,
            Lossy(path),
            ErrnoName(e)
        ),
    }
}

//! The process's open file descriptors as the image records them: kind, flags, offset,
//! identity, the bytes waiting in pipes whose both ends the process holds (terminals
//! and standard input: `tty`), the state of event descriptors (`event_fds`) and of
//! sockets (`sockets`), deleted files and FIFOs (`deleted_files`), inotify watches
//! (`inotify`) and message queues (`mqueue`).

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::arena::Arena;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::image::*;
use mtcp_core::maps;
use mtcp_core::sys::{self, CPath};

/// The process's open file descriptors, recorded before the writer opens its own.
pub struct OpenFiles {
    pub records: &'static [FdRecord],
    /// Each record's path as a range of `paths`.
    pub ranges: &'static [(usize, usize)],
    /// The bytes in the pipe, for read ends of pipes, a regular file's FileIdentity, or
    /// an event descriptor's state, as a range of `paths`.
    pub data_ranges: &'static [(usize, usize)],
    pub paths: &'static [u8],
}

/// Records every open descriptor but the ones the writer opens later, and the bytes
/// waiting in each pipe whose both ends the process holds (read out and written back).
pub fn capture(arena: &mut Arena) -> Result<OpenFiles, Errno> {
    let mut numbers = arena.vec::<u32>();
    let mut failed = None;
    crate::tasks::for_each_entry(b"/proc/self/fd", |fd| {
        if failed.is_none() {
            if let Err(e) = numbers.push(fd) {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let numbers = numbers.finish();
    let records = arena.alloc::<FdRecord>(numbers.len())?;
    let ranges = arena.alloc::<(usize, usize)>(numbers.len())?;
    let data_ranges = arena.alloc::<(usize, usize)>(numbers.len())?;
    let mut paths = arena.vec::<u8>();
    let mut kept = 0;
    for &fd in numbers.iter() {
        let mut link = FmtBuf::<48>::new();
        let _ = write!(link, "/proc/self/fd/{}", fd);
        let mut target = [0u8; 4096];
        let target = match sys::readlink(link.as_bytes(), &mut target) {
            Ok(t) => t,
            Err(_) => continue, // the directory's own descriptor, already closed
        };
        let mut rec = FdRecord {
            fd,
            kind: FD_OTHER,
            ..FdRecord::default()
        };
        let mut identity = None;
        let mut nlink = 1;
        if let Ok(st) = CPath::new(link.as_bytes()).and_then(|p| sys::statx(sys::AT_FDCWD, &p, 0)) {
            identity = Some(st.identity());
            nlink = st.nlink;
            rec.mode = st.mode as u32;
            rec.inode = st.ino;
            rec.dev_major = st.dev_major;
            rec.dev_minor = st.dev_minor;
            rec.kind = match st.mode as u32 & 0o170000 {
                0o100000 if target.starts_with(b"/") => FD_FILE,
                0o040000 if target.starts_with(b"/") => FD_DIR,
                0o020000 if target.starts_with(b"/") => FD_CHAR,
                0o010000 if target.starts_with(b"pipe:") => FD_PIPE,
                0o010000 if target.starts_with(b"/") && fd > 2 => FD_FIFO,
                _ => FD_OTHER,
            };
        }
        let mut info_path = FmtBuf::<48>::new();
        let _ = write!(info_path, "/proc/self/fdinfo/{}", fd);
        let mut info = [0u8; 512];
        let n = sys::read_file(info_path.as_bytes(), &mut info).unwrap_or(0);
        for line in info[..n].split(|&c| c == b'\n') {
            if let Some(v) = line.strip_prefix(b"pos:") {
                rec.pos = maps::dec(v.trim_ascii()).unwrap_or(0);
            } else if let Some(v) = line.strip_prefix(b"flags:") {
                rec.flags = v
                    .trim_ascii()
                    .iter()
                    .fold(0u32, |acc, &c| (acc << 3) | (c.wrapping_sub(b'0') as u32 & 7));
            }
        }
        let start = paths.len();
        for &c in target {
            paths.push(c)?;
        }
        ranges[kept] = (start, paths.len());
        if let Some(kind) = crate::event_fds::kind_of(target) {
            let start = paths.len();
            if crate::event_fds::capture(fd, kind, &info[..n], &records[..kept], &mut paths)? {
                rec.kind = kind;
                data_ranges[kept] = (start, paths.len());
            }
        }
        if crate::inotify::is_inotify(target) {
            let start = paths.len();
            if crate::inotify::capture(fd, &records[..kept], &mut paths)? {
                rec.kind = FD_INOTIFY;
                data_ranges[kept] = (start, paths.len());
            }
        }
        if rec.kind == FD_OTHER && target.starts_with(b"socket:") {
            let start = paths.len();
            if crate::sockets::capture(fd, rec.inode, &records[..kept], &mut paths)? {
                rec.kind = FD_SOCKET;
                data_ranges[kept] = (start, paths.len());
            }
        }
        if rec.kind == FD_FILE && crate::mqueue::is_mqueue(fd, rec.mode) {
            let start = paths.len();
            // A queue the kernel will not describe is no file to reopen by its name.
            rec.kind = FD_OTHER;
            if crate::mqueue::capture(&rec, nlink, &records[..kept], &mut paths)? {
                rec.kind = FD_MQUEUE;
                data_ranges[kept] = (start, paths.len());
            }
        }
        if rec.kind == FD_FILE && crate::deleted_files::is_deleted(fd, target, rec.mode) {
            let start = paths.len();
            rec.kind = FD_DELETED;
            crate::deleted_files::capture(&rec, &records[..kept], &mut paths)?;
            data_ranges[kept] = (start, paths.len());
        }
        if let Some(id) = identity.filter(|_| rec.kind == FD_FILE) {
            let start = paths.len();
            for &c in as_bytes(&id) {
                paths.push(c)?;
            }
            data_ranges[kept] = (start, paths.len());
        }
        if rec.kind == FD_CHAR {
            if let Some(range) = crate::tty::capture_terminal(fd, &mut paths)? {
                data_ranges[kept] = range;
            }
        }
        records[kept] = rec;
        kept += 1;
    }
    // The bytes in each pipe whose both ends are ours: read them, put them straight back.
    for i in 0..kept {
        let r = records[i];
        if r.kind != FD_PIPE || r.flags & 3 != sys::O_RDONLY as u32 {
            continue;
        }
        let writer = records[..kept]
            .iter()
            .find(|w| w.kind == FD_PIPE && w.inode == r.inode && w.flags & 3 == sys::O_WRONLY as u32);
        let writer = match writer {
            Some(w) => w.fd as i32,
            None => continue,
        };
        let start = paths.len();
        let mut chunk = [0u8; 4096];
        loop {
            let want = sys::bytes_readable(r.fd as i32)?.min(chunk.len());
            if want == 0 {
                break;
            }
            // SAFETY: chunk is valid for writes of `want` bytes.
            let got = unsafe { sys::read(r.fd as i32, chunk.as_mut_ptr(), want)? };
            for &c in &chunk[..got] {
                paths.push(c)?;
            }
        }
        sys::write_all(writer, &paths.as_slice()[start..])?;
        data_ranges[i] = (start, paths.len());
    }
    for i in 0..kept {
        let r = records[i];
        let start = paths.len();
        if r.kind == FD_FIFO && crate::deleted_files::capture_fifo(&r, &records[..i], &records[..kept], &mut paths)? {
            data_ranges[i] = (start, paths.len());
        }
    }
    crate::sockets::capture_pairs(&records[..kept], &mut data_ranges[..kept], &mut paths)?;
    crate::mqueue::capture_queues(&records[..kept], &mut data_ranges[..kept], &mut paths)?;
    crate::tty::capture_stdin_pipe(&mut records[..kept], &mut data_ranges[..kept], &mut paths)?;
    let paths = paths.finish();
    Ok(OpenFiles {
        records: &records[..kept],
        ranges: &ranges[..kept],
        data_ranges: &data_ranges[..kept],
        paths,
    })
}

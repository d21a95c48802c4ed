//! inotify descriptors at checkpoint time: each watch from fdinfo, with its file's path.

use core::fmt::Write;
use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::image::*;
use mtcp_core::sys::{self, CPath};

/// The most watches of one inotify descriptor the image keeps; a descriptor with more
/// stays FD_OTHER (closed at restart, and named).
const MAX_WATCHES: usize = 256;
const MAX_HANDLE: usize = 128;
const O_PATH: usize = 0o10000000;

#[derive(Clone, Copy)]
struct Watch {
    wd: u32,
    mask: u32,
    ignored_mask: u32,
    inode: u64,
    sdev: u32,
    /// A struct file_handle: handle_bytes, handle_type, then the bytes.
    handle: [u8; 8 + MAX_HANDLE],
    handle_len: usize,
}

pub fn is_inotify(target: &[u8]) -> bool {
    target == b"anon_inode:inotify"
}

/// Appends the state of inotify descriptor `fd` to `out`: an InotifyState, then each
/// watch in wd order with the path it resolves to (empty where none was found).
/// Ok(false): not recorded (fdinfo unreadable, or too many watches).
pub fn capture(fd: u32, earlier: &[FdRecord], out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    if let Some(first) = earlier
        .iter()
        .find(|r| r.kind == FD_INOTIFY && sys::same_open_file(r.fd as i32, fd as i32) == Ok(true))
    {
        push_all(
            out,
            as_bytes(&InotifyState {
                same_as: first.fd,
                count: 0,
            }),
        )?;
        return Ok(true);
    }
    let mut watches = [Watch {
        wd: 0,
        mask: 0,
        ignored_mask: 0,
        inode: 0,
        sdev: 0,
        handle: [0; 8 + MAX_HANDLE],
        handle_len: 0,
    }; MAX_WATCHES];
    let Some(count) = read_watches(fd, &mut watches) else {
        return Ok(false);
    };
    let watches = &mut watches[..count];
    watches.sort_unstable_by_key(|w| w.wd);
    push_all(
        out,
        as_bytes(&InotifyState {
            same_as: NOT_SHARED,
            count: count as u32,
        }),
    )?;
    for w in watches.iter() {
        let mut buf = [0u8; 4096];
        let path = resolve(w, &mut buf).unwrap_or(b"");
        let rec = InotifyWatch {
            wd: w.wd,
            mask: w.mask,
            ignored_mask: w.ignored_mask,
            path_len: path.len() as u32,
            inode: w.inode,
            dev_major: w.sdev >> 20,
            dev_minor: w.sdev & 0xfffff,
        };
        push_all(out, as_bytes(&rec))?;
        push_all(out, path)?;
    }
    Ok(true)
}

/// The `inotify wd:...` lines of `fd`'s fdinfo, into `watches`; None if it could not be
/// read whole or has more watches than fit.
#[inline(never)]
fn read_watches(fd: u32, watches: &mut [Watch]) -> Option<usize> {
    let mut path = FmtBuf::<48>::new();
    let _ = write!(path, "/proc/self/fdinfo/{}", fd);
    let mut info = [0u8; 48 << 10];
    let n = sys::read_file(path.as_bytes(), &mut info).ok()?;
    if n == info.len() {
        return None;
    }
    let mut count = 0;
    for line in info[..n].split(|&c| c == b'\n') {
        let Some(fields) = line.strip_prefix(b"inotify ") else {
            continue;
        };
        let w = watches.get_mut(count)?;
        let mut handle_bytes = 0usize;
        for f in fields.split(|&c| c == b' ') {
            let Some(colon) = f.iter().position(|&c| c == b':') else {
                continue;
            };
            let (key, v) = (&f[..colon], &f[colon + 1..]);
            let num = || radix16(v);
            match key {
                b"wd" => w.wd = num()? as u32,
                b"ino" => w.inode = num()?,
                b"sdev" => w.sdev = num()? as u32,
                b"mask" => w.mask = num()? as u32,
                b"ignored_mask" => w.ignored_mask = num()? as u32,
                b"fhandle-bytes" => handle_bytes = num()? as usize,
                b"fhandle-type" => w.handle[4..8].copy_from_slice(&(num()? as u32).to_ne_bytes()),
                b"f_handle" if handle_bytes <= MAX_HANDLE && v.len() == handle_bytes * 2 => {
                    for (i, pair) in v.chunks(2).enumerate() {
                        w.handle[8 + i] = radix16(pair)? as u8;
                    }
                    w.handle[..4].copy_from_slice(&(handle_bytes as u32).to_ne_bytes());
                    w.handle_len = 8 + handle_bytes;
                }
                _ => {}
            }
        }
        count += 1;
    }
    Some(count)
}

/// The path of watch `w`'s file: opened by its handle on its filesystem (needs
/// CAP_DAC_READ_SEARCH) and named by /proc/self/fd, and only if that path still leads
/// to the same inode.
fn resolve<'a>(w: &Watch, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    if w.handle_len == 0 {
        return None;
    }
    let mount = mount_point(w.sdev >> 20, w.sdev & 0xfffff)?;
    // Not O_PATH: the kernel does not take such a descriptor here.
    let mount_fd = sys::open(mount.as_bytes(), sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0).ok()?;
    let file = sys::open_by_handle_at(mount_fd.raw(), &w.handle[..w.handle_len], O_PATH | sys::O_CLOEXEC).ok()?;
    let mut link = FmtBuf::<48>::new();
    let _ = write!(link, "/proc/self/fd/{}", file.raw());
    let path = sys::readlink(link.as_bytes(), buf).ok()?;
    let st = CPath::new(path)
        .and_then(|p| sys::statx(sys::AT_FDCWD, &p, sys::AT_SYMLINK_NOFOLLOW))
        .ok()?;
    (path.starts_with(b"/") && st.ino == w.inode).then_some(path)
}

/// Where a filesystem with device `major:minor` is mounted (its whole-filesystem mount
/// if there is one), from /proc/self/mountinfo.
#[inline(never)]
fn mount_point(major: u32, minor: u32) -> Option<FmtBuf<4096>> {
    let mut text = [0u8; 64 << 10];
    let n = sys::read_file(b"/proc/self/mountinfo", &mut text).ok()?;
    let mut want = FmtBuf::<32>::new();
    let _ = write!(want, "{}:{}", major, minor);
    let mut found: Option<FmtBuf<4096>> = None;
    for line in text[..n].split(|&c| c == b'\n') {
        // id parent major:minor root mount-point ...
        let mut f = line.split(|&c| c == b' ');
        let (_, _, dev, root, point) = (f.next(), f.next(), f.next(), f.next(), f.next());
        let (Some(dev), Some(root), Some(point)) = (dev, root, point) else {
            continue;
        };
        if dev != want.as_bytes() || point.contains(&b'\\') {
            continue; // escaped names (spaces and the like) are left out
        }
        if found.is_none() || root == b"/" {
            let mut p = FmtBuf::<4096>::new();
            p.push_bytes(point);
            found = Some(p);
            if root == b"/" {
                break;
            }
        }
    }
    found
}

fn radix16(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter()
        .try_fold(0u64, |acc, &c| Some(acc * 16 + (c as char).to_digit(16)? as u64))
}

fn push_all(out: &mut ArenaVec<u8>, bytes: &[u8]) -> Result<(), Errno> {
    out.grow(bytes.len())?.copy_from_slice(bytes);
    Ok(())
}

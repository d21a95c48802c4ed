//! mtcp_restart: brings a process back from an image. Static, libc-free, linked at a
//! fixed address (linker/restart-<arch>.ld) and keeping all it owns inside its window.
//!
//! Phases: (1) read and check the header, metadata and CPU; (2) check every region
//! against this program's own window and the kernel's vdso; open the files shared
//! mappings need. Any problem so far is a one-line error and exit 1, with nothing of
//! the address space given up. (3) Unmap the kernel's stack, park the vdso/vvar in the
//! window, map and fill every region (verifying checksums), move the vdso/vvar to their
//! saved addresses. (4) Jump to the runtime's restore entry inside the restored image.
#![no_std]
// Errors carry their message in a fixed buffer (there is no allocator): large by design.
#![allow(clippy::result_large_err)]
#![no_main]

#[cfg(target_arch = "x86_64")]
#[allow(dead_code)] // shared with the runtime, which uses other parts
#[path = "../arch/x86_64/mod.rs"]
mod arch;
#[cfg(target_arch = "x86")]
#[allow(dead_code)]
#[path = "../arch/x86/mod.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/mem.rs"]
mod mem;
#[cfg(target_arch = "x86")]
#[path = "../arch/x86/mem.rs"]
mod mem;
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/start.rs"]
mod start;
#[cfg(target_arch = "x86")]
#[path = "../arch/x86/start.rs"]
mod start;

#[allow(dead_code)]
#[path = "../rt/arena.rs"]
mod arena;
#[allow(dead_code)]
#[macro_use]
#[path = "../rt/fmt.rs"]
mod fmt;
#[allow(dead_code)]
#[path = "../rt/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../rt/maps.rs"]
mod maps;
#[allow(dead_code)]
#[path = "../rt/sys.rs"]
mod sys;
#[allow(dead_code)]
#[path = "../rt/xxh64.rs"]
mod xxh64;

use core::fmt::Write;
use syscalls::Errno;

use arena::Arena;
use fmt::{ErrnoName, FmtBuf, Lossy};
use image::*;

pub const RESTART_STACK_SIZE: usize = 256 << 10;

#[repr(C, align(16))]
pub struct Stack([u8; RESTART_STACK_SIZE]);

/// The stack `_start` switches to: inside the window, unlike the kernel's.
#[no_mangle]
pub static mut RESTART_STACK: Stack = Stack([0; RESTART_STACK_SIZE]);

#[cfg(target_pointer_width = "64")]
const SCRATCH_SIZE: usize = 0x0800_0000;
#[cfg(target_pointer_width = "32")]
const SCRATCH_SIZE: usize = 0x0200_0000;

/// The image path as given, for messages.
static mut IMAGE_NAME: FmtBuf<4096> = FmtBuf::new();

fn image_name() -> &'static [u8] {
    // SAFETY: written once at start, read-only afterwards; single-threaded program.
    unsafe { (*core::ptr::addr_of!(IMAGE_NAME)).as_bytes() }
}

/// Prints `mtcp_restart: IMAGE: message` and exits 1.
macro_rules! die {
    ($($arg:tt)*) => {{
        let mut b = FmtBuf::<1024>::new();
        let _ = write!(b, "mtcp_restart: {}: ", Lossy(image_name()));
        let _ = write!(b, $($arg)*);
        b.push_bytes(b"\n");
        sys::write_stderr(b.as_bytes());
        sys::exit_group(1)
    }};
}

const USAGE: &str = "usage: mtcp_restart [--verbose] [--same-pid] IMAGE\n\
Restarts the process saved in IMAGE (written by the mtcp runtime) in place of this one:\n\
the restored process keeps this process's pid, terminal and standard streams.\n\
  --verbose   report what was restored, and how thread ids changed\n\
  --same-pid  give the process and its threads their ids from checkpoint time; the\n\
              restored process is then a child of this one, which waits for it and\n\
              exits as it does (needs CAP_CHECKPOINT_RESTORE, e.g. root; without it,\n\
              or if the ids are taken, it says so and uses new ids)\n";

/// Entered from `_start` on the static stack with the kernel's initial stack pointer.
///
/// # Safety
/// Called once, by `_start`, with the kernel's initial stack pointer.
#[no_mangle]
pub unsafe extern "C" fn restart_main(initial_sp: *const usize) -> ! {
    let argc = *initial_sp;
    let argv = initial_sp.add(1) as *const *const u8;
    let mut verbose = false;
    let mut same_pid = false;
    let mut path: Option<&[u8]> = None;
    for i in 1..argc {
        let arg = cstr(*argv.add(i));
        match arg {
            b"--verbose" | b"-v" => verbose = true,
            b"--same-pid" => same_pid = true,
            b"--help" | b"-h" => {
                let _ = sys::write_all(1, USAGE.as_bytes());
                sys::exit_group(0);
            }
            _ if arg.starts_with(b"-") && path.is_none() => {
                eprint_line!("mtcp_restart: unknown option {}\n{}", Lossy(arg), USAGE);
                sys::exit_group(2);
            }
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprint_line!("mtcp_restart: more than one image given\n{}", USAGE);
                sys::exit_group(2);
            }
        }
    }
    let path = match path {
        Some(p) => p,
        None => {
            sys::write_stderr(USAGE.as_bytes());
            sys::exit_group(2);
        }
    };
    (*core::ptr::addr_of_mut!(IMAGE_NAME)).push_bytes(path);
    // Nothing may interrupt the restore; each thread gets its own mask back from its frame.
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
    // The kernel's stack, where argv lives, is unmapped later: use the copy from here on.
    restart(image_name(), verbose, same_pid)
}

/// # Safety
/// `p` must point to a NUL-terminated string that outlives the returned slice.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    while *p.add(n) != 0 {
        n += 1;
    }
    core::slice::from_raw_parts(p, n)
}

/// Facts about this process's own kernel mappings.
#[derive(Clone, Copy, Default)]
struct Special {
    kind: u32,
    start: usize,
    end: usize,
}

/// # Safety
/// Runs once, single-threaded, on the static stack. From phase 3 on it replaces the whole address space outside mtcp_restart's window.
unsafe fn restart(path: &[u8], verbose: bool, same_pid: bool) -> ! {
    let self_start = start::_start as *const () as usize;
    if !(arch::RESTART_BASE..arch::RESTART_BASE + arch::RESTART_WINDOW).contains(&self_start) {
        die!(
            "mtcp_restart is not linked at its fixed address {:#x}; rebuild it",
            arch::RESTART_BASE
        );
    }

    // Phase 1: header, metadata, CPU.
    let fd = match sys::open(path, sys::O_RDONLY | sys::O_CLOEXEC, 0) {
        Ok(fd) => fd,
        Err(e) => die!("cannot open: {}", ErrnoName(e)),
    };
    let size = match sys::fstat(fd) {
        Ok(st) if st.mode & 0o170000 == 0o100000 => st.size,
        Ok(_) => die!("not a regular file"),
        Err(e) => die!("cannot stat: {}", ErrnoName(e)),
    };
    let mut hbuf = [0u8; HEADER_SIZE];
    let got = if size >= HEADER_SIZE as u64 {
        sys::pread_exact(fd, hbuf.as_mut_ptr(), HEADER_SIZE, 0)
    } else {
        Ok(())
    };
    if let Err(e) = got {
        die!("cannot read the header: {}", ErrnoName(e));
    }
    let header = match parse_header(&hbuf[..if size >= HEADER_SIZE as u64 { HEADER_SIZE } else { 0 }], size) {
        Ok(h) => h,
        Err(e) => die!("{}", e.message()),
    };
    if header.arch != arch::ARCH {
        die!(
            "this is an {} image; this mtcp_restart is for {} (`mtcp restart` picks the right one)",
            arch_name(header.arch),
            arch_name(arch::ARCH)
        );
    }
    if header.page_size as usize != arch::PAGE_SIZE {
        die!(
            "image page size {} differs from this system's {}",
            header.page_size,
            arch::PAGE_SIZE
        );
    }
    let (xfeatures, xsave_size) = arch::xsave_features();
    if header.xfeatures & !xfeatures != 0 {
        die!(
            "this CPU lacks register state the image holds (image xfeatures {:#x}, this CPU {:#x})",
            header.xfeatures,
            xfeatures
        );
    }
    if header.xsave_size > xsave_size {
        die!(
            "this CPU's register save area ({} bytes) is smaller than the image's ({})",
            xsave_size,
            header.xsave_size
        );
    }

    let mut arena = match Arena::map_at(arch::RESTART_SCRATCH, SCRATCH_SIZE) {
        Ok(a) => a,
        Err(e) => die!(
            "cannot map scratch memory at {:#x}: {}",
            arch::RESTART_SCRATCH,
            ErrnoName(e)
        ),
    };
    let meta_len = header.meta_size as usize;
    let meta_buf = match arena.alloc::<u8>(meta_len) {
        Ok(b) => b,
        Err(_) => die!("image metadata ({} bytes) is too large", meta_len),
    };
    if let Err(e) = sys::pread_exact(fd, meta_buf.as_mut_ptr(), meta_len, header.meta_offset) {
        die!("cannot read the metadata: {}", ErrnoName(e));
    }
    let meta = match Meta::parse(&header, meta_buf) {
        Ok(m) => m,
        Err(e) => die!("{}", e.message()),
    };

    // Phase 2: check the regions against what this process has.
    let own_maps = match arena.read_file(b"/proc/self/maps") {
        Ok(t) => t,
        Err(e) => die!("cannot read /proc/self/maps: {}", ErrnoName(e)),
    };
    let mut specials = [Special::default(); 4];
    let mut nspecials = 0;
    let mut doomed = [(0usize, 0usize); 16];
    let mut ndoomed = 0;
    for entry in maps::entries(own_maps) {
        let e = match entry {
            Some(e) => e,
            None => die!("cannot parse this process's /proc/self/maps"),
        };
        let kind = match e.path(own_maps) {
            b"[vdso]" => KIND_VDSO,
            b"[vvar]" => KIND_VVAR,
            b"[vvar_vclock]" => KIND_VVAR_VCLOCK,
            b"[vsyscall]" => continue,
            _ if e.start >= arch::RESTART_BASE && e.end <= arch::RESTART_BASE + arch::RESTART_WINDOW => continue,
            _ => {
                // The kernel's stack and anything else outside the window goes.
                if ndoomed == doomed.len() {
                    die!("this process has unexpected mappings");
                }
                doomed[ndoomed] = (e.start, e.end);
                ndoomed += 1;
                continue;
            }
        };
        if nspecials < specials.len() {
            specials[nspecials] = Special {
                kind,
                start: e.start,
                end: e.end,
            };
            nspecials += 1;
        }
    }
    let specials = &specials[..nspecials];

    let window = (
        arch::RESTART_BASE as u64,
        (arch::RESTART_BASE + arch::RESTART_WINDOW) as u64,
    );
    let mut entry_ok = false;
    let mut image_specials = 0;
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if r.end > arch::USER_TOP {
            die!("region {:#x}-{:#x} lies outside the user address space", r.start, r.end);
        }
        if r.start < window.1 && r.end > window.0 {
            die!(
                "region {:#x}-{:#x} ({}) overlaps mtcp_restart's own window {:#x}-{:#x}; this image cannot be restarted by this build",
                r.start,
                r.end,
                Lossy(meta.string(r.path)),
                window.0,
                window.1
            );
        }
        if header.restore_entry >= r.start && header.restore_entry < r.end && r.prot & PROT_EXEC != 0 {
            entry_ok = true;
        }
        if matches!(r.kind, KIND_VDSO | KIND_VVAR | KIND_VVAR_VCLOCK) {
            image_specials += 1;
            match specials.iter().find(|s| s.kind == r.kind) {
                Some(s) if (s.end - s.start) as u64 == r.len() => {}
                Some(s) => die!(
                    "this kernel's {} is {} bytes, the image's is {}: the kernel differs from the one that took the checkpoint",
                    kind_name(r.kind),
                    s.end - s.start,
                    r.len()
                ),
                None => die!("this kernel has no {} mapping, the image's kernel had one", kind_name(r.kind)),
            }
        }
    }
    if image_specials != specials.len() {
        die!("this kernel's vdso/vvar mappings differ from the ones in the image");
    }
    if !entry_ok {
        die!(
            "the image's restore entry {:#x} is not in any executable region (corrupt image?)",
            header.restore_entry
        );
    }

    // Files for file-backed regions, opened now so that a missing one stops us early.
    let fds = match arena.alloc::<i32>(meta.region_count) {
        Ok(f) => f,
        Err(_) => die!("too many regions"),
    };
    for i in 0..meta.region_count {
        let r = meta.region(i);
        fds[i] = -1;
        if r.kind != KIND_FILE_SHARED && r.kind != KIND_FILE_PRIVATE {
            continue;
        }
        let file = meta.string(r.path);
        let writable = r.kind == KIND_FILE_SHARED && r.prot & PROT_WRITE != 0;
        let flags = if writable { sys::O_RDWR } else { sys::O_RDONLY };
        let opened = if r.flags & REGION_FILE_IDENTITY != 0 {
            sys::open(file, flags | sys::O_CLOEXEC, 0)
        } else {
            Err(Errno::ENOENT)
        };
        let same = match opened {
            Ok(ffd) => match sys::fstat(ffd) {
                // A shared mapping must be the same file (its contents may have moved on);
                // a private one is only mapped again if unchanged, else rebuilt from the image.
                Ok(st)
                    if st.ino == r.inode
                        && st.dev_major == r.dev_major
                        && st.dev_minor == r.dev_minor
                        && (r.kind == KIND_FILE_SHARED
                            || (st.size == r.file_size
                                && st.mtime.sec == r.mtime_sec
                                && st.mtime.nsec == r.mtime_nsec)) =>
                {
                    fds[i] = ffd;
                    if verbose && r.kind == KIND_FILE_SHARED && (st.size != r.file_size || st.mtime.sec != r.mtime_sec)
                    {
                        eprint_line!("mtcp_restart: note: {} was modified since the checkpoint", Lossy(file));
                    }
                    true
                }
                _ => {
                    sys::close(ffd);
                    false
                }
            },
            Err(_) => false,
        };
        if !same && r.kind == KIND_FILE_SHARED && r.run_count == 0 {
            die!(
                "{} (mapped shared and writable at {:#x}) is missing or is not the same file as at checkpoint time",
                Lossy(file),
                r.start
            );
        }
        if !same && verbose {
            eprint_line!(
                "mtcp_restart: note: {} changed or is gone; its mapping is restored from the image",
                Lossy(file)
            );
        }
    }

    let same_pid = same_pid && become_old_pid(&meta);

    // Phase 3: no way back from here on.
    for &(start, end) in &doomed[..ndoomed] {
        if let Err(e) = sys::munmap(start, end - start) {
            die!("cannot unmap {:#x}-{:#x}: {}", start, end, ErrnoName(e));
        }
    }
    // Park the kernel's vdso/vvar inside the window, keeping their relative layout.
    let park_base = arch::RESTART_SCRATCH + SCRATCH_SIZE;
    let low = specials.iter().map(|s| s.start).min().unwrap_or(0);
    let mut parked = [Special::default(); 4];
    for (i, s) in specials.iter().enumerate() {
        let to = park_base + (s.start - low);
        if let Err(e) = sys::mremap(
            s.start,
            s.end - s.start,
            s.end - s.start,
            sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED,
            to,
        ) {
            die!("cannot move the {}: {}", kind_name(s.kind), ErrnoName(e));
        }
        parked[i] = Special {
            kind: s.kind,
            start: to,
            end: to + (s.end - s.start),
        };
    }

    let mut total_pages = 0u64;
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if matches!(r.kind, KIND_VDSO | KIND_VVAR | KIND_VVAR_VCLOCK) {
            continue;
        }
        total_pages += restore_region(&meta, i, fd, fds[i]);
    }
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if let Some(p) = parked[..specials.len()].iter().find(|p| p.kind == r.kind) {
            if let Err(e) = sys::mremap(
                p.start,
                p.end - p.start,
                p.end - p.start,
                sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED,
                r.start as usize,
            ) {
                die!(
                    "cannot move the {} to {:#x}: {}",
                    kind_name(r.kind),
                    r.start,
                    ErrnoName(e)
                );
            }
        }
    }
    for &f in fds.iter() {
        if f >= 0 {
            sys::close(f);
        }
    }
    sys::close(fd);
    restore_fds(&meta, verbose);
    if verbose {
        let p = meta.process();
        eprint_line!(
            "mtcp_restart: {} regions, {} pages, {} thread(s) of pid {} ({}) restored from {}",
            meta.region_count,
            total_pages,
            meta.thread_count,
            p.pid,
            Lossy(&p.comm[..p.comm.iter().position(|&c| c == 0).unwrap_or(16)]),
            Lossy(path)
        );
    }

    // Phase 4: hand over to the runtime inside the image.
    let args = &mut *core::ptr::addr_of_mut!(ARGS);
    args.magic = RESTART_ARGS_MAGIC;
    args.window_start = arch::RESTART_BASE as u64;
    args.window_len = arch::RESTART_WINDOW as u64;
    args.flags = if verbose { RESTART_VERBOSE } else { 0 } | if same_pid { RESTART_SAME_PID } else { 0 };
    let abs = absolute_path(path);
    let n = abs.as_bytes().len().min(args.image_path.len());
    args.image_path[..n].copy_from_slice(&abs.as_bytes()[..n]);
    args.image_path_len = n as u64;
    let stack_top = core::ptr::addr_of!(RESTART_STACK) as usize + RESTART_STACK_SIZE;
    arch::jump_to_entry(
        header.restore_entry as usize,
        args as *mut RestartArgs as usize,
        stack_top,
    )
}

/// Opens the program's files again at their numbers and offsets. Standard input, output
/// and error stay those of whoever started the restart. What cannot come back (pipes,
/// sockets, deleted files) is reported and stays closed.
///
/// # Safety
/// Call after every descriptor of mtcp_restart's own is closed: it takes descriptor numbers over.
unsafe fn restore_fds(meta: &Meta, verbose: bool) {
    const KEEP: u32 = 0o3 | 0o2000 | 0o4000 | 0o200000 | 0o400000 | 0o2000000 | 0o100000; // access mode, APPEND, NONBLOCK, DIRECTORY, NOFOLLOW, CLOEXEC, LARGEFILE
    restore_pipes(meta, verbose);
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        if rec.fd <= 2 {
            continue;
        }
        let path = meta.string(rec.path);
        if rec.kind == FD_PIPE {
            if pipe_end(meta, &rec).is_none() {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}): the other end of the pipe was outside the process; it stays closed",
                    rec.fd,
                    Lossy(path)
                );
            }
            continue;
        }
        if rec.kind == FD_OTHER {
            eprint_line!(
                "mtcp_restart: warning: fd {} ({}) cannot be restored and stays closed",
                rec.fd,
                Lossy(path)
            );
            continue;
        }
        let opened = sys::open(path, (rec.flags & KEEP) as usize, 0);
        let newfd = match opened {
            Ok(f) => f,
            Err(e) => {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) cannot be reopened: {}; it stays closed",
                    rec.fd,
                    Lossy(path),
                    ErrnoName(e)
                );
                continue;
            }
        };
        if let Ok(st) = sys::fstat(newfd) {
            if rec.kind == FD_FILE
                && (st.ino != rec.inode || st.dev_major != rec.dev_major || st.dev_minor != rec.dev_minor)
            {
                eprint_line!(
                    "mtcp_restart: warning: fd {}: {} is not the file it was at checkpoint time; using it anyway",
                    rec.fd,
                    Lossy(path)
                );
            }
        }
        if rec.kind == FD_FILE {
            if let Err(e) = sys::seek_set(newfd, rec.pos) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}): cannot seek to {}: {}",
                    rec.fd,
                    Lossy(path),
                    rec.pos,
                    ErrnoName(e)
                );
            }
        }
        if newfd as u32 != rec.fd {
            let cloexec = if rec.flags & 0o2000000 != 0 { 0o2000000 } else { 0 };
            let moved = sys::dup3(newfd, rec.fd as i32, cloexec);
            sys::close(newfd);
            if let Err(e) = moved {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) cannot be restored: {}",
                    rec.fd,
                    Lossy(path),
                    ErrnoName(e)
                );
                continue;
            }
        }
        if verbose {
            eprint_line!(
                "mtcp_restart: fd {} reopened: {} at offset {}",
                rec.fd,
                Lossy(path),
                rec.pos
            );
        }
    }
}

/// The record of `rec`'s pipe's other end (a read end for a write end and the other
/// way round), if the process had it open.
fn pipe_end(meta: &Meta, rec: &FdRecord) -> Option<FdRecord> {
    let want = if rec.flags & 3 == sys::O_RDONLY as u32 {
        sys::O_WRONLY as u32
    } else {
        sys::O_RDONLY as u32
    };
    (0..meta.fd_count())
        .map(|j| meta.fd(j))
        .find(|o| o.kind == FD_PIPE && o.inode == rec.inode && o.flags & 3 == want)
}

/// Pipes whose both ends were in the process: a new pipe holding the bytes the old
/// one held, at every descriptor number that referred to either end.
///
/// # Safety
/// As `restore_fds`, which calls it first.
unsafe fn restore_pipes(meta: &Meta, verbose: bool) {
    let above = (0..meta.fd_count()).map(|i| meta.fd(i).fd).max().unwrap_or(0) as usize + 1;
    for i in 0..meta.fd_count() {
        let rec = meta.fd(i);
        if rec.kind != FD_PIPE || rec.flags & 3 != sys::O_RDONLY as u32 || pipe_end(meta, &rec).is_none() {
            continue;
        }
        // Both new ends start above every number the process uses, so moving one into
        // place can never close the other.
        let made = sys::pipe().and_then(|(r, w)| {
            let high = (
                sys::fcntl(r, sys::F_DUPFD_CLOEXEC, above),
                sys::fcntl(w, sys::F_DUPFD_CLOEXEC, above),
            );
            sys::close(r);
            sys::close(w);
            match high {
                (Ok(r), Ok(w)) => Ok((r as i32, w as i32)),
                (r, w) => {
                    if let Ok(r) = r {
                        sys::close(r as i32);
                    }
                    if let Ok(w) = w {
                        sys::close(w as i32);
                    }
                    Err(Errno::EMFILE)
                }
            }
        });
        let (r, w) = match made {
            Ok(p) => p,
            Err(e) => {
                eprint_line!(
                    "mtcp_restart: warning: cannot recreate the pipe of fd {}: {}",
                    rec.fd,
                    ErrnoName(e)
                );
                continue;
            }
        };
        let data = meta.string(rec.data);
        if data.len() > 65536 {
            let _ = sys::fcntl(w, 1031 /* F_SETPIPE_SZ */, data.len());
        }
        if let Err(e) = sys::write_all(w, data) {
            eprint_line!(
                "mtcp_restart: warning: the pipe of fd {} lost its contents: {}",
                rec.fd,
                ErrnoName(e)
            );
        }
        for j in 0..meta.fd_count() {
            let end = meta.fd(j);
            if end.kind != FD_PIPE || end.inode != rec.inode || end.fd <= 2 {
                continue;
            }
            let src = if end.flags & 3 == sys::O_RDONLY as u32 { r } else { w };
            let cloexec = if end.flags & 0o2000000 != 0 { sys::O_CLOEXEC } else { 0 };
            if let Err(e) = sys::dup3(src, end.fd as i32, cloexec) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} (pipe) cannot be restored: {}",
                    end.fd,
                    ErrnoName(e)
                );
                continue;
            }
            let _ = sys::fcntl(end.fd as i32, sys::F_SETFL, (end.flags & 0o4000) as usize);
            if verbose {
                eprint_line!(
                    "mtcp_restart: fd {} pipe recreated with {} byte(s) in it",
                    end.fd,
                    data.len()
                );
            }
        }
        sys::close(r);
        sys::close(w);
    }
}

/// Makes the rest of the restart run in a child that has the image's pid; this process
/// waits for it and ends the way it ends. Returns true in that child, or false (after
/// saying why) when the ids cannot be chosen here and the restart goes on with new ids.
///
/// # Safety
/// Call before phase 3, while single-threaded: it forks.
unsafe fn become_old_pid(meta: &Meta) -> bool {
    let old = meta.process().pid as u32;
    // A process killed just now can stay a zombie for a moment: wait for its ids to free.
    let deadline = arch::monotonic_ns() + 3_000_000_000;
    for i in 0..meta.thread_count {
        let tid = meta.thread(i).tid as u32;
        while id_in_use(tid) {
            if arch::monotonic_ns() > deadline {
                eprint_line!(
                    "mtcp_restart: --same-pid: id {} is in use by another process; restoring with new ids",
                    tid
                );
                return false;
            }
            let pause = core::sync::atomic::AtomicU32::new(0);
            arch::futex_wait_timeout(&pause, 0, 20_000_000);
        }
    }
    let child = match sys::fork_with_pid(old) {
        Ok(0) => return true,
        Ok(child) => child,
        Err(e) => {
            // The ids cannot be chosen here: fall back to new ids, and say so.
            let why = match e {
                Errno::EPERM => "choosing ids needs CAP_CHECKPOINT_RESTORE (root)",
                Errno::EEXIST => "the pid is in use",
                _ => "clone3 refused",
            };
            eprint_line!(
                "mtcp_restart: --same-pid: cannot create pid {} ({}: {}); restoring with new ids",
                old,
                why,
                ErrnoName(e)
            );
            return false;
        }
    };
    let status = match sys::wait_status(child) {
        Ok(s) => s,
        Err(e) => die!("cannot wait for the restored process: {}", ErrnoName(e)),
    };
    if status & 0x7f == 0 {
        sys::exit_group((status >> 8) & 0xff);
    }
    // Killed by a signal: die the same way, so whoever started us sees it.
    let sig = (status & 0x7f) as usize;
    let dfl = sys::KernelSigaction::default();
    let _ = sys::rt_sigaction(sig, Some(&dfl), None);
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(0));
    let _ = sys::tgkill(sys::getpid(), sys::gettid(), sig as u32);
    sys::exit_group(128 + sig as i32)
}

fn id_in_use(id: u32) -> bool {
    let mut p = FmtBuf::<32>::new();
    let _ = write!(p, "/proc/{}", id);
    match sys::CPath::new(p.as_bytes()) {
        Ok(c) => sys::statx(sys::AT_FDCWD, &c, 0).is_ok(),
        Err(_) => false,
    }
}

static mut ARGS: RestartArgs = RestartArgs::zeroed();

fn absolute_path(path: &[u8]) -> FmtBuf<4096> {
    let mut out = FmtBuf::<4096>::new();
    if !path.starts_with(b"/") {
        let mut cwd = [0u8; 4096];
        if let Ok(c) = sys::getcwd(&mut cwd) {
            out.push_bytes(c);
            out.push_bytes(b"/");
        }
    }
    out.push_bytes(path);
    out
}

/// Maps region `i` and fills it from the image; returns the pages read.
///
/// # Safety
/// Maps over the region's address range: nothing of mtcp_restart may live there (phase 2 checked that).
unsafe fn restore_region(meta: &Meta, i: usize, fd: i32, file_fd: i32) -> u64 {
    let r = meta.region(i);
    let (start, len) = (r.start as usize, r.len() as usize);
    let prot = r.prot as usize;
    let mut flags = sys::MAP_FIXED;
    if r.flags & REGION_NORESERVE != 0 {
        flags |= sys::MAP_NORESERVE;
    }
    if r.flags & REGION_GROWSDOWN != 0 {
        flags |= sys::MAP_GROWSDOWN;
    }
    let has_data = r.run_count > 0;
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    let mapped = match r.kind {
        KIND_FILE_SHARED if file_fd >= 0 => {
            // The file is the data; nothing of the image is read for it.
            let m = sys::mmap(start, len, prot, flags | sys::MAP_SHARED, file_fd, r.file_offset);
            check_mapped(&r, m);
            advise(&r);
            return 0;
        }
        KIND_FILE_PRIVATE if file_fd >= 0 => {
            // Map the same file (so /proc/PID/maps and debuggers see it), then lay the
            // saved bytes over it.
            sys::mmap(
                start,
                len,
                if has_data { rw } else { prot },
                flags | sys::MAP_PRIVATE,
                file_fd,
                r.file_offset,
            )
        }
        KIND_ANON_SHARED => sys::mmap(
            start,
            len,
            if has_data { rw } else { prot },
            flags | sys::MAP_SHARED | sys::MAP_ANONYMOUS,
            -1,
            0,
        ),
        _ => sys::mmap(
            start,
            len,
            if has_data { rw } else { prot },
            flags | sys::MAP_PRIVATE | sys::MAP_ANONYMOUS,
            -1,
            0,
        ),
    };
    check_mapped(&r, mapped);
    let mut hash = xxh64::Xxh64::new(0);
    let mut pages = 0;
    for j in 0..r.run_count as usize {
        let run = meta.run(r.run_first as usize + j);
        let addr = start + run.page_index as usize * arch::PAGE_SIZE;
        let bytes = run.pages as usize * arch::PAGE_SIZE;
        if let Err(e) = sys::pread_exact(fd, addr as *mut u8, bytes, run.file_offset) {
            die!("cannot read region data at {:#x}: {}", addr, ErrnoName(e));
        }
        hash.update(core::slice::from_raw_parts(addr as *const u8, bytes));
        pages += run.pages;
    }
    if has_data {
        if hash.digest() != r.data_checksum {
            die!(
                "memory data of region {:#x}-{:#x} ({}) is corrupt (checksum mismatch)",
                r.start,
                r.end,
                Lossy(meta.string(r.path))
            );
        }
        if let Err(e) = sys::mprotect(start, len, prot) {
            die!("cannot protect region {:#x}-{:#x}: {}", r.start, r.end, ErrnoName(e));
        }
    }
    advise(&r);
    pages
}

fn check_mapped(r: &RegionRecord, m: Result<usize, Errno>) {
    match m {
        Ok(a) if a == r.start as usize => {}
        Ok(a) => die!("region {:#x}-{:#x} was mapped at {:#x}", r.start, r.end, a),
        Err(e) => die!("cannot map region {:#x}-{:#x}: {}", r.start, r.end, ErrnoName(e)),
    }
}

/// Gives back the madvise hints the region had; failures only lose a hint.
fn advise(r: &RegionRecord) {
    for (flag, advice) in [
        (REGION_DONTFORK, sys::MADV_DONTFORK),
        (REGION_WIPEONFORK, sys::MADV_WIPEONFORK),
        (REGION_DONTDUMP, sys::MADV_DONTDUMP),
        (REGION_HUGEPAGE, sys::MADV_HUGEPAGE),
        (REGION_NOHUGEPAGE, sys::MADV_NOHUGEPAGE),
        (REGION_MERGEABLE, sys::MADV_MERGEABLE),
    ] {
        if r.flags & flag != 0 {
            let _ = sys::madvise(r.start as usize, r.len() as usize, advice);
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => eprint_line!("mtcp_restart: internal error at {}:{}", l.file(), l.line()),
        None => eprint_line!("mtcp_restart: internal error"),
    }
    sys::exit_group(70)
}

#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

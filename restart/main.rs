//! mtcp_restart: brings a process back from an image. Static, libc-free, linked at a
//! fixed address (linker/restart-<arch>.ld) and keeping all it owns inside that window.
//!
//! The steps, one module each: `check` the image, `survey` this process and the
//! image's needs (nothing is changed until both passed), `map` the image's memory in
//! place of ours, restore the program's `files` and its terminals and standard input
//! (`tty`), then `hand_over` to the runtime inside the restored image. Before `map`,
//! `ids` forks the process that goes on with the image's pid and tids (in namespaces
//! made for it where need be), and this one stays behind as its `supervise`or.
#![no_std]
// Errors carry their message in a fixed buffer (there is no allocator): large by design.
#![allow(clippy::result_large_err)]
#![no_main]

use mtcp_core::eprint_line;
use mtcp_core::fmt::{FmtBuf, Lossy};
use mtcp_core::image::{
    Meta, RestartArgs, KIND_FILE_PRIVATE, REGION_FILE_IDENTITY, RESTART_ARGS_MAGIC, RESTART_DROP_CAPS, RESTART_EXE_FD,
    RESTART_NAMESPACE, RESTART_NEW_IDS_ASKED, RESTART_SAME_PID, RESTART_VERBOSE, RESTART_WINCH,
};
use mtcp_core::progress::Style;
use mtcp_core::sys;

/// Prints `mtcp_restart: IMAGE: message` and exits 1.
macro_rules! die {
    ($($arg:tt)*) => {{
        let mut b = mtcp_core::fmt::FmtBuf::<1024>::new();
        let _ = core::fmt::Write::write_fmt(
            &mut b,
            format_args!("mtcp_restart: {}: ", mtcp_core::fmt::Lossy(crate::image_name())),
        );
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!($($arg)*));
        b.push_bytes(b"\n");
        mtcp_core::sys::write_stderr(b.as_bytes());
        mtcp_core::sys::exit_group(1)
    }};
}

mod check;
mod deleted_files;
mod event_fds;
mod files;
mod ids;
mod inotify;
mod map;
mod mqueue;
mod progress;
mod sockets;
mod supervise;
mod survey;
mod tty;
mod window;

use window::Window;

// memcpy & co. for code built without libc; see arch/*/mem.rs.
mtcp_core::arch::define_mem_functions!();
// The entry point, which moves to RESTART_STACK at once; see arch/*/start.rs.
mtcp_core::arch::define_restart_start!(restart_main, RESTART_STACK, RESTART_STACK_SIZE);

pub const RESTART_STACK_SIZE: usize = 256 << 10;

#[repr(C, align(16))]
pub struct Stack([u8; RESTART_STACK_SIZE]);

/// The stack `_start` switches to: inside the window, unlike the kernel's.
#[no_mangle]
pub static mut RESTART_STACK: Stack = Stack([0; RESTART_STACK_SIZE]);

/// The image path as given, for messages.
static mut IMAGE_NAME: FmtBuf<4096> = FmtBuf::new();

fn image_name() -> &'static [u8] {
    // SAFETY: written once at start, read-only afterwards; single-threaded program.
    unsafe { (*core::ptr::addr_of!(IMAGE_NAME)).as_bytes() }
}

const USAGE: &str = "usage: mtcp_restart [--verbose] [--new-ids] [--eager] [--progress=STYLE] IMAGE\n\
Restarts the process saved in IMAGE (written by the mtcp runtime), on this terminal and\n\
standard streams. The process and its threads get their ids from checkpoint time: chosen\n\
here where this user may (root), else in a new user and pid namespace made for it. This\n\
process then stays as the pid the shell knows: it passes signals on, stops when the\n\
program stops and exits as it does. Where neither is possible, it says why and goes on\n\
with new ids, in place of this process.\n\
  --verbose   report what was restored, and how the ids were given\n\
  --new-ids   new ids, in place of this process, without a namespace\n\
  --same-pid  the ids from checkpoint time (the default)\n\
  --eager     read all memory into place rather than map the image's large runs\n\
  --progress=STYLE  show on stderr how far the memory is read: terminal (one line\n\
              redrawn in place, for long work), lines (a line a second, for long work)\n\
              or json (JSON objects, and one that says the restore is done)\n";

/// Entered from `_start` on the static stack with the kernel's initial stack pointer.
///
/// # Safety
/// Called once, by `_start`, with the kernel's initial stack pointer.
#[no_mangle]
pub unsafe extern "C" fn restart_main(initial_sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack holds argc, then argc argument pointers, each a
    // NUL-terminated string; nothing unmaps it before `restart` copies what it needs.
    let args = unsafe {
        let argc = *initial_sp;
        let argv = initial_sp.add(1) as *const *const u8;
        (1..argc).map(move |i| cstr(*argv.add(i)))
    };
    let mut verbose = false;
    let mut new_ids = false;
    let mut path: Option<&[u8]> = None;
    for arg in args {
        match arg {
            b"--verbose" | b"-v" => verbose = true,
            b"--same-pid" => new_ids = false,
            b"--new-ids" => new_ids = true,
            b"--eager" => map::set_eager(),
            _ if arg.starts_with(b"--progress=") => match Style::from_name(&arg[b"--progress=".len()..]) {
                Some(style) => progress::choose(style),
                None => {
                    eprint_line!("mtcp_restart: unknown progress style in {}\n{}", Lossy(arg), USAGE);
                    sys::exit_group(2);
                }
            },
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
    // SAFETY: single-threaded, and nothing has read IMAGE_NAME yet.
    unsafe { (*core::ptr::addr_of_mut!(IMAGE_NAME)).push_bytes(path) };
    // Until the point of no return, Ctrl-C, `timeout` and a hang-up still stop the restart
    // (their default action ends it with nothing changed); nothing else may interrupt.
    let stoppable = [1u32, 2, 3, 15].iter().fold(0u64, |m, &s| m | 1 << (s - 1)); // HUP INT QUIT TERM
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!stoppable));
    // The kernel's stack, where argv lives, is unmapped later: use the copy from here on.
    // SAFETY: called once, single-threaded, on the static stack.
    unsafe { restart(image_name(), verbose, new_ids) }
}

/// # Safety
/// `p` must point to a NUL-terminated string that outlives the returned slice.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the caller's contract: every byte up to the NUL is readable.
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}

/// # Safety
/// Runs once, single-threaded, on the static stack. From the map step on it replaces the
/// whole address space outside mtcp_restart's window.
unsafe fn restart(path: &[u8], verbose: bool, new_ids: bool) -> ! {
    let window = Window::get();
    if !window.contains(_start as *const () as usize) {
        die!(
            "mtcp_restart is not linked inside its window {:#x}-{:#x}; rebuild it",
            window.start,
            window.end
        );
    }
    // The namespaces' cwd is the same tree, but looked up again: resolve the path now.
    let abs_path = absolute_path(path);
    let (image, mut arena) = check::open_image(path, &window);
    let survey = survey::survey(&image, &window, &mut arena, verbose);
    files::check_pipes(&image.meta);
    let ids = ids::restore_ids(&image.meta, new_ids, verbose);
    let stdin_pipe = tty::start_stdin_forwarder(&image.meta);
    // No way back from here on: nothing may interrupt what follows (each thread gets its
    // own mask back from its frame).
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
    progress::start(image.header.data_size);
    // SAFETY: this code, its stack and its data live inside the window.
    let pages = unsafe { map::replace_address_space(&image, &survey, &window) };
    progress::finish();
    // mtcp_restart's own descriptors go before the program's take their numbers.
    drop(survey);
    let meta = image.meta;
    drop(image.fd);
    files::restore_fds(&meta, verbose);
    tty::restore_stdin(&meta, stdin_pipe, verbose);
    let winch = tty::restore_terminals(&meta, verbose);
    // Opened last, so that it takes a number the program does not use.
    let exe = program_exe(&meta);
    if verbose {
        let p = meta.process();
        eprint_line!(
            "mtcp_restart: {} regions, {} pages, {} thread(s) of pid {} ({}) restored from {}",
            meta.region_count,
            pages,
            meta.thread_count,
            p.pid,
            Lossy(&p.comm[..p.comm.iter().position(|&c| c == 0).unwrap_or(16)]),
            Lossy(path)
        );
    }
    progress::restored(absolute_path(path).as_bytes());
    // SAFETY: every region of the image is in place.
    unsafe {
        hand_over(
            image.header.restore_entry as usize,
            &abs_path,
            &window,
            restart_flags(verbose, ids, winch, new_ids),
            exe,
        )
    }
}

/// Step 5, hand over: jump to the runtime's restore entry inside the restored image,
/// which unmaps this program and restores the rest.
///
/// # Safety
/// `entry` must be the runtime's restore entry in fully restored memory.
unsafe fn hand_over(entry: usize, abs_path: &FmtBuf<4096>, window: &Window, flags: u64, exe: Option<sys::Fd>) -> ! {
    // SAFETY: single-threaded; ARGS is only written here, and read by the runtime after the jump.
    let args = unsafe { &mut *core::ptr::addr_of_mut!(ARGS) };
    args.magic = RESTART_ARGS_MAGIC;
    args.window_start = window.start as u64;
    args.window_len = (window.end - window.start) as u64;
    args.flags = flags;
    if let Some(fd) = exe {
        args.flags |= RESTART_EXE_FD;
        args.exe_fd = fd.into_raw() as u64;
    }
    let n = abs_path.as_bytes().len().min(args.image_path.len());
    args.image_path[..n].copy_from_slice(&abs_path.as_bytes()[..n]);
    args.image_path_len = n as u64;
    let stack_top = core::ptr::addr_of!(RESTART_STACK) as usize + RESTART_STACK_SIZE;
    // SAFETY: the caller's contract; the entry takes one argument and never returns.
    unsafe {
        let entry: unsafe extern "C" fn(usize) -> ! = core::mem::transmute(entry);
        mtcp_core::arch::switch_stack(stack_top, entry, args as *mut RestartArgs as usize)
    }
}

static mut ARGS: RestartArgs = RestartArgs::zeroed();

/// What the runtime is told of this restart (RestartArgs.flags).
fn restart_flags(verbose: bool, ids: ids::Ids, winch: bool, new_ids_asked: bool) -> u64 {
    let mut flags = if verbose { RESTART_VERBOSE } else { 0 }
        | if winch { RESTART_WINCH } else { 0 }
        | if new_ids_asked { RESTART_NEW_IDS_ASKED } else { 0 };
    if let ids::Ids::Same {
        namespace,
        drop_capabilities,
    } = ids
    {
        flags |= RESTART_SAME_PID
            | if namespace { RESTART_NAMESPACE } else { 0 }
            | if drop_capabilities { RESTART_DROP_CAPS } else { 0 };
    }
    flags
}

/// The program's executable, if it is the very file it was at checkpoint time (the
/// identity its mapping recorded), for the runtime to make /proc/PID/exe again.
fn program_exe(meta: &Meta) -> Option<sys::Fd> {
    let exe = meta.string(meta.process().exe);
    let r = (0..meta.region_count)
        .map(|i| meta.region(i))
        .find(|r| r.kind == KIND_FILE_PRIVATE && r.flags & REGION_FILE_IDENTITY != 0 && meta.string(r.path) == exe)?;
    let fd = sys::open(exe, sys::O_RDONLY | sys::O_CLOEXEC, 0).ok()?;
    let st = sys::fstat(fd.raw()).ok()?;
    let same = st.ino == r.inode
        && st.dev_major == r.dev_major
        && st.dev_minor == r.dev_minor
        && st.size == r.file_size
        && st.mtime.sec == r.mtime_sec
        && st.mtime.nsec == r.mtime_nsec;
    same.then_some(fd)
}

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

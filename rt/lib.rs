//! libmtcp: the checkpoint runtime that lives inside the program (libmtcp.so when
//! preloaded, libmtcp.a when linked in). Starts from .init_array, installs the
//! checkpoint signal handler, and exports the C API of include/mtcp.h.
#![no_std]
// Errors carry their message in a fixed buffer (there is no allocator): large by design.
#![allow(clippy::result_large_err)]

mod capture;
mod checkpoint;
mod config;
mod deleted_files;
mod event_fds;
mod fds;
mod force;
mod inotify;
mod interpose;
mod mqueue;
mod progress;
mod restore;
mod snapshot;
mod sockets;
mod state;
mod status;
mod tasks;
mod tid_repair;
mod timers;
mod triggers;
mod tty;
mod writer;

use core::sync::atomic::{AtomicU32, Ordering};

use mtcp_core::arena::Arena;
use mtcp_core::eprint_line;
use mtcp_core::fmt::Lossy;
use mtcp_core::protocol::RUNTIME_NOTE;
use mtcp_core::sys;

use config::CONFIG;
use state::{API_REQUEST, LAST_RESULT, RT};

// memcpy & co. for code built without libc; see arch/*/mem.rs.
mtcp_core::arch::define_mem_functions!();

const UNINIT: u32 = 0;
const READY: u32 = 1;
const FAILED: u32 = 2;
static STATE: AtomicU32 = AtomicU32::new(UNINIT);

/// Runs before main in libc.so, libc.a and static-pie programs (and in libc-free ones
/// whose _start runs .init_array).
#[used]
#[link_section = ".init_array"]
static INIT_ARRAY_ENTRY: extern "C" fn() = constructor;

/// The ELF note that marks a program carrying the runtime; `mtcp launch` and `mtcp
/// checkpoint` look for it, and it survives `strip`.
#[used]
#[link_section = ".note.mtcp"]
static NOTE: [u32; 6] = RUNTIME_NOTE;

extern "C" fn constructor() {
    let _ = mtcp_init();
}

/// Starts the runtime once; see include/mtcp.h.
#[no_mangle]
pub extern "C" fn mtcp_init() -> i32 {
    match STATE.load(Ordering::Acquire) {
        READY => return 0,
        FAILED => return -22,
        _ => {}
    }
    match init() {
        Ok(()) => {
            STATE.store(READY, Ordering::Release);
            0
        }
        Err(e) => {
            STATE.store(FAILED, Ordering::Release);
            e
        }
    }
}

fn init() -> Result<(), i32> {
    let mut arena = Arena::map(4 << 20).map_err(|e| -e.into_raw())?;
    let environ = arena.read_file(b"/proc/self/environ");
    let loaded = match environ {
        Ok(env) => config::load(env),
        Err(_) => config::load(b""),
    };
    arena.unmap();
    if let Err(msg) = loaded {
        // A program that asked for checkpoints but would silently get none could lose
        // a week of work: stop it now, loudly.
        eprint_line!("mtcp: {}", Lossy(msg.as_bytes()));
        sys::exit_group(2);
    }
    // SAFETY: the constructor runs before any checkpoint can start.
    let rt = unsafe { &mut *RT.get() };
    let pid = sys::getpid();
    rt.vpid = pid;
    rt.real_pid = pid;
    // SAFETY: written above, before the handler is installed.
    let cfg = unsafe { &*CONFIG.get() };
    triggers::install_handler(cfg.signal).map_err(|e| -e.into_raw())?;
    if cfg.interval_sec > 0 {
        triggers::start_interval_thread();
    }
    status::publish_ready(rt.status_seq);
    Ok(())
}

/// Checkpoints now; see include/mtcp.h.
#[no_mangle]
pub extern "C" fn mtcp_checkpoint() -> i32 {
    let r = mtcp_init();
    if r != 0 {
        return r;
    }
    // SAFETY: the configuration is fixed after init.
    let sig = unsafe { (*CONFIG.get()).signal };
    let tid = sys::gettid();
    let bit = 1u64 << (sig - 1);
    // The checkpoint runs in the signal handler, so the signal must get through even if
    // this thread blocks it.
    let old_mask = sys::rt_sigprocmask(sys::SIG_UNBLOCK, Some(bit)).unwrap_or(0);
    LAST_RESULT.store(0, Ordering::Release);
    API_REQUEST.store(tid, Ordering::Release);
    // Delivered before tgkill returns: the handler has run when we get here.
    let sent = sys::tgkill(sys::getpid(), tid, sig);
    API_REQUEST.store(0, Ordering::Release);
    if old_mask & bit != 0 {
        let _ = sys::rt_sigprocmask(sys::SIG_BLOCK, Some(bit));
    }
    if let Err(e) = sent {
        return -e.into_raw();
    }
    match LAST_RESULT.load(Ordering::Acquire) {
        0 => -16, // EBUSY: another checkpoint was running; this thread took part in it
        r => r,
    }
}

/// How many times this computation was restarted; see include/mtcp.h.
#[no_mangle]
pub extern "C" fn mtcp_restarts() -> i32 {
    interpose::RESTARTS.load(Ordering::Acquire).min(i32::MAX as u32) as i32
}

/// The last image written or restarted from; see include/mtcp.h.
#[no_mangle]
pub extern "C" fn mtcp_image_path() -> *const u8 {
    // SAFETY: the buffer is only written while checkpointing or restoring, never while
    // user code runs, and always keeps a NUL after the path.
    unsafe {
        let rt = &mut *RT.get();
        let n = rt.image_path_len.min(rt.image_path.len() - 1);
        rt.image_path[n] = 0;
        rt.image_path.as_ptr()
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => eprint_line!("mtcp: internal error at {}:{}", l.file(), l.line()),
        None => eprint_line!("mtcp: internal error"),
    }
    sys::exit_group(70)
}

// The prebuilt libcore refers to this even with panic=abort; hidden so it never
// interposes on a Rust program's own.
core::arch::global_asm!(
    ".pushsection .text.mtcp_eh,\"ax\",@progbits",
    ".weak rust_eh_personality",
    ".hidden rust_eh_personality",
    "rust_eh_personality:",
    "    ud2",
    ".popsection",
);

//! libmtcp: the checkpoint runtime that lives inside the program (libmtcp.so when
//! preloaded, libmtcp.a when linked in). Starts from .init_array, installs the
//! checkpoint signal handler, and exports the C API of include/mtcp.h.
#![no_std]
// Errors carry their message in a fixed buffer (there is no allocator): large by design.
#![allow(clippy::result_large_err)]

#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/mod.rs"]
#[allow(dead_code)] // shared with mtcp_restart, which uses other parts
mod arch;
#[cfg(target_arch = "x86")]
#[path = "../arch/x86/mod.rs"]
#[allow(dead_code)] // shared with mtcp_restart, which uses other parts
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/mem.rs"]
mod mem;
#[cfg(target_arch = "x86")]
#[path = "../arch/x86/mem.rs"]
mod mem;

#[allow(dead_code)]
mod arena;
mod capture;
mod checkpoint;
mod config;
#[macro_use]
#[allow(dead_code)]
mod fmt;
mod global;
#[allow(dead_code)]
mod image;
mod interpose;
#[allow(dead_code)]
mod maps;
mod restore;
mod status;
#[allow(dead_code)]
mod sys;
mod tasks;
mod writer;
mod xxh64;

use core::sync::atomic::{AtomicU32, Ordering};

use checkpoint::{API_REQUEST, LAST_RESULT, RT};
use config::CONFIG;

const UNINIT: u32 = 0;
const READY: u32 = 1;
const FAILED: u32 = 2;
static STATE: AtomicU32 = AtomicU32::new(UNINIT);

/// Runs before main in libc.so, libc.a and static-pie programs (and in libc-free ones
/// whose _start runs .init_array).
#[used]
#[link_section = ".init_array"]
static INIT_ARRAY_ENTRY: extern "C" fn() = constructor;

/// An ELF note (name "mtcp", type 1, version 1) that marks a program carrying the
/// runtime; `mtcp launch` and `mtcp checkpoint` look for it, and it survives `strip`.
#[used]
#[link_section = ".note.mtcp"]
static RUNTIME_NOTE: [u32; 6] = [5, 4, 1, u32::from_le_bytes(*b"mtcp"), 0, 1];

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
    let mut arena = arena::Arena::map(4 << 20).map_err(|e| -e.into_raw())?;
    let environ = arena.read_file(b"/proc/self/environ");
    let loaded = match environ {
        Ok(env) => config::load(env),
        Err(_) => config::load(b""),
    };
    arena.unmap();
    if let Err(msg) = loaded {
        // A program that asked for checkpoints but would silently get none could lose
        // a week of work: stop it now, loudly.
        eprint_line!("mtcp: {}", fmt::Lossy(msg.as_bytes()));
        sys::exit_group(2);
    }
    // SAFETY: the constructor runs before any checkpoint can start.
    let rt = unsafe { &mut *RT.get() };
    let pid = sys::getpid();
    rt.vpid = pid;
    rt.real_pid = pid;
    // SAFETY: written above, before the handler is installed.
    let cfg = unsafe { &*CONFIG.get() };
    install_handler(cfg.signal).map_err(|e| -e.into_raw())?;
    if cfg.interval_sec > 0 {
        start_interval_timer(cfg.signal, cfg.interval_sec);
    }
    status::publish_ready(rt.status_seq);
    Ok(())
}

fn install_handler(sig: u32) -> Result<(), syscalls::Errno> {
    let act = sys::KernelSigaction {
        handler: checkpoint::on_signal as *const () as usize,
        flags: sys::SA_SIGINFO | sys::SA_RESTART | arch::SA_RESTORER,
        restorer: arch::sigreturn_trampoline as *const () as usize,
        // No handler of the program may run inside ours: it would change memory while
        // the image is being written, or wait on a lock a parked thread holds. Signals
        // that arrive meanwhile stay pending (and are saved as such).
        mask: !0,
    };
    sys::rt_sigaction(sig as usize, Some(&act), None)
}

/// Periodic checkpoints; a failure is reported, not fatal (explicit checkpoints still work).
pub(crate) fn start_interval_timer(sig: u32, secs: u32) {
    if let Err(e) = arch::periodic_signal_timer(sig, checkpoint::TIMER_VALUE, secs) {
        eprint_line!("mtcp: cannot start the checkpoint timer: {}", fmt::ErrnoName(e));
    }
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

//! The mtcp runtime of this process, called through its C API (`include/mtcp.h`), which
//! is found with `dlsym` when first needed: a program runs the same with or without it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::Error;

#[link(name = "dl")]
extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// dlsym's RTLD_DEFAULT: the global scope, where a preloaded libmtcp.so is.
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();

/// `mtcp_checkpoint()`'s results (include/mtcp.h).
const MTCP_CHECKPOINTED: c_int = 1;
const MTCP_RESTARTED: c_int = 2;

struct Runtime {
    checkpoint: unsafe extern "C" fn() -> c_int,
    image_path: unsafe extern "C" fn() -> *const c_char,
    /// Older runtimes lack it.
    restarts: Option<unsafe extern "C" fn() -> c_int>,
}

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let find = |name: &CStr| {
                // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a
                // symbol up.
                let p = unsafe { dlsym(RTLD_DEFAULT, name.as_ptr()) };
                (!p.is_null()).then_some(p)
            };
            let checkpoint = find(c"mtcp_checkpoint")?;
            let image_path = find(c"mtcp_image_path")?;
            let restarts = find(c"mtcp_restarts");
            // SAFETY: the runtime defines these symbols as the functions include/mtcp.h
            // declares, with these signatures.
            unsafe {
                Some(Runtime {
                    checkpoint: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(checkpoint),
                    image_path: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *const c_char>(image_path),
                    restarts: restarts.map(|p| std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(p)),
                })
            }
        })
        .as_ref()
}

/// How a [`checkpoint`] call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// The image at this path is complete, and this process goes on.
    Written(PathBuf),
    /// This process has just been restarted from the image at this path: the call
    /// returns a second time, in the restored process.
    Restarted(PathBuf),
}

/// Whether the mtcp runtime runs in this process.
///
/// ```
/// // A test binary is not started by mtcp:
/// assert!(!mtcp_api::runtime_present());
/// ```
pub fn runtime_present() -> bool {
    runtime().is_some()
}

/// Checkpoints the whole process now, every thread, and returns once the image is
/// complete: [`Checkpoint::Written`] here, and [`Checkpoint::Restarted`] when the
/// process is brought back from that image later. Other threads stop for the time of the
/// checkpoint wherever they are; their system calls go on afterwards.
///
/// ```
/// use mtcp_api::{checkpoint, Checkpoint, Error};
///
/// fn save_point() -> Result<(), Error> {
///     match checkpoint() {
///         Ok(Checkpoint::Written(_)) | Ok(Checkpoint::Restarted(_)) => Ok(()),
///         // Without mtcp the program still works, only without checkpoints.
///         Err(Error::NoRuntime) => Ok(()),
///         Err(e) => Err(e),
///     }
/// }
/// save_point().unwrap();
/// ```
pub fn checkpoint() -> Result<Checkpoint, Error> {
    let rt = runtime().ok_or(Error::NoRuntime)?;
    // SAFETY: the runtime's own entry point, which may be called from any thread.
    let r = unsafe { (rt.checkpoint)() };
    let path = || image_path().unwrap_or_default();
    match r {
        MTCP_CHECKPOINTED => Ok(Checkpoint::Written(path())),
        MTCP_RESTARTED => Ok(Checkpoint::Restarted(path())),
        r if r < 0 => Err(Error::Checkpoint(std::io::Error::from_raw_os_error(-r))),
        r => Err(Error::Checkpoint(std::io::Error::other(format!(
            "unknown result {r} from mtcp_checkpoint"
        )))),
    }
}

/// The path of the last image this process wrote, or that it was restarted from; None
/// before its first checkpoint, or without the runtime.
pub fn image_path() -> Option<PathBuf> {
    let rt = runtime()?;
    // SAFETY: the runtime returns a NUL-terminated string that stays valid until the
    // next checkpoint or restart, and it is copied at once.
    let p = unsafe { CStr::from_ptr((rt.image_path)()) };
    let bytes = p.to_bytes();
    (!bytes.is_empty()).then(|| Path::new(std::ffi::OsStr::from_bytes(bytes)).to_path_buf())
}

/// How many times this computation has been restarted from an image: 0 in its first
/// run (and without the runtime), 1 after its first restart, and so on; a process
/// restarted from an image taken after its second restart says 3.
pub fn restarts() -> u32 {
    match runtime().and_then(|rt| rt.restarts) {
        // SAFETY: the runtime's own entry point, which only reads a counter.
        Some(f) => unsafe { f() }.max(0) as u32,
        None => 0,
    }
}

/// Whether this process was brought back from an image (at least once).
pub fn was_restarted() -> bool {
    restarts() > 0
}

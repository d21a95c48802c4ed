//! The runtime's configuration: MTCP_DIR, MTCP_INTERVAL, MTCP_SIGNAL, MTCP_PTRACE, MTCP_DELETED_LIMIT and MTCP_BLOCKING, read once at
//! start (the parsing itself is `mtcp_core::config`).

use core::fmt::Write;

use mtcp_core::config::{
    absolute_dir, env_lookup, parse_deleted_limit, parse_interval, parse_signal, parse_switch, DEFAULT_DELETED_LIMIT,
    DEFAULT_SIGNAL,
};
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::global::Global;
use mtcp_core::sys::{self, Fd};

pub struct Config {
    /// Absolute directory for images.
    pub dir: [u8; 4096],
    pub dir_len: usize,
    pub interval_sec: u32,
    pub signal: u32,
    /// Whether threads asleep in system calls, or blocking the signal, are reached by a
    /// ptrace helper (force.rs) rather than signalled.
    pub quiet_delivery: bool,
    /// The most bytes of one deleted, still open file a checkpoint saves.
    pub deleted_limit: u64,
    /// MTCP_BLOCKING: write every image in place, the program stopped meanwhile, rather
    /// than from a forked writer.
    pub blocking: bool,
    /// XDG_RUNTIME_DIR, where the status directory may go (see protocol::StatusDir).
    runtime_dir: [u8; 256],
    runtime_dir_len: usize,
}

pub static CONFIG: Global<Config> = Global::new(Config {
    dir: [0; 4096],
    dir_len: 0,
    interval_sec: 0,
    signal: DEFAULT_SIGNAL,
    quiet_delivery: true,
    deleted_limit: DEFAULT_DELETED_LIMIT,
    blocking: false,
    runtime_dir: [0; 256],
    runtime_dir_len: 0,
});

impl Config {
    pub fn dir(&self) -> &[u8] {
        &self.dir[..self.dir_len]
    }

    pub fn runtime_dir(&self) -> Option<&[u8]> {
        (self.runtime_dir_len > 0).then(|| &self.runtime_dir[..self.runtime_dir_len])
    }
}

/// A configuration problem, as one line for stderr.
pub type ConfigError = FmtBuf<512>;

/// Reads the configuration from the process's initial environment.
pub fn load(environ: &[u8]) -> Result<(), ConfigError> {
    // SAFETY: load runs once, from the constructor, before any checkpoint can start.
    let cfg = unsafe { &mut *CONFIG.get() };
    let mut err = ConfigError::new();

    cfg.signal = DEFAULT_SIGNAL;
    if let Some(v) = env_lookup(environ, b"MTCP_SIGNAL") {
        match parse_signal(v) {
            Some(sig) => cfg.signal = sig,
            None => {
                let _ = write!(
                    err,
                    "MTCP_SIGNAL={} is not a signal the runtime can use (try USR2 or RTMIN+n)",
                    Lossy(v)
                );
                return Err(err);
            }
        }
    }

    cfg.quiet_delivery = true;
    if let Some(v) = env_lookup(environ, b"MTCP_PTRACE") {
        match parse_switch(v) {
            Some(on) => cfg.quiet_delivery = on,
            None => {
                let _ = write!(err, "MTCP_PTRACE={} is not 0 or 1", Lossy(v));
                return Err(err);
            }
        }
    }

    cfg.blocking = false;
    if let Some(v) = env_lookup(environ, b"MTCP_BLOCKING") {
        match parse_switch(v) {
            Some(on) => cfg.blocking = on,
            None => {
                let _ = write!(err, "MTCP_BLOCKING={} is not 0 or 1", Lossy(v));
                return Err(err);
            }
        }
    }

    cfg.runtime_dir_len = 0;
    if let Some(d) = env_lookup(environ, b"XDG_RUNTIME_DIR").filter(|d| d.len() < cfg.runtime_dir.len()) {
        cfg.runtime_dir[..d.len()].copy_from_slice(d);
        cfg.runtime_dir_len = d.len();
    }

    cfg.interval_sec = 0;
    if let Some(v) = env_lookup(environ, b"MTCP_INTERVAL") {
        match parse_interval(v) {
            Some(n) => cfg.interval_sec = n,
            None => {
                let _ = write!(err, "MTCP_INTERVAL={} is not a whole number of seconds", Lossy(v));
                return Err(err);
            }
        }
    }

    cfg.deleted_limit = DEFAULT_DELETED_LIMIT;
    if let Some(v) = env_lookup(environ, b"MTCP_DELETED_LIMIT") {
        match parse_deleted_limit(v) {
            Some(n) => cfg.deleted_limit = n,
            None => {
                let _ = write!(
                    err,
                    "MTCP_DELETED_LIMIT={} is not a number of bytes (such as 1048576 or 64M)",
                    Lossy(v)
                );
                return Err(err);
            }
        }
    }

    let mut cwd_buf = [0u8; 4096];
    let cwd = match sys::getcwd(&mut cwd_buf) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "cannot read the current directory: {}", ErrnoName(e));
            return Err(err);
        }
    };
    // Room is left for the image's name after the directory.
    let room = cfg.dir.len() - 256;
    let mut full_buf = [0u8; 4096];
    let full = match absolute_dir(env_lookup(environ, b"MTCP_DIR"), cwd, &mut full_buf[..room - 1]) {
        Some(f) => f,
        None => {
            let _ = write!(err, "MTCP_DIR is too long");
            return Err(err);
        }
    };
    open_image_dir(full)?;
    cfg.dir[..full.len()].copy_from_slice(full);
    cfg.dir_len = full.len();
    Ok(())
}

/// Opens the image directory, refusing one where any user may replace files: writable
/// by everyone and not sticky (another user could swap the image we restart from).
pub fn open_image_dir(path: &[u8]) -> Result<Fd, ConfigError> {
    let mut err = ConfigError::new();
    let opened = sys::open(path, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0);
    let dir = match opened {
        Ok(d) => d,
        Err(e) => {
            let _ = write!(err, "image directory {}: {}", Lossy(path), ErrnoName(e));
            return Err(err);
        }
    };
    let mode = sys::fstat(dir.raw()).map(|st| st.mode as u32).unwrap_or(0);
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        let _ = write!(
            err,
            "image directory {} is writable by every user and not sticky (mode {:o}): another user could replace its images; use a private directory, or chmod +t it",
            Lossy(path),
            mode & 0o7777
        );
        return Err(err);
    }
    Ok(dir)
}

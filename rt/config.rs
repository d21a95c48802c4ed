//! The runtime's configuration: MTCP_DIR, MTCP_INTERVAL and MTCP_SIGNAL, read once at start.

use core::fmt::Write;
use syscalls::Errno;

use crate::fmt::{FmtBuf, Lossy};
use crate::global::Global;
use crate::sys;

pub const DEFAULT_SIGNAL: u32 = 12; // SIGUSR2

pub struct Config {
    /// Absolute directory for images.
    pub dir: [u8; 4096],
    pub dir_len: usize,
    pub interval_sec: u32,
    pub signal: u32,
}

pub static CONFIG: Global<Config> = Global::new(Config {
    dir: [0; 4096],
    dir_len: 0,
    interval_sec: 0,
    signal: DEFAULT_SIGNAL,
});

impl Config {
    pub fn dir(&self) -> &[u8] {
        &self.dir[..self.dir_len]
    }
}

/// Signal numbers by name, without the SIG prefix.
const SIGNAL_NAMES: &[(&[u8], u32)] = &[
    (b"HUP", 1),
    (b"INT", 2),
    (b"QUIT", 3),
    (b"USR1", 10),
    (b"USR2", 12),
    (b"PIPE", 13),
    (b"ALRM", 14),
    (b"TERM", 15),
    (b"CHLD", 17),
    (b"CONT", 18),
    (b"TSTP", 20),
    (b"TTIN", 21),
    (b"TTOU", 22),
    (b"URG", 23),
    (b"XCPU", 24),
    (b"XFSZ", 25),
    (b"VTALRM", 26),
    (b"PROF", 27),
    (b"WINCH", 28),
    (b"IO", 29),
    (b"PWR", 30),
    (b"SYS", 31),
];

/// Parses "12", "USR2", "SIGUSR2", "RTMIN+3". Refuses signals that cannot be caught
/// (KILL, STOP) and the two glibc keeps for itself (32, 33).
pub fn parse_signal(s: &[u8]) -> Option<u32> {
    let name = s.strip_prefix(b"SIG").unwrap_or(s);
    let sig: u64 = if let Some(n) = crate::maps::dec(name) {
        n
    } else if let Some(off) = name.strip_prefix(b"RTMIN+") {
        34u64.checked_add(crate::maps::dec(off)?)?
    } else if name == b"RTMIN" {
        34
    } else {
        SIGNAL_NAMES.iter().find(|(n, _)| *n == name)?.1 as u64
    };
    match sig {
        1..=64 if sig != 9 && sig != 19 && sig != 32 && sig != 33 => Some(sig as u32),
        _ => None,
    }
}

/// Looks `key` up in a NUL-separated environment block.
fn env_lookup<'a>(environ: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    environ.split(|&c| c == 0).find_map(|entry| {
        let rest = entry.strip_prefix(key)?;
        rest.strip_prefix(b"=")
    })
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

    cfg.interval_sec = 0;
    if let Some(v) = env_lookup(environ, b"MTCP_INTERVAL") {
        match crate::maps::dec(v) {
            Some(n) if n <= u32::MAX as u64 => cfg.interval_sec = n as u32,
            _ => {
                let _ = write!(err, "MTCP_INTERVAL={} is not a whole number of seconds", Lossy(v));
                return Err(err);
            }
        }
    }

    let mut cwd_buf = [0u8; 4096];
    let cwd = match sys::getcwd(&mut cwd_buf) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "cannot read the current directory: {}", crate::fmt::ErrnoName(e));
            return Err(err);
        }
    };
    let dir: &[u8] = match env_lookup(environ, b"MTCP_DIR") {
        Some(d) if !d.is_empty() => d,
        _ => cwd,
    };
    let mut full = FmtBuf::<4096>::new();
    if dir[0] != b'/' {
        full.push_bytes(cwd);
        full.push_bytes(b"/");
    }
    full.push_bytes(dir);
    let full = full.as_bytes();
    if full.len() >= cfg.dir.len() - 256 {
        let _ = write!(err, "MTCP_DIR is too long");
        return Err(err);
    }
    if let Err(e) = check_dir(full) {
        let _ = write!(err, "MTCP_DIR={}: {}", Lossy(full), crate::fmt::ErrnoName(e));
        return Err(err);
    }
    cfg.dir[..full.len()].copy_from_slice(full);
    cfg.dir_len = full.len();
    Ok(())
}

fn check_dir(path: &[u8]) -> Result<(), Errno> {
    let fd = sys::open(path, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0)?;
    sys::close(fd);
    Ok(())
}

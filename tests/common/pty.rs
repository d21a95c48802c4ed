//! A pseudo-terminal (`Pty`) that a test types on and reads from, for programs that must see a terminal.

use super::proc::Proc;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

extern "C" {
    fn posix_openpt(flags: i32) -> i32;
    fn grantpt(fd: i32) -> i32;
    fn unlockpt(fd: i32) -> i32;
    fn ptsname_r(fd: i32, buf: *mut u8, len: usize) -> i32;
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn setsid() -> i32;
}

const O_RDWR: i32 = 2;
const O_NOCTTY: i32 = 0o400;
const TIOCSCTTY: u64 = 0x540e;
const TIOCSWINSZ: u64 = 0x5414;

/// A pseudo-terminal the test drives: it types on the master side and reads what the
/// program writes to the slave side, which becomes the program's controlling terminal.
pub struct Pty {
    pub master: File,
    pub slave: File,
}

impl Pty {
    pub fn open(rows: u16, cols: u16) -> Pty {
        // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes at
        // most `len` bytes into `name`.
        let (master, name) = unsafe {
            let fd = posix_openpt(O_RDWR | O_NOCTTY);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            let master = <File as std::os::fd::FromRawFd>::from_raw_fd(fd);
            assert!(grantpt(fd) == 0 && unlockpt(fd) == 0, "grantpt/unlockpt failed");
            let mut name = [0u8; 64];
            assert_eq!(ptsname_r(fd, name.as_mut_ptr(), name.len()), 0, "ptsname_r failed");
            let len = name.iter().position(|&c| c == 0).unwrap();
            (master, String::from_utf8_lossy(&name[..len]).into_owned())
        };
        let size = [rows, cols, 0, 0];
        // SAFETY: TIOCSWINSZ reads one struct winsize (four u16).
        assert_eq!(unsafe { ioctl(master.as_raw_fd(), TIOCSWINSZ, size.as_ptr()) }, 0);
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open(&name)
            .unwrap_or_else(|e| panic!("open {name}: {e}"));
        Pty { master, slave }
    }

    /// Starts `cmd` in a session of its own on this terminal (stdin and stdout; stderr
    /// stays a pipe, where mtcp_restart's messages go).
    pub fn spawn(&self, mut cmd: Command, label: &str) -> Proc {
        cmd.stdout(OwnedFd::from(self.slave.try_clone().unwrap()));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let stdin = Stdio::from(OwnedFd::from(self.slave.try_clone().unwrap()));
        let output = Box::new(self.master.try_clone().unwrap());
        Proc::spawn_io(cmd, label, stdin, Some(output)).0
    }

    /// `spawn` with stderr on the terminal too (through `sh -c 'exec "$@" 2>&1'`), as
    /// in an interactive shell; its lines are read with stdout's.
    pub fn spawn_all(&self, cmd: Command, label: &str) -> Proc {
        let mut sh = Command::new("/bin/sh");
        sh.args(["-c", "exec \"$@\" 2>&1", "sh"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        if let Some(d) = cmd.get_current_dir() {
            sh.current_dir(d);
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        self.spawn(sh, label)
    }

    /// Types `text` on the terminal, and gives the line discipline a moment to take it.
    pub fn type_text(&self, text: &str) {
        (&self.master).write_all(text.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(300));
    }
}

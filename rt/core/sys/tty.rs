//! Terminals: termios, window size, the foreground process group and TIOCSTI.
//!
//! Error policy as in `sys`. ENOTTY is what every call here returns for a descriptor
//! that is not a terminal.

use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

use super::fd_arg;

const TCGETS: usize = 0x5401;
const TCSETS: usize = 0x5402;
const TIOCGPGRP: usize = 0x540f;
const TIOCSTI: usize = 0x5412;
const TIOCGWINSZ: usize = 0x5413;

/// Sent to a program whose terminal changed size.
pub const SIGWINCH: u32 = 28;

/// `c_lflag` bits.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHONL: u32 = 0o100;
pub const IEXTEN: u32 = 0o100000;
/// `c_iflag` bits that change input bytes on their way in.
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
/// `c_cc` indices.
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VEOL: usize = 11;
pub const VEOL2: usize = 16;
pub const NCCS: usize = 19;

/// The kernel's `struct termios` that TCGETS and TCSETS use (asm-generic/termbits.h):
/// the same 36 bytes for x86_64 and i386 tasks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}
const_assert_eq!(size_of::<Termios>(), 36);
const_assert_eq!(offset_of!(Termios, lflag), 12);
const_assert_eq!(offset_of!(Termios, line), 16);
const_assert_eq!(offset_of!(Termios, cc), 17);

/// The kernel's `struct winsize` (TIOCGWINSZ).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}
const_assert_eq!(size_of::<Winsize>(), 8);

/// The terminal settings of `fd` (TCGETS); ENOTTY if it is not a terminal.
pub fn tcgets(fd: i32) -> Result<Termios, Errno> {
    let mut t = Termios::default();
    // SAFETY: TCGETS writes one struct termios, which `t` is.
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), TCGETS, &mut t as *mut Termios as usize)? };
    Ok(t)
}

/// Sets the terminal settings of `fd` at once (TCSETS: no draining, no flushing).
/// ENOTTY if it is not a terminal, EIO if it was hung up, EINTR if a background
/// process with SIGTTOU unblocked was stopped.
pub fn tcsets(fd: i32, t: &Termios) -> Result<(), Errno> {
    // SAFETY: TCSETS reads one struct termios, which `t` is.
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), TCSETS, t as *const Termios as usize).map(|_| ()) }
}

/// The window size of the terminal `fd` (TIOCGWINSZ); ENOTTY if it is not a terminal.
pub fn window_size(fd: i32) -> Result<Winsize, Errno> {
    let mut w = Winsize::default();
    // SAFETY: TIOCGWINSZ writes one struct winsize, which `w` is.
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), TIOCGWINSZ, &mut w as *mut Winsize as usize)? };
    Ok(w)
}

/// The foreground process group of the terminal `fd` (TIOCGPGRP); ENOTTY if it is not
/// a terminal or not the caller's controlling terminal.
pub fn foreground_group(fd: i32) -> Result<u32, Errno> {
    let mut pgrp: i32 = 0;
    // SAFETY: TIOCGPGRP writes one pid_t (an int).
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), TIOCGPGRP, &mut pgrp as *mut i32 as usize)? };
    Ok(pgrp as u32)
}

/// The caller's process group (cannot fail).
pub fn getpgrp() -> u32 {
    // SAFETY: getpgid touches no memory; 0 is the caller.
    unsafe { syscalls::syscall1(Sysno::getpgid, 0).unwrap_or(0) as u32 }
}

/// Puts `byte` into the input queue of the terminal `fd` as if it had been typed
/// (TIOCSTI). EPERM unless the caller has CAP_SYS_ADMIN, or the terminal is its
/// controlling terminal and /proc/sys/dev/tty/legacy_tiocsti is 1; EIO if it was hung up.
pub fn push_input(fd: i32, byte: u8) -> Result<(), Errno> {
    // SAFETY: TIOCSTI reads one char.
    unsafe { syscalls::syscall3(Sysno::ioctl, fd_arg(fd), TIOCSTI, &byte as *const u8 as usize).map(|_| ()) }
}

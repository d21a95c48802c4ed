//! Signals: dispositions, masks and sending.
//!
//! Error policy as in `sys`.

use core::mem::{offset_of, size_of};
use static_assertions::const_assert_eq;
use syscalls::{Errno, Sysno};

pub const SIG_BLOCK: usize = 0;
pub const SIG_UNBLOCK: usize = 1;
pub const SIG_SETMASK: usize = 2;
pub const SA_SIGINFO: usize = 4;
pub const SA_ONSTACK: usize = 0x0800_0000;
pub const SA_RESTART: usize = 0x1000_0000;
pub const SIGKILL: usize = 9;
pub const SIGSTOP: usize = 19;
/// The handler returns through `restorer` (which must call rt_sigreturn).
pub const SA_RESTORER: usize = 0x0400_0000;

/// The kernel's `struct sigaction` for rt_sigaction: handler, flags, restorer, then the
/// 64-bit mask. Pointer-sized fields, so it is 32 bytes on x86_64 and 20 on i386 (the
/// ia32 `struct compat_sigaction` of include/linux/compat.h packs the mask at 12).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: usize,
    pub restorer: usize,
    pub mask: u64,
}
#[cfg(target_pointer_width = "64")]
const_assert_eq!(size_of::<KernelSigaction>(), 32);
#[cfg(target_pointer_width = "64")]
const_assert_eq!(offset_of!(KernelSigaction, mask), 24);
#[cfg(target_pointer_width = "32")]
const_assert_eq!(size_of::<KernelSigaction>(), 20);
#[cfg(target_pointer_width = "32")]
const_assert_eq!(offset_of!(KernelSigaction, mask), 12);

/// Reads (`new` = None) or sets a signal's disposition.
pub fn rt_sigaction(sig: usize, new: Option<&KernelSigaction>, old: Option<&mut KernelSigaction>) -> Result<(), Errno> {
    let new_ptr = new.map_or(0, |n| n as *const KernelSigaction as usize);
    let old_ptr = old.map_or(0, |o| o as *mut KernelSigaction as usize);
    // SAFETY: both pointers are null or point to valid KernelSigaction values.
    unsafe { syscalls::syscall4(Sysno::rt_sigaction, sig, new_ptr, old_ptr, 8).map(|_| ()) }
}

/// Changes the calling thread's mask; returns the old mask.
pub fn rt_sigprocmask(how: usize, set: Option<u64>) -> Result<u64, Errno> {
    let mut old: u64 = 0;
    let set_val = set.unwrap_or(0);
    let set_ptr = if set.is_some() {
        &set_val as *const u64 as usize
    } else {
        0
    };
    // SAFETY: set_ptr is null or points to a u64; old is a valid u64 to write.
    unsafe { syscalls::syscall4(Sysno::rt_sigprocmask, how, set_ptr, &mut old as *mut u64 as usize, 8)? };
    Ok(old)
}

/// `si_code` of a signal queued with sigqueue.
pub const SI_QUEUE: i32 = -1;

/// Queues `sig` to process `pid` carrying `value` (rt_sigqueueinfo with SI_QUEUE, as
/// sigqueue(3) does; `sender` and `uid` are the caller's ids, which the kernel checks).
/// ESRCH: no such process; EPERM: not allowed to signal it.
pub fn sigqueue(pid: u32, sig: u32, value: u32, sender: u32, uid: u32) -> Result<(), Errno> {
    super::queue_signal_info(pid, sig, &queued_info(sig, value, sender, uid))
}

/// Like `sigqueue`, for one thread `tid` of process `pid` (rt_tgsigqueueinfo). ESRCH:
/// no such thread; EPERM: not allowed to signal it.
pub fn tgsigqueue(pid: u32, tid: u32, sig: u32, value: u32, sender: u32, uid: u32) -> Result<(), Errno> {
    let info = queued_info(sig, value, sender, uid);
    // SAFETY: the kernel reads 128 bytes of siginfo from `info`, which holds them.
    unsafe {
        syscalls::syscall4(
            Sysno::rt_tgsigqueueinfo,
            pid as usize,
            tid as usize,
            sig as usize,
            info.as_ptr() as usize,
        )
        .map(|_| ())
    }
}

/// The siginfo of a queued signal (SI_QUEUE) from `sender`.
fn queued_info(sig: u32, value: u32, sender: u32, uid: u32) -> [u8; 128] {
    let mut info = [0u8; 128];
    let mut put = |at: usize, v: [u8; 4]| info[at..at + 4].copy_from_slice(&v);
    put(0, (sig as i32).to_le_bytes());
    put(mtcp_arch::SIGINFO_CODE, SI_QUEUE.to_le_bytes());
    put(mtcp_arch::SIGINFO_PID, sender.to_le_bytes());
    put(mtcp_arch::SIGINFO_UID, uid.to_le_bytes());
    put(mtcp_arch::SIGINFO_VALUE, value.to_le_bytes());
    info
}

pub fn tgkill(tgid: u32, tid: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: tgkill touches no memory.
    unsafe { syscalls::syscall3(Sysno::tgkill, tgid as usize, tid as usize, sig as usize).map(|_| ()) }
}

/// kill(pid, sig): a signal for the whole process.
pub fn kill(pid: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: kill touches no memory.
    unsafe { syscalls::syscall2(Sysno::kill, pid as usize, sig as usize).map(|_| ()) }
}

/// The signals pending for the calling thread or its process (rt_sigpending).
pub fn rt_sigpending() -> Result<u64, Errno> {
    let mut set: u64 = 0;
    // SAFETY: the kernel writes one 8-byte signal set into set.
    unsafe { syscalls::syscall2(Sysno::rt_sigpending, &mut set as *mut u64 as usize, 8)? };
    Ok(set)
}

/// A signal taken out of the pending queue: its si_code, the sender's pid and the
/// si_value it carried.
#[derive(Clone, Copy, Debug)]
pub struct TakenSignal {
    pub code: i32,
    pub pid: u32,
    pub value: usize,
}

/// Takes one pending instance of `sig` (which the calling thread must block, or it may
/// be delivered instead), never waiting: rt_sigtimedwait with a zero timeout. EAGAIN:
/// none is pending.
pub fn take_pending_signal(sig: u32) -> Result<TakenSignal, Errno> {
    let set: u64 = 1 << (sig - 1);
    let mut info = [0u8; 128];
    // 16 bytes of zeros are a zero timeout for a 32-bit or a 64-bit timespec.
    let zero: [u64; 2] = [0, 0];
    // SAFETY: the kernel reads the 8-byte set and the timeout and writes at most 128
    // bytes of siginfo into info.
    unsafe {
        syscalls::syscall4(
            Sysno::rt_sigtimedwait,
            &set as *const u64 as usize,
            info.as_mut_ptr() as usize,
            zero.as_ptr() as usize,
            8,
        )?
    };
    let word = |at: usize| u32::from_le_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    let mut value = [0u8; size_of::<usize>()];
    value.copy_from_slice(&info[mtcp_arch::SIGINFO_VALUE..mtcp_arch::SIGINFO_VALUE + size_of::<usize>()]);
    Ok(TakenSignal {
        code: word(mtcp_arch::SIGINFO_CODE) as i32,
        pid: word(mtcp_arch::SIGINFO_PID),
        value: usize::from_le_bytes(value),
    })
}

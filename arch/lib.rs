//! The architecture layer: everything that needs assembly or a kernel layout (syscall
//! shapes, signal frames, TLS, context switches, the clone system calls, CPU features).
//! It imports nothing of mtcp; everything above it is architecture-neutral.
#![no_std]

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

/// i386 system calls (arch/x86/entry/syscalls/syscall_32.tbl) that did nothing when
/// they return EINTR, so that running them again with the same arguments is what an
/// uninterrupted thread would have done. `close` and `connect` are the classic
/// exceptions (they may have acted), so they are not here; `ipc` only multiplexes calls
/// that qualify. One list for i386 processes and for 32-bit threads a 64-bit tracer sees.
const I386_REPEATABLE: [usize; 52] = [
    3,   // read
    4,   // write
    145, // readv
    146, // writev
    180, // pread64
    181, // pwrite64
    333, // preadv
    334, // pwritev
    168, // poll
    309, // ppoll
    414, // ppoll_time64
    82,  // select
    142, // _newselect
    308, // pselect6
    413, // pselect6_time64
    256, // epoll_wait
    319, // epoll_pwait
    441, // epoll_pwait2
    162, // nanosleep
    267, // clock_nanosleep
    407, // clock_nanosleep_time64
    29,  // pause
    72,  // sigsuspend
    179, // rt_sigsuspend
    177, // rt_sigtimedwait
    421, // rt_sigtimedwait_time64
    240, // futex
    422, // futex_time64
    449, // futex_waitv
    117, // ipc
    401, // msgrcv
    400, // msgsnd
    420, // semtimedop_time64
    280, // mq_timedreceive
    419, // mq_timedreceive_time64
    279, // mq_timedsend
    418, // mq_timedsend_time64
    247, // io_getevents
    385, // io_pgetevents
    416, // io_pgetevents_time64
    7,   // waitpid
    114, // wait4
    284, // waitid
    364, // accept4
    371, // recvfrom
    372, // recvmsg
    337, // recvmmsg
    417, // recvmmsg_time64
    369, // sendto
    370, // sendmsg
    345, // sendmmsg
    143, // flock
];

/// Whether an i386 system call `nr` that returned EINTR may simply run again; `bx` is
/// its first argument (for `socketcall`, which socket call it is).
pub fn i386_repeatable_after_eintr(nr: usize, bx: u32) -> bool {
    const SOCKETCALL: usize = 102;
    if nr == SOCKETCALL {
        return socketcall_repeatable(bx);
    }
    I386_REPEATABLE.contains(&nr)
}

/// The socket calls multiplexed by i386's `socketcall` (include/uapi/linux/net.h) that
/// did nothing when they return EINTR: accept, send, recv, sendto, recvfrom, sendmsg,
/// recvmsg, accept4, recvmmsg, sendmmsg (connect is not one: it goes on in the kernel).
fn socketcall_repeatable(call: u32) -> bool {
    matches!(call, 5 | 9 | 10 | 11 | 12 | 16 | 17 | 18 | 19 | 20)
}

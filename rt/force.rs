//! Quiet delivery of the checkpoint signal: a helper process that shares our memory
//! stops threads with ptrace and hands them the signal so that the system call each one
//! sleeps in runs again afterwards instead of failing with EINTR, and so that threads
//! that block the signal (glibc's timer and mq_notify helpers) take it too.

use core::sync::atomic::{AtomicU32, Ordering};
use syscalls::{Errno, Sysno};

use mtcp_core::arch;
use mtcp_core::sys::{self, trace};

use crate::state::MAX_THREADS;

/// Threads handled by one helper process.
pub const BATCH: usize = 256;
const HELPER_STACK: usize = 64 << 10;
/// How long the coordinator waits for a helper before killing it.
const HELPER_LIMIT_NS: u64 = 10_000_000_000;

const CLONE_VM: usize = 0x100;
const CLONE_UNTRACED: usize = 0x0080_0000;
const CLONE_CHILD_CLEARTID: usize = 0x0020_0000;
const WCLONE: usize = 0x8000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Sent,
    /// The program's own signal was due: ask again later.
    Busy,
    Gone,
    Failed(Errno),
}

/// Work for one helper: the threads to reach, and what became of each.
pub struct Batch {
    pid: u32,
    sig: u32,
    pub tids: [u32; BATCH],
    pub outcome: [Outcome; BATCH],
    pub count: usize,
    go: AtomicU32,
    /// Cleared (and woken) by the kernel when the helper exits (CLONE_CHILD_CLEARTID).
    alive: AtomicU32,
}

impl Batch {
    pub fn new(sig: u32) -> Batch {
        Batch {
            pid: sys::getpid(),
            sig,
            tids: [0; BATCH],
            outcome: [Outcome::Pending; BATCH],
            count: 0,
            go: AtomicU32::new(0),
            alive: AtomicU32::new(0),
        }
    }

    /// Adds a thread; false when the batch is full.
    pub fn push(&mut self, tid: u32) -> bool {
        if self.count == BATCH {
            return false;
        }
        self.tids[self.count] = tid;
        self.outcome[self.count] = Outcome::Pending;
        self.count += 1;
        true
    }

    pub fn clear(&mut self) {
        self.count = 0;
    }
}

/// Threads whose mask blocked the checkpoint signal until the helper unblocked it:
/// their handler puts the signal back into the mask that `rt_sigreturn` restores.
static UNBLOCKED: [AtomicU32; MAX_THREADS] = [const { AtomicU32::new(0) }; MAX_THREADS];
static UNBLOCKED_USED: AtomicU32 = AtomicU32::new(0);

fn note_unblocked(tid: u32) -> Result<(), Errno> {
    let used = UNBLOCKED_USED.load(Ordering::Acquire) as usize;
    for (k, slot) in UNBLOCKED[..(used + 1).min(MAX_THREADS)].iter().enumerate() {
        if slot
            .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            UNBLOCKED_USED.fetch_max(k as u32 + 1, Ordering::AcqRel);
            return Ok(());
        }
    }
    Err(Errno::ENOSPC)
}

/// Forgets every thread noted as unblocked. At the end of a checkpoint each of them has
/// run its handler (it parked), unless it exited, and its tid may come back.
pub fn forget_unblocked() {
    for slot in UNBLOCKED.iter() {
        slot.store(0, Ordering::Release);
    }
    UNBLOCKED_USED.store(0, Ordering::Release);
}

/// In the checkpoint handler: if the helper unblocked the signal for this thread, block
/// it again in the mask the frame restores, so the thread goes on as it was.
///
/// # Safety
/// `uc` must be the kernel's ucontext for the calling thread's handler.
pub unsafe fn reblock_if_unblocked(tid: u32, uc: *mut u8, sig: u32) {
    let used = (UNBLOCKED_USED.load(Ordering::Acquire) as usize).min(MAX_THREADS);
    if used == 0 {
        return;
    }
    let Some(slot) = UNBLOCKED[..used].iter().find(|s| s.load(Ordering::Acquire) == tid) else {
        return;
    };
    // SAFETY: `uc` is this thread's ucontext (our contract); its signal mask lies at
    // arch::uc::SIGMASK, a 64-bit word the kernel reads back on rt_sigreturn.
    unsafe {
        let mask = uc.add(arch::uc::SIGMASK) as *mut u64;
        core::ptr::write_unaligned(mask, core::ptr::read_unaligned(mask) | 1u64 << (sig - 1));
    }
    slot.store(0, Ordering::Release);
}

/// Whether Yama restricts tracing to descendants unless the tracee names its tracer.
fn yama_wants_a_tracer() -> bool {
    let mut buf = [0u8; 8];
    matches!(sys::read_file(b"/proc/sys/kernel/yama/ptrace_scope", &mut buf), Ok(n) if n > 0 && buf[0] == b'1')
}

/// Reaches every thread of `batch` from a helper process and fills in its outcomes.
/// Errors: the helper could not be started (ENOMEM, EAGAIN from mmap or clone).
///
/// # Safety
/// Only the checkpoint coordinator, with every signal blocked (it runs in the handler).
pub unsafe fn deliver(batch: &mut Batch) -> Result<(), Errno> {
    let stack = sys::map_anon(HELPER_STACK)?;
    batch.go.store(0, Ordering::Release);
    batch.alive.store(1, Ordering::Release);
    let flags = CLONE_VM | CLONE_UNTRACED | CLONE_CHILD_CLEARTID; // exit signal 0: no SIGCHLD
                                                                  // SAFETY: the helper runs helper_main on its own fresh stack; it shares our memory
                                                                  // and touches only `batch`, which lives until `alive` is cleared at its exit (waited
                                                                  // for below), and the UNBLOCKED table.
    let spawned = unsafe {
        sys::clone_thread(
            flags,
            stack + HELPER_STACK,
            0,
            batch.alive.as_ptr() as usize,
            0,
            helper_main,
            batch as *mut Batch as usize,
        )
    };
    let helper = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            // SAFETY: the stack was mapped above and no thread ever ran on it.
            let _ = unsafe { sys::munmap(stack, HELPER_STACK) };
            return Err(e);
        }
    };
    let named = yama_wants_a_tracer() && trace::allow_tracer(helper).is_ok();
    batch.go.store(1, Ordering::Release);
    sys::futex_wake_all(&batch.go);
    let deadline = sys::monotonic_ns() + HELPER_LIMIT_NS;
    while batch.alive.load(Ordering::Acquire) != 0 {
        if sys::monotonic_ns() > deadline {
            // Its tracees are detached by the kernel when it dies.
            let _ = sys::kill(helper, sys::SIGKILL as u32);
            while batch.alive.load(Ordering::Acquire) != 0 {
                sys::futex_wait_timeout(&batch.alive, 1, 10_000_000);
            }
            for o in batch.outcome[..batch.count].iter_mut() {
                if *o == Outcome::Pending {
                    *o = Outcome::Failed(Errno::ETIMEDOUT);
                }
            }
            break;
        }
        sys::futex_wait_timeout(&batch.alive, 1, 100_000_000);
    }
    // Reap it; a program that waits with __WALL may have done so already.
    // SAFETY: wait4 with a null status pointer writes nothing.
    let _ = unsafe { syscalls::syscall4(Sysno::wait4, helper as usize, 0, WCLONE, 0) };
    if named {
        let _ = trace::allow_tracer(0);
    }
    // SAFETY: the helper has exited (alive cleared), so nothing runs on its stack.
    let _ = unsafe { sys::munmap(stack, HELPER_STACK) };
    Ok(())
}

/// The helper process: one quiet delivery per thread of the batch, then exit.
///
/// # Safety
/// Started by `deliver` only, with `arg` its Batch.
unsafe extern "C" fn helper_main(arg: usize) -> ! {
    // SAFETY: `deliver` keeps the batch alive until this process has exited, and reads
    // it only after that (or after killing it).
    let batch = unsafe { &mut *(arg as *mut Batch) };
    while batch.go.load(Ordering::Acquire) == 0 {
        sys::futex_wait(&batch.go, 0);
    }
    let (pid, sig) = (batch.pid, batch.sig);
    for i in 0..batch.count {
        let tid = batch.tids[i];
        let mut send = |unblocked: bool| {
            if unblocked {
                note_unblocked(tid)?;
            }
            let sent = sys::tgkill(pid, tid, sig);
            if sent.is_err() && unblocked {
                // The thread keeps its mask: nothing to put back.
                if let Some(slot) = UNBLOCKED.iter().find(|s| s.load(Ordering::Acquire) == tid) {
                    slot.store(0, Ordering::Release);
                }
            }
            sent
        };
        batch.outcome[i] = match trace::deliver_quietly(pid, tid, sig, &mut send) {
            Ok(trace::Delivery::Sent { .. }) => Outcome::Sent,
            Ok(trace::Delivery::Busy) => Outcome::Busy,
            Ok(trace::Delivery::Gone) => Outcome::Gone,
            Err(e) => Outcome::Failed(e),
        };
    }
    // SAFETY: exit ends this helper process only (it is a process of its own).
    unsafe {
        let _ = syscalls::syscall1(Sysno::exit, 0);
    }
    sys::exit_group(0)
}

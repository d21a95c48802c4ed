//! The runtime's half of a restart. mtcp_restart maps the image's memory back and jumps
//! here; this code then drops mtcp_restart, rebuilds the kernel state (signal
//! dispositions, brk and the other mm fields, cwd, umask, thread ids, TLS, robust lists,
//! rseq, timers), recreates every thread and resumes each one inside its checkpoint
//! signal handler, which then returns through `rt_sigreturn` on the thread's own frame.

use core::mem::size_of;
use core::sync::atomic::{AtomicU32, Ordering};
use static_assertions::const_assert_eq;

use mtcp_core::arch::{self, JumpContext};
use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::global::Global;
use mtcp_core::image::{
    ProcessRecord, RestartArgs, SigActionRecord, ThreadRecord, NSIG, RESTART_ARGS_MAGIC, RESTART_DROP_CAPS,
    RESTART_EXE_FD, RESTART_NAMESPACE, RESTART_NEW_IDS_ASKED, RESTART_SAME_PID, RESTART_VERBOSE, RESTART_WINCH,
    THREAD_AFFINITY, THREAD_MAIN, THREAD_RSEQ, THREAD_SCHED,
};
use mtcp_core::sys::{self, CPath, KernelSigaction};

use crate::state::{end_phase, Runtime, FINISHING, IN_PARK, LAST_RESULT, PHASE, RESTARTED, RT};

const RESTORE_STACK_SIZE: usize = 64 << 10;

#[repr(C, align(4096))]
struct RestoreStack([u8; RESTORE_STACK_SIZE]);

/// The stack the restore code runs on: mtcp_restart's own is unmapped first thing.
static RESTORE_STACK: Global<RestoreStack> = Global::new(RestoreStack([0; RESTORE_STACK_SIZE]));

/// Addresses of the restore stack; its contents are never worth saving.
pub fn restore_stack_range() -> (usize, usize) {
    let start = RESTORE_STACK.get() as usize;
    (start, start + RESTORE_STACK_SIZE)
}

/// Entered from mtcp_restart with a pointer to its RestartArgs.
///
/// # Safety
/// Only mtcp_restart calls this, from the process's only thread, after every region of
/// the image is back in place, with `args` the address of its RestartArgs.
pub unsafe extern "C" fn restore_entry(args: usize) -> ! {
    let (_, top) = restore_stack_range();
    // SAFETY: top ends RESTORE_STACK, page aligned, which nothing but the restore code
    // uses and which is idle until now; restore_main's contract is ours.
    unsafe { arch::switch_stack(top, restore_main, args) }
}

/// The restart's extra requests and facts, copied out of mtcp_restart's memory.
static ARGS: Global<RestartArgs> = Global::new(RestartArgs::zeroed());

/// The kernel's struct prctl_mm_map (the auxv pointer is 64-bit for every task).
#[repr(C)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}
const_assert_eq!(size_of::<PrctlMmMap>(), 104);

fn fatal(what: &str, e: syscalls::Errno) -> ! {
    eprint_line!("mtcp_restart: {}: {}", what, ErrnoName(e));
    sys::exit_group(1)
}

/// # Safety
/// Entered once, from `restore_entry` on the restore stack, with `args` pointing at mtcp_restart's RestartArgs and every region already in place.
unsafe extern "C" fn restore_main(args: usize) -> ! {
    // SAFETY: this is the process's only thread, and only the restore code uses ARGS.
    let a = unsafe { &mut *ARGS.get() };
    // SAFETY: `args` is the address of mtcp_restart's RestartArgs, still mapped (our
    // contract).
    *a = unsafe { core::ptr::read(args as *const RestartArgs) };
    if a.magic != RESTART_ARGS_MAGIC {
        eprint_line!("mtcp_restart: this image's runtime does not match this mtcp_restart");
        sys::exit_group(1);
    }
    // mtcp_restart is no longer needed; nothing of it may stay in the process.
    // SAFETY: the window is mtcp_restart's alone, and none of it is used again: this code
    // and its stack are the image's, and its arguments were copied into ARGS above.
    if let Err(e) = unsafe { sys::munmap(a.window_start as usize, a.window_len as usize) } {
        fatal("cannot unmap mtcp_restart", e);
    }
    // SAFETY: this is still the process's only thread.
    let rt = unsafe { &mut *RT.get() };
    let old_pid = rt.process.pid;
    let exe_fd = (a.flags & RESTART_EXE_FD != 0).then(|| sys::Fd::adopt(a.exe_fd as i32));
    // SAFETY: from restore_main, before any other thread exists.
    unsafe { restore_process(rt, exe_fd, a.flags & RESTART_VERBOSE != 0) };
    rt.in_namespace = a.flags & RESTART_NAMESPACE != 0;

    let count = rt.thread_count;
    let main = rt.slots[..count]
        .iter()
        .position(|s| s.rec.flags & THREAD_MAIN != 0)
        .unwrap_or(0);
    let path_len = (a.image_path_len as usize).min(rt.image_path.len() - 1);
    rt.image_path[..path_len].copy_from_slice(&a.image_path[..path_len]);
    rt.image_path[path_len] = 0;
    rt.image_path_len = path_len;
    rt.real_pid = sys::getpid();
    // Until every thread is back, a checkpoint request waits (a thread resumed early may
    // take one): a new checkpoint would reuse the slots the restore still reads.
    PHASE.store(FINISHING, Ordering::Release);
    // Every restored thread but the coordinator leaves the handler through `park`.
    IN_PARK.store(count.saturating_sub(1) as u32, Ordering::Release);
    crate::interpose::RESTARTS.fetch_add(1, Ordering::AcqRel);
    LAST_RESULT.store(RESTARTED as i32, Ordering::Release);

    let same_ids = a.flags & RESTART_SAME_PID != 0;
    DROP_CAPS.store(a.flags & RESTART_DROP_CAPS != 0, Ordering::Release);
    // SAFETY: this thread goes on as the main thread: the record is the one it resumes.
    unsafe { restore_thread(&rt.slots[main].rec, true) };
    rt.slots[main].new_tid = sys::gettid();
    // Requests that joined the checkpoint in the image were answered by it.
    let _ = crate::checkpoint::answered_nonces(0);
    crate::status::publish_ready(rt.status_seq);
    if a.flags & RESTART_VERBOSE != 0 {
        eprint_line!(
            "mtcp_restart: restored pid {} as pid {} with {} thread(s); {}",
            old_pid,
            rt.real_pid,
            count,
            if same_ids && rt.in_namespace {
                "process and thread ids are the same as at checkpoint time, inside new namespaces"
            } else if same_ids {
                "process and thread ids are the same as at checkpoint time"
            } else {
                "thread ids are new (glibc's copies updated)"
            }
        );
    }
    // The other threads come last: each runs the program as soon as GO is set, so the
    // shared state above must be complete by then.
    STARTED.store(0, Ordering::Release);
    GO.store(0, Ordering::Release);
    for i in 0..count {
        if i != main {
            // SAFETY: from restore_main; slot i's thread does not exist yet, so its saved
            // stack is restored memory that nothing uses.
            unsafe { spawn_thread(rt, i, same_ids) };
        }
    }
    // Each new thread copies its slot before it resumes; only then may a new checkpoint
    // (which reuses the slots) start.
    let spawned = count.saturating_sub(1) as u32;
    loop {
        let started = STARTED.load(Ordering::Acquire);
        if started >= spawned {
            break;
        }
        sys::futex_wait(&STARTED, started);
    }
    if !same_ids {
        // SAFETY: every thread exists, and none runs the program yet (they wait for GO).
        unsafe {
            hand_over_locks(
                rt,
                a.flags & (RESTART_VERBOSE | RESTART_NEW_IDS_ASKED) != RESTART_NEW_IDS_ASKED,
            )
        };
    }
    // Timers need every thread's new tid. (The interval thread, if any, is one of the
    // threads just recreated: it goes on sleeping where it was.)
    // SAFETY: every thread exists, and none runs the program yet (they wait for GO).
    unsafe { crate::timers::restore(&rt.slots[..count], old_pid as u32) };
    // SAFETY: from restore_main, once every thread exists.
    unsafe { resend_pending_signals(rt) };
    // The capabilities that chose the ids are no business of the program's.
    drop_capabilities_if_asked();
    GO.store(1, Ordering::Release);
    sys::futex_wake_all(&GO);
    if a.flags & RESTART_WINCH != 0 {
        // A new terminal, perhaps of another size: the program looks again (and redraws).
        let _ = sys::kill(sys::getpid(), sys::SIGWINCH);
    }
    let ctx: JumpContext = rt.slots[main].ctx;
    end_phase();
    // SAFETY: ctx was filled by save_and_call in the main thread's handler at checkpoint
    // time; the stack it points into is back byte for byte with the image, and nothing
    // has run on it since (the restore code is on RESTORE_STACK, where this copy is).
    unsafe { arch::resume(&ctx, RESTARTED) }
}

/// Old tid to new tid, sorted, for `hand_over_locks` (too large for the restore stack).
static TID_MAP: Global<[(u32, u32); crate::state::MAX_THREADS]> = Global::new([(0, 0); crate::state::MAX_THREADS]);

/// With new ids: the glibc locks that threads held at checkpoint time go to their new
/// tids; `say` tells what that repaired and what new ids leave stale.
///
/// # Safety
/// Only from `restore_main`, once every thread exists and before any runs the program.
unsafe fn hand_over_locks(rt: &Runtime, say: bool) {
    // SAFETY: only the restore code uses TID_MAP, from this one thread.
    let map = unsafe { &mut *TID_MAP.get() };
    let count = rt.thread_count.min(map.len());
    for (m, slot) in map.iter_mut().zip(&rt.slots[..count]) {
        *m = (slot.rec.tid as u32, slot.new_tid);
    }
    map[..count].sort_unstable();
    let own = (RT.get() as usize, RT.get() as usize + size_of::<Runtime>());
    // SAFETY: our contract: no other thread runs; `own` is the runtime's state, which
    // keeps the old tids.
    let done = unsafe { crate::tid_repair::hand_locks_to_new_tids(&map[..count], own) };
    if say {
        eprint_line!(
            "mtcp_restart: new ids: {} held mutex(es) and {} write-locked rwlock(s) handed to the new thread ids; \
             pids and tids the program keeps itself (getpid(), gettid(), CPU-clock ids, pid files) are stale",
            done.mutexes,
            done.rwlocks
        );
    }
}

/// The restored threads hold capabilities of a user namespace made for the restart:
/// each drops its own before it runs the program.
static DROP_CAPS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Drops the calling thread's capabilities where the restart asked for it. A thread that
/// cannot must not run the program with them: the restart fails.
fn drop_capabilities_if_asked() {
    if DROP_CAPS.load(Ordering::Acquire) {
        if let Err(e) = sys::drop_capabilities() {
            fatal("cannot drop the capabilities of the restart's user namespace", e);
        }
    }
}

/// Threads recreated by the restore that have copied their slot (a futex word
/// restore_main waits on).
static STARTED: AtomicU32 = AtomicU32::new(0);
/// Set once the process-wide state that needs every thread (timers) is back: recreated
/// threads wait for it before they resume the program.
static GO: AtomicU32 = AtomicU32::new(0);

/// # Safety
/// Only from `restore_main`, before any other thread exists.
unsafe fn restore_process(rt: &mut Runtime, exe_fd: Option<sys::Fd>, verbose: bool) {
    let p: &ProcessRecord = &rt.process;
    for sig in 1..=NSIG {
        if sig == sys::SIGKILL || sig == sys::SIGSTOP {
            continue;
        }
        let act = action_of(&p.sigactions[sig - 1]);
        let _ = sys::rt_sigaction(sig, Some(&act), None);
    }

    let m = &p.mm;
    let mut map = PrctlMmMap {
        start_code: m.start_code,
        end_code: m.end_code,
        start_data: m.start_data,
        end_data: m.end_data,
        start_brk: m.start_brk,
        brk: m.brk,
        start_stack: m.start_stack,
        arg_start: m.arg_start,
        arg_end: m.arg_end,
        env_start: m.env_start,
        env_end: m.env_end,
        auxv: if p.auxv_bytes > 0 {
            p.auxv.as_ptr() as usize as u64
        } else {
            0
        },
        auxv_size: p.auxv_bytes,
        exe_fd: u32::MAX,
    };
    // /proc/PID/exe names the program again, for debuggers and profilers, where this
    // process may change it (CAP_CHECKPOINT_RESTORE: the ids' namespace, or root).
    if let Some(fd) = &exe_fd {
        map.exe_fd = fd.raw() as u32;
        // SAFETY: as below.
        match unsafe { set_mm_map(&map) } {
            Ok(()) => return restore_process_rest(rt),
            Err(e) => {
                if verbose {
                    eprint_line!(
                        "mtcp_restart: note: /proc/PID/exe stays mtcp_restart ({})",
                        ErrnoName(e)
                    );
                }
                map.exe_fd = u32::MAX;
            }
        }
    }
    drop(exe_fd);
    // Without this the kernel's heap bounds stay mtcp_restart's, and the program's next
    // brk() would fail or unmap memory: refuse to go on.
    // SAFETY: as below.
    if let Err(e) = unsafe { set_mm_map(&map) } {
        fatal("cannot restore the heap and argument bounds (PR_SET_MM_MAP)", e);
    }
    restore_process_rest(rt);
}

/// PR_SET_MM_MAP with `map`.
///
/// # Safety
/// `map`'s auxv points at auxv_bytes bytes that outlive the call; its bounds are the
/// process's own from checkpoint time, over memory that is back at the same addresses
/// (the kernel checks them).
unsafe fn set_mm_map(map: &PrctlMmMap) -> Result<(), syscalls::Errno> {
    // SAFETY: `map` is a whole prctl_mm_map that outlives the call; the rest is the
    // caller's contract.
    unsafe {
        sys::prctl(
            sys::PR_SET_MM,
            sys::PR_SET_MM_MAP,
            map as *const PrctlMmMap as usize,
            size_of::<PrctlMmMap>(),
            0,
        )
        .map(|_| ())
    }
}

/// What restore_process restores after the mm fields.
fn restore_process_rest(rt: &mut Runtime) {
    let p: &ProcessRecord = &rt.process;

    let cwd = &rt.cwd[..rt.cwd_len];
    if !cwd.is_empty() {
        if let Err(e) = CPath::new(cwd).and_then(|c| sys::chdir(&c)) {
            eprint_line!(
                "mtcp_restart: warning: cannot return to directory {}: {}",
                Lossy(cwd),
                ErrnoName(e)
            );
        }
    }
    sys::umask(p.umask);
    for (resource, &[soft, hard]) in p.rlimits.iter().enumerate() {
        let current = sys::prlimit(resource as u32, None);
        if current != Ok((soft, hard)) {
            // Raising a hard limit needs privilege; then the restart's limit stays.
            if let Err(e) = sys::prlimit(resource as u32, Some((soft, hard))) {
                eprint_line!(
                    "mtcp_restart: warning: cannot restore resource limit {}: {}",
                    resource,
                    ErrnoName(e)
                );
            }
        }
    }
    for (which, &[interval, value]) in p.itimers.iter().enumerate() {
        // A timer with no time left is disarmed, whatever its interval.
        if value != 0 {
            let _ = sys::set_itimer(which as u32, interval, value);
        }
    }
    if sys::personality(0xffff_ffff).is_ok_and(|cur| cur != p.personality) {
        let _ = sys::personality(p.personality);
    }
}

/// Per-thread kernel state for the calling thread. The main thread also sets its
/// thread pointer and clear_child_tid (clone does both for the others).
///
/// # Safety
/// Only by the thread the record belongs to, while restoring.
unsafe fn restore_thread(rec: &ThreadRecord, main: bool) {
    if main {
        // SAFETY: the thread's own TLS state from checkpoint time, over memory that is
        // back with the image: what the program's code on this thread expects. The
        // restore code itself uses no TLS.
        if let Err(e) = unsafe { arch::write_tls(rec.tls_base, rec.tls_aux) } {
            fatal("cannot restore the main thread's TLS", e);
        }
        let tid = sys::set_tid_address(rec.clear_child_tid as usize);
        if rec.clear_child_tid != 0 {
            // glibc keeps each thread's tid where clear_child_tid points (struct pthread).
            // SAFETY: the address this thread had registered with the kernel, libc's
            // aligned u32 tid field, back in place with the image's memory.
            unsafe { core::ptr::write_volatile(rec.clear_child_tid as usize as *mut u32, tid) };
        }
    } else if rec.tls_aux != 0 {
        // SAFETY: as for the main thread (clone already set the thread pointer from this
        // same record).
        let _ = unsafe { arch::write_tls(rec.tls_base, rec.tls_aux) };
    }
    if rec.robust_list != 0 {
        let _ = sys::set_robust_list(rec.robust_list as usize, rec.robust_list_len as usize);
        // SAFETY: the head this thread had registered with the kernel at checkpoint time,
        // glibc's list, back in place with the image's memory.
        unsafe { retarget_robust_mutexes(rec.robust_list as usize, rec.tid as u32, sys::gettid()) };
    }
    if rec.flags & THREAD_RSEQ != 0 {
        // SAFETY: libc's rseq area in this thread's own TLS block, registered at
        // checkpoint time and back in place with the image; it lives as long as the
        // thread.
        let _ = unsafe { sys::rseq(rec.rseq as usize, rec.rseq_len, 0, rec.rseq_sig) };
    }
    sys::set_thread_name(&rec.name);
    restore_scheduling(rec);
}

/// The thread's scheduling policy and priority, nice value and CPU set, where the image
/// recorded them and they differ from what the thread has now. What this user may not
/// set (a real-time policy, a lower nice value) or this machine lacks (its CPUs) is
/// reported, and the thread keeps what it has.
fn restore_scheduling(rec: &ThreadRecord) {
    let warn = |what: &str, e: syscalls::Errno| {
        eprint_line!(
            "mtcp_restart: warning: thread {}: cannot restore its {}: {}",
            rec.tid,
            what,
            ErrnoName(e)
        );
    };
    if rec.sched_flags & THREAD_SCHED != 0 {
        if sys::get_scheduling() != Ok((rec.sched_policy, rec.sched_priority)) {
            if let Err(e) = sys::set_scheduling(rec.sched_policy, rec.sched_priority) {
                warn("scheduling policy", e);
            }
        }
        if sys::get_nice() != Ok(rec.nice) {
            if let Err(e) = sys::set_nice(rec.nice) {
                warn("nice value", e);
            }
        }
    }
    if rec.sched_flags & THREAD_AFFINITY != 0 && sys::get_affinity64() != Ok(rec.affinity) {
        if let Err(e) = sys::set_affinity64(rec.affinity) {
            warn("CPU affinity", e);
        }
    }
}

/// Signals that were pending at checkpoint time are sent again (one of each: the kernel's
/// queue of real-time signals and their siginfo are not kept). Every thread still has
/// all signals blocked until it leaves its handler, so each is delivered under the
/// thread's own mask, as it would have been.
///
/// # Safety
/// Only from `restore_main`, once every thread exists.
unsafe fn resend_pending_signals(rt: &Runtime) {
    let pid = sys::getpid();
    for sig in 1..=64u32 {
        let bit = 1u64 << (sig - 1);
        if rt.process.pending & bit != 0 {
            let _ = sys::kill(pid, sig);
        }
        for slot in &rt.slots[..rt.thread_count] {
            if slot.rec.pending & bit != 0 && slot.new_tid != 0 {
                let _ = sys::tgkill(pid, slot.new_tid, sig);
            }
        }
    }
}

/// A robust mutex held by a thread carries the holder's tid in its lock word (the
/// kernel's robust-futex protocol), and glibc keeps it in `__owner` too, 8 bytes further
/// on every architecture. With a new tid the holder could no longer unlock it, and the
/// kernel would not release it when the holder dies: rewrite the old tid to the new one
/// in every mutex on the thread's robust list.
///
/// # Safety
/// `head` is the thread's registered `struct robust_list_head` in restored memory, and
/// the list it heads is glibc's: every entry, and `list_op_pending` if set, is a mutex
/// in that memory.
unsafe fn retarget_robust_mutexes(head: usize, old: u32, new: u32) {
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    const MAX_ENTRIES: usize = 1 << 20; // a corrupt list must not hang the restart
    if head == 0 || old == new {
        return;
    }
    let word = core::mem::size_of::<usize>();
    // SAFETY: only ever called with a word of the list head or the list link at the
    // start of an entry, both in restored memory (our contract).
    let read = |addr: usize| unsafe { core::ptr::read_volatile(addr as *const usize) };
    let futex_offset = read(head + word) as isize;
    let retarget = |entry: usize| {
        // Bit 0 of a list pointer marks a PI mutex.
        let lock = (entry & !1) as isize + futex_offset;
        let lock = lock as usize as *mut u32;
        // SAFETY: entry is a mutex on the list (our contract): `lock` is its aligned futex
        // word, which other threads change only atomically (futex protocol), and glibc's
        // `__owner` the int 8 bytes further on, which only the holder (this thread) writes.
        let (word, owner) = unsafe { (AtomicU32::from_ptr(lock), (lock as usize + 8) as *mut u32) };
        // Threads resumed before this one may set FUTEX_WAITERS meanwhile: keep their bits.
        let mut value = word.load(Ordering::Acquire);
        while value & FUTEX_TID_MASK == old {
            match word.compare_exchange(
                value,
                (value & !FUTEX_TID_MASK) | new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: as above: `__owner` of a mutex this thread holds.
                    unsafe {
                        if core::ptr::read_volatile(owner) == old {
                            core::ptr::write_volatile(owner, new);
                        }
                    }
                    break;
                }
                Err(now) => value = now,
            }
        }
    };
    let mut entry = read(head) & !1;
    let mut seen = 0;
    while entry != head && entry != 0 && seen < MAX_ENTRIES {
        retarget(entry);
        entry = read(entry) & !1;
        seen += 1;
    }
    let pending = read(head + 2 * word);
    if pending & !1 != 0 {
        retarget(pending);
    }
}

/// # Safety
/// Only from `restore_main`: the slot's saved stack is restored memory that no other thread uses yet.
unsafe fn spawn_thread(rt: &mut Runtime, i: usize, same_id: bool) {
    let rec = &rt.slots[i].rec;
    let mut flags = sys::THREAD_CLONE_FLAGS;
    let ctid = rec.clear_child_tid as usize;
    if ctid != 0 {
        // The new tid lands where libc keeps it, and is cleared when the thread exits.
        flags |= sys::CLONE_PARENT_SETTID | sys::CLONE_CHILD_CLEARTID;
    }
    let mut tls_scratch = [0u32; 4];
    let tls = arch::clone_tls_arg(rec.tls_base, rec.tls_aux, &mut tls_scratch);
    // The thread starts just below its own saved stack pointer (minus the red zone):
    // that memory is free in the restored stack.
    let stack_top = rt.slots[i].ctx.sp as usize - 256;
    // SAFETY: stack_top lies below the thread's saved stack pointer in its restored
    // stack, which nothing uses (the thread does not exist yet, and resumes above that
    // point); thread_entry never returns and gets its slot index; ctid is libc's tid
    // field in restored memory; tls, and tls_scratch it may point to, outlive the call.
    let spawned: Result<u32, syscalls::Errno> = unsafe {
        if same_id {
            sys::clone_thread_with_tid(flags, stack_top, ctid, ctid, tls, rec.tid as u32, thread_entry, i)
        } else {
            sys::clone_thread(flags, stack_top, ctid, ctid, tls, thread_entry, i)
        }
    };
    match spawned {
        Ok(tid) => rt.slots[i].new_tid = tid,
        Err(e) => fatal("cannot recreate a thread", e),
    }
}

/// # Safety
/// Only as the entry of a thread made by `spawn_thread`, with its slot index.
unsafe extern "C" fn thread_entry(i: usize) -> ! {
    // SAFETY: this thread reads only its own slot's `rec` and `ctx`, which nothing
    // writes while the restore goes on (restore_main writes only `new_tid` fields now).
    let rt = unsafe { &*RT.get() };
    // SAFETY: this thread is slot i's, made by spawn_thread (our contract).
    unsafe { restore_thread(&rt.slots[i].rec, false) };
    // The slot may be reused by a checkpoint once restore_main has seen every thread here.
    let ctx: JumpContext = rt.slots[i].ctx;
    drop_capabilities_if_asked();
    STARTED.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&STARTED);
    while GO.load(Ordering::Acquire) == 0 {
        sys::futex_wait(&GO, 0);
    }
    // SAFETY: slot i's context was filled by save_and_call in `park` at checkpoint time;
    // its stack is back byte for byte, and this thread started below ctx.sp, so the
    // frames above it are intact; the copy lies below ctx.sp and is read before the jump.
    unsafe { arch::resume(&ctx, RESTARTED) }
}

/// A disposition from the image in the kernel's form for this architecture.
fn action_of(r: &SigActionRecord) -> KernelSigaction {
    KernelSigaction {
        handler: r.handler as usize,
        flags: r.flags as usize,
        restorer: r.restorer as usize,
        mask: r.mask,
    }
}

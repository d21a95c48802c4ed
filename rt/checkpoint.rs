//! The checkpoint protocol: the signal handler, stopping every thread, and the
//! coordinator that writes the image and lets the threads go on.
//!
//! One thread (the first to take the checkpoint signal while idle) becomes the
//! coordinator. It signals every other thread with `tgkill`; each parks inside the
//! handler after saving its state into a slot. Every thread, the coordinator included,
//! saves its callee-saved registers with `save_and_call`, so that on restart it can be
//! resumed at that point and leave the handler through `rt_sigreturn` on its own frame.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use mtcp_core::arch::{self, JumpContext};
use mtcp_core::arena::Arena;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::{THREAD_COORDINATOR, THREAD_MAIN};
use mtcp_core::protocol::TIMER_VALUE;
use mtcp_core::sys;
use syscalls::Errno;

use crate::config::CONFIG;
use crate::state::{
    end_phase, FailMessage, Runtime, API_REQUEST, CHECKPOINTED, COORDINATOR, FINISHING, IDLE, IN_PARK, LAST_RESULT,
    MAX_THREADS, PARKED, PHASE, RELEASE, RESTARTED, RETRYING, ROUND, RT, SLOTS_USED, STOPPING,
};
use crate::writer::{self, Unsaved};

const SI_USER: i32 = 0;
const SI_TKILL: i32 = -6;

/// The checkpoint signal's handler (SA_SIGINFO).
///
/// # Safety
/// Called by the kernel only, with its siginfo and ucontext.
pub unsafe extern "C" fn on_signal(_sig: i32, info: *mut u8, uc: *mut u8) {
    let tid = sys::gettid();
    crate::interpose::note_handler_run(tid);
    // SAFETY: `uc` is the kernel's ucontext for this thread's handler (our contract).
    unsafe { crate::force::reblock_if_unblocked(tid, uc, (*CONFIG.get()).signal) };
    // SAFETY: `info` is the siginfo_t the kernel wrote on this thread's signal frame (our
    // contract); the three fields lie inside it, naturally aligned, at the offsets arch
    // checks against the kernel's layout.
    let (code, sender, value) = unsafe {
        (
            core::ptr::read(info.add(arch::SIGINFO_CODE) as *const i32),
            core::ptr::read(info.add(arch::SIGINFO_PID) as *const u32),
            core::ptr::read(info.add(arch::SIGINFO_VALUE) as *const usize),
        )
    };
    let own_tkill = code == SI_TKILL && sender == sys::getpid();
    // The tool's request number, which sigqueue carries; kill, tgkill and our own timer
    // carry none.
    let nonce = if code == SI_USER || code == SI_TKILL || value == TIMER_VALUE {
        0
    } else {
        value as u32
    };

    match wait_while_finishing() {
        // A stale stop request, or a request the checkpoint under way will serve.
        RETRYING => {
            join_request(nonce);
            return;
        }
        STOPPING if COORDINATOR.load(Ordering::Acquire) != tid => {
            join_request(nonce);
            // SAFETY: in the checkpoint handler, with the kernel's `uc` for this thread,
            // which is not the coordinator.
            unsafe { park(uc) };
            return;
        }
        _ => {}
    }
    let api = own_tkill;
    if own_tkill {
        // Our own tgkill: either mtcp_checkpoint() in this thread, or a stop request that
        // arrived after its checkpoint ended (the thread had already parked): ignore that.
        if API_REQUEST
            .compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
    }
    if already_answered(nonce) {
        // `mtcp checkpoint` asked again while our answer was on its way: it is in the
        // status file, and a second checkpoint would replace the image it names.
        return;
    }
    match PHASE.compare_exchange(IDLE, STOPPING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(RETRYING) | Err(FINISHING) => {
            join_request(nonce);
            return;
        }
        Err(_) => {
            join_request(nonce);
            // SAFETY: as above: another thread is the coordinator.
            unsafe { park(uc) };
            return;
        }
    }
    COORDINATOR.store(tid, Ordering::Release);
    // SAFETY: this thread's compare_exchange above moved PHASE from IDLE to STOPPING, so
    // it is the coordinator; `uc` is its own signal frame.
    unsafe { coordinate(uc, nonce, api) };
}

/// Requests that arrived while a checkpoint was under way (and that it serves), besides
/// the one that started it: their nonces go into its status line too.
static JOINED: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];

fn join_request(nonce: u32) {
    if nonce != 0 {
        // More than eight at once: the others are not listed, and their `mtcp checkpoint`
        // asks again when it sees this checkpoint end without its answer.
        let _ = JOINED.iter().any(|slot| {
            slot.compare_exchange(0, nonce, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
    }
}

/// The last nonces answered (a ring, written only by the coordinator in `finish`).
static ANSWERED: [AtomicU32; 16] = [const { AtomicU32::new(0) }; 16];
static ANSWERED_NEXT: AtomicU32 = AtomicU32::new(0);

fn already_answered(nonce: u32) -> bool {
    nonce != 0 && ANSWERED.iter().any(|a| a.load(Ordering::Acquire) == nonce)
}

/// The nonces this checkpoint answers, as the status line lists them (`0` for none);
/// each is remembered as answered.
pub fn answered_nonces(first: u32) -> FmtBuf<128> {
    let mut list = FmtBuf::<128>::new();
    for n in core::iter::once(first).chain(JOINED.iter().map(|s| s.swap(0, Ordering::AcqRel))) {
        if n != 0 {
            let at = ANSWERED_NEXT.fetch_add(1, Ordering::AcqRel) as usize % ANSWERED.len();
            ANSWERED[at].store(n, Ordering::Release);
            let sep = if list.as_bytes().is_empty() { "" } else { "," };
            let _ = write!(list, "{}{}", sep, n);
        }
    }
    if list.as_bytes().is_empty() {
        list.push_bytes(b"0");
    }
    list
}

/// The phase, once it is not FINISHING: a request that arrives while the threads of the
/// last checkpoint (or a restore) are being let go is taken after that, not lost.
fn wait_while_finishing() -> u32 {
    loop {
        match PHASE.load(Ordering::Acquire) {
            FINISHING => sys::futex_wait(&PHASE, FINISHING),
            phase => return phase,
        }
    }
}

/// Claims a slot and records the calling thread in it, for the current round.
///
/// # Safety
/// Only from the checkpoint handler, with `uc` the kernel's ucontext for the calling thread.
unsafe fn claim_slot(uc: *const u8) -> Option<usize> {
    let round = ROUND.load(Ordering::Acquire);
    let i = SLOTS_USED.fetch_add(1, Ordering::AcqRel) as usize;
    if i >= MAX_THREADS {
        return None;
    }
    // SAFETY: slot i was handed to this thread alone by the fetch_add above.
    let slot = unsafe { &mut (*RT.get()).slots[i] };
    // SAFETY: `uc` is the kernel's ucontext for this thread's handler (our contract).
    unsafe { crate::capture::capture_thread(&mut slot.rec, uc) };
    slot.round = round;
    Some(i)
}

/// A non-coordinating thread: save state, wait for the coordinator to finish.
///
/// # Safety
/// Only from the checkpoint handler of a thread that is not the coordinator, with `uc`
/// the kernel's ucontext for the calling thread.
unsafe fn park(uc: *mut u8) {
    IN_PARK.fetch_add(1, Ordering::AcqRel);
    // A thread that arrives after its round was abandoned just leaves.
    if PHASE.load(Ordering::Acquire) == STOPPING {
        // No slot means too many threads: the coordinator fails the checkpoint.
        // SAFETY: in the handler with this thread's own `uc` (our contract).
        if let Some(i) = unsafe { claim_slot(uc) } {
            // SAFETY: claim_slot handed slot i to this thread alone for this round.
            let ctx = unsafe { &mut (*RT.get()).slots[i].ctx as *mut JumpContext };
            // CHECKPOINTED or RESTARTED: either way the handler returns.
            // SAFETY: ctx is this thread's own slot, writable. A restart resumes here only
            // once the image's memory, this thread's stack included, is back byte for
            // byte, so the frames above this call hold what they held when it was made.
            let _ = unsafe { arch::save_and_call(ctx, park_wait, i) };
        }
    }
    IN_PARK.fetch_sub(1, Ordering::AcqRel);
    sys::futex_wake_all(&IN_PARK);
}

extern "C" fn park_wait(i: usize) -> usize {
    // SAFETY: slot i belongs to this thread for the whole round.
    let slot = unsafe { &(*RT.get()).slots[i] };
    let release = RELEASE.load(Ordering::Acquire);
    // Read after `release`: if the round is abandoned after this check, RELEASE has
    // moved on by the time we wait, and the wait ends at once. A thread that claimed its
    // slot in a round already abandoned leaves too (it is signalled again).
    if PHASE.load(Ordering::Acquire) != STOPPING || ROUND.load(Ordering::Acquire) != slot.round {
        return CHECKPOINTED;
    }
    slot.parked.store(slot.round, Ordering::Release);
    PARKED.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&PARKED);
    while RELEASE.load(Ordering::Acquire) == release {
        sys::futex_wait(&RELEASE, release);
    }
    CHECKPOINTED
}

/// How an image was written.
enum Written {
    /// In place, while every thread was parked.
    InPlace,
    /// By a forked writer, which publishes the result itself.
    Forked,
}

/// The coordinator's part: stop every thread, write the image (or start its writer),
/// let them go on. `api`: mtcp_checkpoint() asked, and waits for the image.
///
/// # Safety
/// Only from the handler, by the thread that moved PHASE from IDLE to STOPPING, with `uc`
/// its signal frame.
unsafe fn coordinate(uc: *mut u8, nonce: u32, api: bool) {
    // Checkpoints never overlap: the last one's writer finishes first.
    let _ = crate::snapshot::wait_for_writer();
    let rt = RT.get();
    // Everything heavy runs on a scratch stack: this thread's own may be tiny.
    let (mut arena, top) = match writer::map_scratch() {
        Ok(s) => s,
        Err(msg) => {
            // SAFETY: the coordinator (our contract). It has signalled no thread, but a
            // thread that took an outside request meanwhile may have parked: finish lets
            // it go too.
            unsafe { finish(Err(msg), nonce, api) };
            return;
        }
    };
    // SAFETY: top ends the writer stack just carved out of this checkpoint's own arena,
    // which no other code knows of; stop_all runs in the coordinator (our contract) with
    // its own signal frame `uc`.
    let stopped = unsafe { on_stack(top, || stop_all(uc)) };
    let me = match stopped {
        Ok(me) => me,
        Err(msg) => {
            // SAFETY: the scratch stack is free again (the call on it returned); finish
            // runs in the coordinator (our contract) and lets the stopped threads go.
            unsafe { on_stack(top, || finish(Err(msg), nonce, api)) };
            arena.unmap();
            return;
        }
    };
    // SAFETY: every other thread is parked (stop_all), so the coordinator has RT to
    // itself; slot `me` is its own.
    let ctx = unsafe {
        (*rt).slots[me].rec.flags |= THREAD_COORDINATOR;
        &mut (*rt).slots[me].ctx as *mut JumpContext
    };
    // On this thread's own stack: a restart resumes right here.
    let mut job = WriteJob {
        arena: &mut arena,
        stack_top: top,
        nonce,
        result: Ok(Written::InPlace),
    };
    // SAFETY: ctx is the coordinator's own slot, writable; `job` outlives the call. A
    // restart resumes here only once this thread's stack (saved with the image) is back
    // byte for byte, so the frames above this call hold what they held when it was made.
    let outcome = unsafe { arch::save_and_call(ctx, write_in_place, &mut job as *mut WriteJob as usize) };
    if outcome == RESTARTED {
        // The restore code did everything; the scratch memory is not part of this process.
        return;
    }
    let result = core::mem::replace(&mut job.result, Ok(Written::InPlace));
    // SAFETY: the scratch stack is free again (write_in_place's call on it returned);
    // finish runs in the coordinator (our contract) and lets the parked threads go.
    unsafe { on_stack(top, || finish(result, nonce, api)) };
    arena.unmap();
}

/// Stops every thread, retrying rounds as needed; returns the coordinator's slot.
///
/// # Safety
/// Only the coordinator, with `uc` its signal frame.
unsafe fn stop_all(uc: *mut u8) -> Result<usize, FailMessage> {
    let started = sys::monotonic_ns();
    let mut round = 0u64;
    loop {
        // A new round: no slot parked before counts in it.
        ROUND.fetch_add(1, Ordering::AcqRel);
        // SAFETY: still in the coordinator's handler, with its own `uc` (our contract).
        let me = unsafe { claim_slot(uc) }.ok_or_else(too_many_threads)?;
        // SAFETY: the coordinator (our contract).
        match unsafe { stop_other_threads(started) } {
            Ok(()) => return Ok(me),
            Err(Stop::Retry) => {
                // SAFETY: the coordinator (our contract).
                unsafe { abandon_round() };
                round += 1;
                // Let the lock holders run so the stuck thread gets past its lock.
                let pause = AtomicU32::new(0);
                sys::futex_wait_timeout(&pause, 0, (round * 2_000_000).min(50_000_000));
                PHASE.store(STOPPING, Ordering::Release);
            }
            Err(Stop::Fail(msg)) => return Err(msg),
        }
    }
}

/// Runs `f` on the stack ending at `top` and returns its result here.
///
/// # Safety
/// `top` must be the end of memory nothing else uses while `f` runs.
unsafe fn on_stack<R, F: FnOnce() -> R>(top: usize, f: F) -> R {
    struct Call<R, F> {
        f: Option<F>,
        r: Option<R>,
    }
    extern "C" fn trampoline<R, F: FnOnce() -> R>(p: usize) -> usize {
        // SAFETY: p is the &mut Call that on_stack passed, alive across this call.
        let call = unsafe { &mut *(p as *mut Call<R, F>) };
        if let Some(f) = call.f.take() {
            call.r = Some(f());
        }
        0
    }
    let mut call = Call { f: Some(f), r: None };
    // SAFETY: top ends memory that nothing else uses while f runs (our contract); the
    // trampoline's argument is `call`, which outlives the call.
    unsafe { arch::call_on_stack(top, trampoline::<R, F>, &mut call as *mut Call<R, F> as usize) };
    match call.r {
        Some(r) => r,
        None => unreachable_on_stack(),
    }
}

#[cold]
fn unreachable_on_stack() -> ! {
    // The trampoline always stores a result.
    mtcp_core::eprint_line!("mtcp: internal error: a call on the scratch stack returned nothing");
    sys::exit_group(70)
}

/// What the coordinator hands to `write_in_place` through `save_and_call`'s argument.
struct WriteJob {
    arena: *mut Arena,
    stack_top: usize,
    nonce: u32,
    result: Result<Written, FailMessage>,
}

extern "C" fn write_in_place(job: usize) -> usize {
    // SAFETY: only the coordinator runs this, while every other thread is parked, so RT
    // is its own; job is the coordinator's WriteJob, alive across this call, and its
    // stack_top ends the scratch stack, unused since stop_all's call on it returned.
    unsafe {
        let job = &mut *(job as *mut WriteJob);
        let arena = &mut *job.arena;
        let nonce = job.nonce;
        job.result = on_stack(job.stack_top, || write_parked_process(&mut *RT.get(), arena, nonce));
    }
    CHECKPOINTED
}

/// The last facts only the coordinator can gather, then the image: from a forked writer
/// where that works (see `snapshot`), else in place.
///
/// # Safety
/// Only the coordinator, while every other thread is parked.
unsafe fn write_parked_process(rt: &mut Runtime, arena: &mut Arena, nonce: u32) -> Result<Written, FailMessage> {
    let count = SLOTS_USED.load(Ordering::Acquire) as usize;
    rt.thread_count = count.min(MAX_THREADS);
    let pid = sys::getpid();
    if rt.real_pid != pid {
        // A forked child checkpoints as a computation of its own.
        rt.vpid = pid;
        rt.real_pid = pid;
        rt.generation = 0;
    }
    // Signals waiting to be delivered are kernel state too: note them, to send them
    // again at restart (the checkpoint signal itself excepted).
    // SAFETY: CONFIG is written only by the constructor, before the handler is installed.
    let ours = 1u64 << (unsafe { (*CONFIG.get()).signal } - 1);
    rt.process.pending = crate::tasks::thread_mask(pid, b"ShdPnd:").unwrap_or(0) & !ours;
    for slot in rt.slots[..rt.thread_count].iter_mut() {
        slot.rec.pending = crate::tasks::thread_mask(slot.rec.tid as u32, b"SigPnd:").unwrap_or(0) & !ours;
        if slot.rec.tid == pid as u64 {
            slot.rec.flags |= THREAD_MAIN;
        }
    }
    let unsaved = Unsaved {
        restore_entry: crate::restore::restore_entry as *const () as usize,
        restore_stack: crate::restore::restore_stack_range(),
    };
    let mut prepared = writer::prepare(rt, arena, &unsaved)?;
    if crate::snapshot::refusal(&prepared).is_none() {
        // The writer answers these requests, in status line status_seq + 1.
        let nonces = answered_nonces(nonce);
        let seq = rt.status_seq + 1;
        let path = prepared.image_path(rt);
        // SAFETY: the coordinator, every other thread parked, on its scratch stack.
        match unsafe { crate::snapshot::start(rt, arena, &mut prepared, seq, &nonces) } {
            Ok(()) => {
                rt.status_seq = seq;
                let n = path.as_bytes().len().min(rt.image_path.len() - 1);
                rt.image_path[..n].copy_from_slice(&path.as_bytes()[..n]);
                rt.image_path_len = n;
                return Ok(Written::Forked);
            }
            Err(_) => {
                // No process could be made: write in place. The nonces are answered
                // below, with the joined ones already taken: give them back.
                for n in nonces.as_bytes().split(|&c| c == b',').filter_map(mtcp_core::maps::dec) {
                    if n as u32 != nonce {
                        join_request(n as u32);
                    }
                }
            }
        }
    }
    writer::write_prepared(rt, arena, &mut prepared, false).map(|()| Written::InPlace)
}

fn too_many_threads() -> FailMessage {
    let mut m = FailMessage::new();
    let _ = write!(m, "the process has more than {} threads", MAX_THREADS);
    m
}

/// Why a stop round ended without every thread parked.
// Only ever returned, never stored, and there is no allocator to box the message with.
#[allow(clippy::large_enum_variant)]
enum Stop {
    /// A thread cannot take the signal now; let everyone go and try again.
    Retry,
    Fail(FailMessage),
}

/// Releases the parked threads of an abandoned round and waits until all have left,
/// so that the next round starts with no thread holding an old slot.
///
/// # Safety
/// Only the coordinator calls this.
unsafe fn abandon_round() {
    PHASE.store(RETRYING, Ordering::Release);
    release_threads();
    let deadline = sys::monotonic_ns() + 1_000_000_000;
    loop {
        let inside = IN_PARK.load(Ordering::Acquire);
        if inside == 0 || sys::monotonic_ns() > deadline {
            break;
        }
        sys::futex_wait_timeout(&IN_PARK, inside, 1_000_000);
    }
    SLOTS_USED.store(0, Ordering::Release);
    PARKED.store(0, Ordering::Release);
}

/// A thread that keeps the signal blocked this long fails the checkpoint.
const BLOCKED_LIMIT_NS: u64 = 5_000_000_000;
/// How long a round waits for a thread that blocks the signal before starting over.
const ROUND_PATIENCE_NS: u64 = 50_000_000;

/// How long a thread that blocks the signal while running gets to reach its handler
/// on its own (it may be in our handler already) before the helper is sent for it.
const FORCE_PATIENCE_NS: u64 = 20_000_000;
/// How often a thread may be found about to take one of the program's own signals
/// before it is simply signalled.
const BUSY_LIMIT: u32 = 20;

/// The threads a stop round has asked to stop, and how.
struct Requests {
    /// Signalled or reached by the helper. Past its length the record overflows, and
    /// every thread not parked is asked again now and then.
    asked: [u32; 256],
    count: usize,
    /// Reached by the helper (it is not sent for the same thread twice in a round).
    forced: [u32; 256],
    nforced: usize,
    /// Whether the helper may be used, and why not once it failed.
    force_ok: bool,
    force_error: Option<Errno>,
    busy: u32,
}

impl Requests {
    fn asked(&self, tid: u32) -> bool {
        self.asked[..self.count.min(self.asked.len())].contains(&tid)
    }

    fn note(&mut self, tid: u32) {
        if self.count < self.asked.len() {
            self.asked[self.count] = tid;
        }
        self.count += 1;
    }

    fn forced(&self, tid: u32) -> bool {
        self.forced[..self.nforced.min(self.forced.len())].contains(&tid)
    }

    fn note_forced(&mut self, tid: u32) {
        self.note(tid);
        if self.nforced < self.forced.len() {
            self.forced[self.nforced] = tid;
        }
        self.nforced += 1;
    }
}

/// Asks every thread not yet parked to stop until a scan of /proc/self/task finds only
/// parked threads. Threads that exit meanwhile are simply not found again.
///
/// Every thread is reached through the helper process (force.rs), so that the system
/// call it sleeps in, or is about to enter, is not cut short with EINTR, and its mask
/// does not keep the signal out. Without the helper (ptrace not allowed: the
/// process is traced already, or Yama forbids it), such a thread is signalled; one
/// that blocks the signal is most often one of glibc's, exiting or being created, that
/// waits for a lock a parked thread holds: the round is abandoned so that the lock can
/// be released, and only a thread that stays blocked for BLOCKED_LIMIT_NS fails it.
///
/// # Safety
/// Only the coordinator calls this.
unsafe fn stop_other_threads(checkpoint_started: u64) -> Result<(), Stop> {
    let pid = sys::getpid();
    // SAFETY: CONFIG is written only by the constructor, before the handler is installed.
    let (sig, quiet) = unsafe { ((*CONFIG.get()).signal, (*CONFIG.get()).quiet_delivery) };
    let started = sys::monotonic_ns();
    let mut req = Requests {
        asked: [0; 256],
        count: 0,
        forced: [0; 256],
        nforced: 0,
        force_ok: quiet,
        force_error: None,
        busy: 0,
    };
    let mut batch = crate::force::Batch::new(sig);
    let mut warned_at = 0u64;
    loop {
        let mut missing = 0u32;
        let mut blocked_tid = 0u32;
        let waited = sys::monotonic_ns() - started;
        batch.clear();
        let scan = crate::tasks::for_each_task(|tid| {
            // SAFETY: the coordinator, while it stops threads (our contract).
            if unsafe { is_parked(tid) } {
                return;
            }
            missing += 1;
            if !req.asked(tid) {
                if req.force_ok {
                    // Even a thread running now may enter a system call before a plain
                    // signal reaches it. A full batch leaves it for the next scan.
                    batch.push(tid);
                    return;
                }
                let _ = sys::tgkill(pid, tid, sig);
                req.note(tid);
            } else if crate::tasks::blocks_signal(tid, sig) {
                if req.force_ok && !req.forced(tid) && waited > FORCE_PATIENCE_NS && batch.push(tid) {
                    return;
                }
                blocked_tid = tid;
            }
        });
        if let Err(e) = scan {
            let mut m = FailMessage::new();
            let _ = write!(m, "cannot list threads in /proc/self/task: {}", ErrnoName(e));
            return Err(Stop::Fail(m));
        }
        if batch.count > 0 {
            // SAFETY: the coordinator, in its handler with every signal blocked.
            unsafe { reach_batch(&mut batch, &mut req, pid, sig) };
            continue;
        }
        if SLOTS_USED.load(Ordering::Acquire) as usize > MAX_THREADS {
            return Err(Stop::Fail(too_many_threads()));
        }
        if missing == 0 {
            return Ok(());
        }
        let now = sys::monotonic_ns();
        let waited = now - started;
        if blocked_tid != 0 && now - checkpoint_started > BLOCKED_LIMIT_NS {
            let mut m = FailMessage::new();
            let _ = write!(m, "thread {} blocks the checkpoint signal {}", blocked_tid, sig);
            match req.force_error {
                Some(e) => {
                    let _ = write!(m, ", and ptrace cannot reach it: {}", ErrnoName(e));
                    if e == Errno::EPERM {
                        let _ = write!(m, " (is the process traced, or ptrace restricted?)");
                    }
                }
                None if !quiet => {
                    let _ = write!(m, " (MTCP_PTRACE=0 keeps ptrace from reaching it)");
                }
                None => {}
            }
            return Err(Stop::Fail(m));
        }
        if blocked_tid != 0 && waited > ROUND_PATIENCE_NS && !req.force_ok {
            return Err(Stop::Retry);
        }
        if waited > 60_000_000_000 {
            let mut m = FailMessage::new();
            let _ = write!(m, "{} thread(s) did not stop within 60 s", missing);
            return Err(Stop::Fail(m));
        }
        if req.count > req.asked.len() && waited > warned_at + 1_000_000_000 {
            // Our record of asked threads overflowed: ask again now and then.
            req.count = 0;
            req.nforced = 0;
            warned_at = waited;
        }
        let parked = PARKED.load(Ordering::Acquire);
        sys::futex_wait_timeout(&PARKED, parked, 5_000_000);
    }
}

/// Sends the helper to the threads of `batch` and records what became of each; a
/// thread it could not reach is signalled instead, and the helper is not used again.
///
/// # Safety
/// Only the coordinator, in its handler.
unsafe fn reach_batch(batch: &mut crate::force::Batch, req: &mut Requests, pid: u32, sig: u32) {
    use crate::force::Outcome;
    // SAFETY: the coordinator, in its handler (our contract).
    if let Err(e) = unsafe { crate::force::deliver(batch) } {
        req.force_ok = false;
        req.force_error = Some(e);
    }
    for i in 0..batch.count {
        let tid = batch.tids[i];
        match batch.outcome[i] {
            Outcome::Sent => req.note_forced(tid),
            Outcome::Gone => req.note(tid),
            Outcome::Busy if req.busy < BUSY_LIMIT => req.busy += 1,
            Outcome::Pending | Outcome::Busy | Outcome::Failed(_) => {
                // A helper that died before its work was done (a seccomp filter can kill
                // it) is not sent again.
                let broken = match batch.outcome[i] {
                    Outcome::Failed(e) if e != Errno::ESRCH => Some(e),
                    Outcome::Pending => Some(Errno::ECHILD),
                    _ => None,
                };
                if let Some(e) = broken {
                    req.force_ok = false;
                    req.force_error = Some(e);
                }
                let _ = sys::tgkill(pid, tid, sig);
                req.note(tid);
            }
        }
    }
}

/// # Safety
/// Only while a checkpoint is stopping threads.
unsafe fn is_parked(tid: u32) -> bool {
    if tid == COORDINATOR.load(Ordering::Acquire) {
        return true;
    }
    let used = (SLOTS_USED.load(Ordering::Acquire) as usize).min(MAX_THREADS);
    let round = ROUND.load(Ordering::Acquire);
    // SAFETY: the coordinator only reads here, and only slots below SLOTS_USED. A slot's
    // `rec` is read only once its `parked` (atomic, Acquire) holds this round: its owner
    // wrote `rec` before storing that (Release), and writes it no more this round.
    let rt = unsafe { &*RT.get() };
    rt.slots[..used]
        .iter()
        .any(|s| s.parked.load(Ordering::Acquire) == round && s.rec.tid == tid as u64)
}

fn release_threads() {
    RELEASE.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&RELEASE);
}

/// Ends a checkpoint: lets the parked threads go, publishes the result and returns to
/// IDLE. Requests that arrive meanwhile wait for IDLE (FINISHING): a thread released
/// now must not park in this round, which nobody would end.
///
/// # Safety
/// Only the coordinator.
unsafe fn finish(result: Result<Written, FailMessage>, nonce: u32, api: bool) {
    PHASE.store(FINISHING, Ordering::Release);
    release_threads();
    crate::force::forget_unblocked();
    // SAFETY: the coordinator (our contract), with the other threads released; of RT it
    // uses only status_seq and the image path, which only the coordinator and the
    // restore code change (mtcp_image_path writes just the NUL after the path).
    let rt = unsafe { &mut *RT.get() };
    if let Ok(Written::Forked) = &result {
        // The writer publishes; mtcp_checkpoint() returns once it is done. Requests that
        // arrive meanwhile wait (FINISHING), so only we wait for the writer.
        let done = if api { crate::snapshot::wait_for_writer() } else { None };
        let code = if done == Some(false) {
            -5 /* EIO */
        } else {
            CHECKPOINTED as i32
        };
        LAST_RESULT.store(code, Ordering::Release);
        end_phase();
        return;
    }
    rt.status_seq += 1;
    match &result {
        Ok(_) => {
            LAST_RESULT.store(CHECKPOINTED as i32, Ordering::Release);
            let nonces = answered_nonces(nonce);
            crate::status::publish(
                rt.status_seq,
                nonces.as_bytes(),
                true,
                &rt.image_path[..rt.image_path_len],
            );
        }
        Err(msg) => {
            LAST_RESULT.store(-5 /* EIO */, Ordering::Release);
            mtcp_core::eprint_line!("mtcp: checkpoint failed: {}", Lossy(msg.as_bytes()));
            let nonces = answered_nonces(nonce);
            crate::status::publish(rt.status_seq, nonces.as_bytes(), false, msg.as_bytes());
        }
    }
    end_phase();
}

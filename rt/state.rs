//! The runtime's shared state: the phase of the checkpoint protocol, one slot per
//! thread, and the records saved with the image. The coordinator (`checkpoint`), the
//! writer and the restore code all work on it; none of them owns it.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use mtcp_core::arch::JumpContext;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::global::Global;
use mtcp_core::image::{ProcessRecord, ThreadRecord};

pub const MAX_THREADS: usize = 4096;

/// What `save_and_call` returns in a thread.
pub const CHECKPOINTED: usize = 1;
pub const RESTARTED: usize = 2;

/// PHASE values.
pub const IDLE: u32 = 0;
pub const STOPPING: u32 = 1;
/// A stop round was abandoned (a thread could not take the signal, typically because it
/// waits for a lock a parked thread holds); threads leave, then the coordinator retries.
pub const RETRYING: u32 = 2;
/// The threads are being let go (after a checkpoint, or during a restore while threads
/// are recreated): a new request waits in its handler until the phase is IDLE again,
/// rather than park in a round that is over or be lost.
pub const FINISHING: u32 = 3;

pub static PHASE: AtomicU32 = AtomicU32::new(IDLE);
pub static COORDINATOR: AtomicU32 = AtomicU32::new(0);
/// The current stop round, bumped by the coordinator before each round (never reset, so a
/// slot's `parked` left from an earlier round or checkpoint never matches it).
pub static ROUND: AtomicU32 = AtomicU32::new(0);
/// Slots handed out in this checkpoint.
pub static SLOTS_USED: AtomicU32 = AtomicU32::new(0);
/// Threads parked so far (a futex word the coordinator waits on).
pub static PARKED: AtomicU32 = AtomicU32::new(0);
/// Bumped to let parked threads go (a futex word they wait on).
pub static RELEASE: AtomicU32 = AtomicU32::new(0);
/// Threads inside `park` (a futex word the coordinator waits on between rounds).
pub static IN_PARK: AtomicU32 = AtomicU32::new(0);
/// Set by mtcp_checkpoint() to the tid that asked, so its own tgkill counts as a request.
pub static API_REQUEST: AtomicU32 = AtomicU32::new(0);
/// Result of the last checkpoint as mtcp_checkpoint() reports it.
pub static LAST_RESULT: AtomicI32 = AtomicI32::new(0);

pub struct Slot {
    pub rec: ThreadRecord,
    pub ctx: JumpContext,
    /// The round in which the slot's thread parked (see ROUND); written by that thread
    /// after `rec` and `ctx`, so a coordinator that reads the current round here may read
    /// them.
    pub parked: AtomicU32,
    /// The round in which the thread claimed the slot (written by that thread only).
    pub round: u32,
    /// The thread's id after a restart (set by the restore code).
    pub new_tid: u32,
}

/// State that is saved with the image and read back by the restore code.
pub struct Runtime {
    pub process: ProcessRecord,
    pub slots: [Slot; MAX_THREADS],
    /// Threads in the image (set by the coordinator once all are parked).
    pub thread_count: usize,
    /// Identity of the computation across restarts (see ProcessRecord::vpid).
    pub vpid: u32,
    /// The pid this runtime last started or was restored in; a different getpid()
    /// means we are in a forked child.
    pub real_pid: u32,
    pub generation: u64,
    pub image_path: [u8; 4096],
    pub image_path_len: usize,
    /// The working directory at the last checkpoint, returned to at restart.
    pub cwd: [u8; 4096],
    pub cwd_len: usize,
    pub status_seq: u64,
    /// The last restart put the process in namespaces made for it (set by the restore).
    pub in_namespace: bool,
}

// A const, not a static: it only initializes the array below, one fresh copy per slot.
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    rec: ThreadRecord::zeroed(),
    ctx: JumpContext::zeroed(),
    parked: AtomicU32::new(0),
    round: 0,
    new_tid: 0,
};

pub static RT: Global<Runtime> = Global::new(Runtime {
    process: ProcessRecord::zeroed(),
    slots: [EMPTY_SLOT; MAX_THREADS],
    thread_count: 0,
    vpid: 0,
    real_pid: 0,
    generation: 0,
    image_path: [0; 4096],
    image_path_len: 0,
    cwd: [0; 4096],
    in_namespace: false,
    cwd_len: 0,
    status_seq: 0,
});

/// Why a checkpoint failed, as one line for the status file.
pub type FailMessage = FmtBuf<512>;

/// Back to IDLE, waking requests that waited for it; also used by the restore code.
pub fn end_phase() {
    SLOTS_USED.store(0, Ordering::Release);
    PARKED.store(0, Ordering::Release);
    COORDINATOR.store(0, Ordering::Release);
    PHASE.store(IDLE, Ordering::Release);
    mtcp_core::sys::futex_wake_all(&PHASE);
}

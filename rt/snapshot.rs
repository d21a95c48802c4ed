//! Forked checkpoints: once every thread is parked and its state captured, a writer
//! process made with fork holds a copy-on-write snapshot of the program's memory and
//! writes the image, while the program's threads go on at once.
//!
//! What the writer must never do or be seen doing:
//! - be the program's child: it is made by an intermediate process (sharing our memory,
//!   CLONE_VFORK, exit signal 0) that forks it and exits at once; the coordinator reaps
//!   the intermediate with `__WALL` while every thread of the program is still parked,
//!   so no `wait()` of the program can see either. The writer is then an orphan,
//!   reparented to init or the nearest subreaper; where that would be the program
//!   itself (a subreaper, or pid 1 of its namespace), the checkpoint is written in
//!   place instead.
//! - signal the program: its exit signal goes to its new parent, never to us;
//! - keep the program's ids in use: it leaves the program's session and process group
//!   (whose ids are the program's pid), so a restart may take them back at once;
//! - hold the program's files: it starts on the program's own descriptor table
//!   (CLONE_FILES, no new references) and its first act is to leave it for an empty
//!   one, so no lock, pipe end or socket stays open because of it, and no shared offset
//!   moves;
//! - miss memory: regions that are not in a fork (MADV_DONTFORK), zeros there
//!   (MADV_WIPEONFORK) or shared with the program (which goes on changing them) are
//!   copied aside before the threads go on;
//! - cost the program memory without bound: every page the program writes while the
//!   writer holds it is copied; the writer gives back each page once written
//!   (MADV_DONTNEED), so only pages written before the writer reached them are copied,
//!   at most the size of the image.
//!
//! The writer publishes the result in the program's status file itself (so that
//! `mtcp checkpoint` answers as soon as the image is durable) and in a mailbox page
//! shared with the program, which the next checkpoint reads (and waits for: checkpoints
//! never overlap).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use syscalls::{Errno, Sysno};

use mtcp_core::arena::Arena;
use mtcp_core::fmt::FmtBuf;
use mtcp_core::sys;

use crate::state::{FailMessage, Runtime};
use crate::writer::{self, Prepared};

/// Bytes that may be copied aside for a forked writer; more, and the checkpoint is
/// written in place (the copy would make the pause as long as a write).
#[cfg(target_pointer_width = "64")]
const ASIDE_LIMIT: usize = 256 << 20;
#[cfg(target_pointer_width = "32")]
const ASIDE_LIMIT: usize = 32 << 20;
const STACK: usize = 256 << 10;
const WCLONE_ALL: usize = 0x4000_0000; // __WALL
const LINE: usize = 3072;

/// Shared between the program and its writer (one page, MAP_SHARED).
#[repr(C)]
struct Mailbox {
    /// Set to 1 by the writer when it is done (a futex word).
    done: AtomicU32,
    ok: AtomicU32,
    /// The writer's pid, set by the intermediate process.
    writer: AtomicU32,
    line_len: AtomicU32,
    /// The status line the writer published.
    line: [u8; LINE],
}
static_assertions::const_assert!(core::mem::size_of::<Mailbox>() <= 4096);

/// The mailbox of the writer that may still run (0: none). Only the coordinator
/// touches it.
static WRITER: AtomicUsize = AtomicUsize::new(0);

/// Why this checkpoint cannot be forked, if it cannot.
pub fn refusal(p: &Prepared) -> Option<&'static str> {
    // SAFETY: the configuration is written only before the first checkpoint.
    if unsafe { (*crate::config::CONFIG.get()).blocking } {
        return Some("MTCP_BLOCKING");
    }
    if sys::getpid() == 1 || sys::is_child_subreaper() {
        // The orphaned writer would come back to the program as its child.
        return Some("the program adopts orphans");
    }
    if p.aside_bytes() > ASIDE_LIMIT {
        return Some("too much memory to copy aside");
    }
    None
}

/// What the intermediate process and the writer work from (in the coordinator's
/// scratch memory, which the writer gets a copy of).
struct Job {
    rt: *mut Runtime,
    arena: *mut Arena,
    prepared: *mut Prepared,
    mailbox: *mut Mailbox,
    program: mtcp_core::protocol::ProcName,
    seq: u64,
    nonces: FmtBuf<128>,
    fork_error: Option<Errno>,
}

/// Starts a writer for the image `prepared` planned, answering `nonces` with status
/// line `seq`; the caller's threads may go on once this returns Ok. Errors: the
/// process could not be made (EAGAIN, ENOMEM): write in place instead.
///
/// # Safety
/// Only the coordinator, with every other thread parked, on its scratch stack.
pub unsafe fn start(
    rt: &mut Runtime,
    arena: &mut Arena,
    prepared: &mut Prepared,
    seq: u64,
    answers: &FmtBuf<128>,
) -> Result<(), FailMessage> {
    let mut nonces = FmtBuf::<128>::new();
    nonces.push_bytes(answers.as_bytes());
    let nomem = |e| writer_fail("cannot start the image writer", e);
    let aside_len = prepared.aside_bytes();
    let aside = if aside_len > 0 {
        sys::map_anon(aside_len).map_err(nomem)?
    } else {
        0
    };
    if aside != 0 {
        // SAFETY: a fresh mapping of aside_len bytes; every other thread is parked (our
        // contract).
        let copied = unsafe { prepared.copy_aside(core::slice::from_raw_parts_mut(aside as *mut u8, aside_len)) };
        if let Err(m) = copied {
            // SAFETY: our own mapping, unused.
            let _ = unsafe { sys::munmap(aside, aside_len) };
            return Err(m);
        }
    }
    let result = (|| {
        // SAFETY: without MAP_FIXED the kernel picks unused address space.
        let mailbox = unsafe {
            sys::mmap(
                0,
                4096,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_SHARED | sys::MAP_ANONYMOUS,
                -1,
                0,
            )
        }
        .map_err(nomem)?;
        let stack = arena.alloc::<u8>(STACK).map_err(nomem)?;
        let mut job = Job {
            rt,
            arena,
            prepared,
            mailbox: mailbox as *mut Mailbox,
            program: sys::own_proc_name(),
            seq,
            nonces,
            fork_error: None,
        };
        let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::CLONE_FILES | sys::CLONE_UNTRACED;
        // SAFETY: the intermediate runs `intermediate` on its own stack in our memory
        // and touches only `job`; CLONE_VFORK keeps us here until it has exited.
        let made = unsafe {
            sys::clone_thread(
                flags,
                stack.as_ptr() as usize + STACK,
                0,
                0,
                0,
                intermediate,
                &mut job as *mut Job as usize,
            )
        };
        if let Ok(pid) = made {
            // It has exited (CLONE_VFORK); every thread of ours is parked, so nothing
            // else can have reaped it.
            // SAFETY: wait4 with a null status pointer writes nothing.
            let _ = unsafe { syscalls::syscall4(Sysno::wait4, pid as usize, 0, WCLONE_ALL, 0) };
        }
        // SAFETY: the mailbox is ours, mapped above.
        let writer = unsafe { (*job.mailbox).writer.load(Ordering::Acquire) };
        if writer == 0 {
            // SAFETY: ours, and no writer has it.
            let _ = unsafe { sys::munmap(mailbox, 4096) };
            return Err(nomem(made.err().or(job.fork_error).unwrap_or(Errno::EAGAIN)));
        }
        WRITER.store(mailbox, Ordering::Release);
        Ok(())
    })();
    if aside != 0 {
        // The writer has its own copy.
        // SAFETY: our own mapping; nothing of ours refers to it any more.
        let _ = unsafe { sys::munmap(aside, aside_len) };
    }
    result
}

fn writer_fail(what: &str, e: Errno) -> FailMessage {
    use core::fmt::Write;
    let mut m = FailMessage::new();
    let _ = write!(m, "{}: {}", what, mtcp_core::fmt::ErrnoName(e));
    m
}

/// The intermediate process: forks the writer and exits.
///
/// # Safety
/// Started by `start` only, with `arg` its Job.
unsafe extern "C" fn intermediate(arg: usize) -> ! {
    // SAFETY: `start` keeps the job alive until this process has exited (CLONE_VFORK).
    let job = unsafe { &mut *(arg as *mut Job) };
    match sys::fork_sharing_files() {
        // SAFETY: the writer process: a copy of the parked program's memory, alone.
        Ok(0) => unsafe { writer_main(job) },
        // SAFETY: the mailbox is mapped for as long as `start` runs.
        Ok(pid) => unsafe { (*job.mailbox).writer.store(pid, Ordering::Release) },
        Err(e) => job.fork_error = Some(e),
    }
    // SAFETY: exit ends this intermediate process only (it is a process of its own).
    unsafe {
        let _ = syscalls::syscall1(Sysno::exit, 0);
    }
    sys::exit_group(0)
}

/// The writer: leaves the program's descriptors, writes the image, publishes the
/// result, exits.
///
/// # Safety
/// Only in the writer process, right after the fork.
unsafe fn writer_main(job: &mut Job) -> ! {
    // A session and process group of its own: the program's ids (its pid is its group's
    // and perhaps its session's) must be free once the program is gone, even while the
    // writer finishes, and signals meant for the program's group are not the writer's.
    // SAFETY: setsid touches no memory; it cannot fail here (we lead no group).
    let _ = unsafe { syscalls::syscall0(Sysno::setsid) };
    if sys::close_all_unshared().is_err() {
        // A kernel before close_range: a table of our own first, then close its copies.
        // SAFETY: unshare touches no memory.
        if unsafe { syscalls::syscall1(Sysno::unshare, sys::CLONE_FILES) }.is_err() {
            // Still the program's own table: touch nothing of it.
            sys::exit_group(1);
        }
        for fd in 0..65536 {
            // SAFETY: close touches no memory; every descriptor here is our copy.
            let _ = unsafe { syscalls::syscall1(Sysno::close, fd) };
        }
    }
    // 0, 1 and 2 taken, so that no message meant for stderr can land in a file of ours.
    for _ in 0..3 {
        if let Ok(null) = sys::open(b"/dev/null", sys::O_RDWR, 0) {
            let _ = null.into_raw();
        }
    }
    sys::set_thread_name(b"mtcp-writer\0\0\0\0\0");
    // SAFETY: this process's own copies, used by nobody else.
    let (rt, arena, prepared, mailbox) = unsafe { (&mut *job.rt, &mut *job.arena, &mut *job.prepared, &*job.mailbox) };
    let result = writer::write_prepared(rt, arena, prepared, true);
    let line = match &result {
        Ok(()) => crate::status::publish_for(
            job.program,
            job.seq,
            job.nonces.as_bytes(),
            true,
            &rt.image_path[..rt.image_path_len],
        ),
        Err(msg) => crate::status::publish_for(job.program, job.seq, job.nonces.as_bytes(), false, msg.as_bytes()),
    };
    let n = line.len().min(LINE);
    // SAFETY: the mailbox page is shared with the program, which reads it only once
    // `done` is set; nobody else writes it.
    unsafe {
        let l = core::ptr::addr_of!(mailbox.line) as *mut u8;
        core::ptr::copy_nonoverlapping(line.as_ptr(), l, n);
    }
    mailbox.line_len.store(n as u32, Ordering::Release);
    mailbox.ok.store(result.is_ok() as u32, Ordering::Release);
    mailbox.done.store(1, Ordering::Release);
    sys::futex_wake_all(&mailbox.done);
    sys::exit_group(0)
}

/// Waits for the writer of the last checkpoint, if one may still run, and takes its
/// status line into this process's history. Some(whether it wrote the image), None if
/// there was none. Only the coordinator calls this.
pub fn wait_for_writer() -> Option<bool> {
    let m = WRITER.swap(0, Ordering::AcqRel);
    if m == 0 {
        return None;
    }
    // SAFETY: WRITER only ever holds a mailbox this process mapped and has not unmapped.
    let mb = unsafe { &*(m as *const Mailbox) };
    let writer = mb.writer.load(Ordering::Acquire);
    while mb.done.load(Ordering::Acquire) == 0 && sys::id_in_use(writer) {
        sys::futex_wait_timeout(&mb.done, 0, 20_000_000);
    }
    let done = mb.done.load(Ordering::Acquire) == 1;
    if done {
        let n = (mb.line_len.load(Ordering::Acquire) as usize).min(LINE);
        crate::status::remember(&mb.line[..n]);
    }
    let ok = done && mb.ok.load(Ordering::Acquire) == 1;
    // SAFETY: the writer is done with it (or gone), and only we knew its address.
    let _ = unsafe { sys::munmap(m, 4096) };
    Some(ok)
}

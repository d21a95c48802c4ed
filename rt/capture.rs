//! Reading the process-wide and per-thread kernel state that is not in memory.

use mtcp_core::arch;
use mtcp_core::image::{
    MmFields, ProcessRecord, SigActionRecord, ThreadRecord, NSIG, THREAD_AFFINITY, THREAD_RSEQ, THREAD_SCHED,
};
use mtcp_core::maps::dec;
use mtcp_core::sys::{self, KernelSigaction};

/// Fills the calling thread's record. `uc` is its signal frame.
///
/// # Safety
/// `uc` must be the ucontext the kernel passed to this thread's SA_SIGINFO handler.
pub unsafe fn capture_thread(rec: &mut ThreadRecord, uc: *const u8) {
    *rec = ThreadRecord::zeroed();
    rec.tid = sys::gettid() as u64;
    let (base, aux) = arch::read_tls();
    rec.tls_base = base;
    rec.tls_aux = aux;
    rec.clear_child_tid = sys::tid_address() as u64;
    let (head, len) = sys::get_robust_list();
    rec.robust_list = head as u64;
    rec.robust_list_len = len as u64;
    let (ss_sp, ss_flags, ss_size) = sys::get_altstack();
    rec.altstack_sp = ss_sp as u64;
    rec.altstack_flags = ss_flags;
    rec.altstack_size = ss_size as u64;
    rec.name = sys::thread_name();
    if let (Ok((policy, priority)), Ok(nice)) = (sys::get_scheduling(), sys::get_nice()) {
        rec.sched_policy = policy;
        rec.sched_priority = priority;
        rec.nice = nice;
        rec.sched_flags |= THREAD_SCHED;
    }
    if let Ok(mask) = sys::get_affinity64() {
        rec.affinity = mask;
        rec.sched_flags |= THREAD_AFFINITY;
    }
    // SAFETY: `uc` is the kernel's ucontext for this thread's handler (our contract).
    let frame = unsafe { arch::frame_view(uc) };
    rec.sp = frame.sp;
    rec.ip = frame.ip;
    rec.sigmask = frame.sigmask;
    if let Some((area, len)) = registered_rseq(base) {
        rec.flags |= THREAD_RSEQ;
        rec.rseq = area as u64;
        rec.rseq_len = len;
        rec.rseq_sig = arch::RSEQ_SIG;
    }
}

/// The rseq area registered for the calling thread, if it is libc's. The kernel offers
/// no getter, so ask it to register libc's area again: EBUSY means "already registered
/// with exactly these arguments".
fn registered_rseq(thread_pointer: u64) -> Option<(usize, u32)> {
    let (offset, _) = sys::libc_rseq()?;
    if thread_pointer == 0 {
        return None;
    }
    let area = (thread_pointer as isize + offset) as usize;
    // What glibc registers (struct rseq with padding).
    const RSEQ_AREA_LEN: u32 = 32;
    // SAFETY: area is libc's rseq area of this thread (thread pointer + __rseq_offset),
    // valid as long as the thread lives.
    match unsafe { sys::rseq(area, RSEQ_AREA_LEN, 0, arch::RSEQ_SIG) } {
        Err(syscalls::Errno::EBUSY) => Some((area, RSEQ_AREA_LEN)),
        Ok(()) => {
            // It was not registered: undo our probe.
            // SAFETY: unregistering the area we just registered.
            unsafe {
                let _ = sys::rseq(area, RSEQ_AREA_LEN, 1 /* RSEQ_FLAG_UNREGISTER */, arch::RSEQ_SIG);
            }
            None
        }
        Err(_) => None,
    }
}

/// Fills the process-wide part of the record: mm fields, auxv, umask, personality,
/// signal dispositions, comm. Paths (cwd, exe) are read by the writer.
pub fn capture_process(rec: &mut ProcessRecord) {
    rec.pid = sys::getpid() as u64;
    read_mm_fields(&mut rec.mm);
    rec.mm.brk = sys::brk(0) as u64;

    let mut auxv = [0u8; 1024];
    let n = sys::read_file(b"/proc/self/auxv", &mut auxv).unwrap_or(0);
    for (i, chunk) in auxv[..n].chunks_exact(8).enumerate().take(rec.auxv.len()) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        rec.auxv[i] = u64::from_le_bytes(w);
    }
    rec.auxv_bytes = n as u32;

    let old = sys::umask(0o022);
    sys::umask(old);
    rec.umask = old;
    rec.personality = sys::personality(0xffff_ffff).unwrap_or(0);
    for (which, slot) in rec.itimers.iter_mut().enumerate() {
        let (interval, value) = sys::get_itimer(which as u32).unwrap_or((0, 0));
        *slot = [interval, value];
    }
    for (resource, slot) in rec.rlimits.iter_mut().enumerate() {
        let (soft, hard) = sys::prlimit(resource as u32, None).unwrap_or((u64::MAX, u64::MAX));
        *slot = [soft, hard];
    }

    for sig in 1..=NSIG {
        let mut act = KernelSigaction::default();
        if sig == sys::SIGKILL || sig == sys::SIGSTOP {
            rec.sigactions[sig - 1] = Default::default();
            continue;
        }
        if sys::rt_sigaction(sig, None, Some(&mut act)).is_ok() {
            rec.sigactions[sig - 1] = record_of(&act);
        }
    }

    let mut comm = [0u8; 32];
    let n = sys::read_file(b"/proc/self/comm", &mut comm).unwrap_or(0);
    let n = if n > 0 && comm[n - 1] == b'\n' { n - 1 } else { n };
    rec.comm = [0; 16];
    let n = n.min(15);
    rec.comm[..n].copy_from_slice(&comm[..n]);
}

/// The fields of /proc/self/stat that PR_SET_MM_MAP restores.
fn read_mm_fields(mm: &mut MmFields) {
    let mut buf = [0u8; 1024];
    let n = match sys::read_file(b"/proc/self/stat", &mut buf) {
        Ok(n) => n,
        Err(_) => return,
    };
    let text = &buf[..n];
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let close = match text.iter().rposition(|&c| c == b')') {
        Some(p) => p,
        None => return,
    };
    let mut values = [0u64; 52];
    let tokens = text[close + 1..]
        .split(|&c| c == b' ' || c == b'\n')
        .filter(|t| !t.is_empty());
    // The field after ')' is field 3 (state).
    for (i, tok) in tokens.enumerate() {
        let field_no = i + 3;
        if field_no < values.len() {
            values[field_no] = dec(tok).unwrap_or(0);
        }
    }
    mm.start_code = values[26];
    mm.end_code = values[27];
    mm.start_stack = values[28];
    mm.start_data = values[45];
    mm.end_data = values[46];
    mm.start_brk = values[47];
    mm.arg_start = values[48];
    mm.arg_end = values[49];
    mm.env_start = values[50];
    mm.env_end = values[51];
}

/// A disposition as the image keeps it (64-bit fields on every architecture).
fn record_of(act: &KernelSigaction) -> SigActionRecord {
    SigActionRecord {
        handler: act.handler as u64,
        flags: act.flags as u64,
        restorer: act.restorer as u64,
        mask: act.mask,
    }
}

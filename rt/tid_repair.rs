//! Held glibc locks handed to new thread ids, after a restart that could not give the
//! threads their old ones. glibc writes the holder's tid into every mutex it locks
//! (`__owner`) and into a write-locked rwlock (`__cur_writer`), and checks it on unlock
//! (error-checking and recursive mutexes, rwlocks) or asserts it (every mutex): a lock
//! held across the restart, the loader's own `_dl_load_lock` among them, would be left
//! owned by a thread that no longer exists. The restore scans the program's writable
//! private memory for held locks whose holder is an old tid and rewrites it to that
//! thread's new tid. Locks are recognised by their whole shape, not by one word, so that
//! other data that happens to hold a tid value is left alone.

use core::sync::atomic::{AtomicU32, Ordering};

use mtcp_core::arch::{
    GLIBC_LOCK_ALIGN, GLIBC_MUTEX_COUNT, GLIBC_MUTEX_KIND, GLIBC_MUTEX_LOCK, GLIBC_MUTEX_NUSERS, GLIBC_MUTEX_OWNER,
    GLIBC_MUTEX_SIZE, GLIBC_RWLOCK_CUR_WRITER, GLIBC_RWLOCK_READERS, GLIBC_RWLOCK_SIZE, GLIBC_RWLOCK_WRITERS_FUTEX,
};
use mtcp_core::maps;
use mtcp_core::sys;

/// `__kind` bits (nptl/pthreadP.h): the type in the low two bits, then robust (handled
/// through the robust list instead), priority inheritance and protection, process-shared
/// and the elision hints.
const KIND_TYPE: u32 = 3;
const KIND_ROBUST: u32 = 16;
const KIND_PI: u32 = 32;
const KIND_PP: u32 = 64;
const KIND_KNOWN: u32 = KIND_TYPE | KIND_ROBUST | KIND_PI | KIND_PP | 128 | 256 | 512;
const KIND_RECURSIVE: u32 = 1;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// rwlock `__readers`: write phase and write-locked bits.
const RW_WRPHASE_AND_LOCKED: u32 = 3;

/// What the scan found and rewrote.
#[derive(Default)]
pub struct Repaired {
    pub mutexes: u32,
    pub rwlocks: u32,
}

/// Rewrites every held mutex and write-locked rwlock whose holder is an old tid in
/// `map` ((old, new) pairs sorted by old tid) to the new tid, in the writable private mappings of the process
/// other than `skip` (the runtime's own state, which records old tids).
///
/// # Safety
/// Every other thread of the process exists but waits (none runs the program yet), so
/// nothing but this thread changes the program's memory, except atomically (futex
/// waiters setting their bits).
pub unsafe fn hand_locks_to_new_tids(map: &[(u32, u32)], skip: (usize, usize)) -> Repaired {
    let mut done = Repaired::default();
    if map.iter().all(|&(old, new)| old == new) {
        return done;
    }
    let (lo, hi) = (map[0].0, map[map.len() - 1].0);
    let new_of = |tid: u32| {
        if tid < lo || tid > hi {
            return None;
        }
        let i = map.binary_search_by_key(&tid, |&(o, _)| o).ok()?;
        (map[i].1 != tid).then_some(map[i].1)
    };
    let Some(text) = MapsText::read() else {
        return done;
    };
    for e in maps::entries(text.bytes()).flatten() {
        let path = e.path(text.bytes());
        let special = path.starts_with(b"[v");
        let rw = sys::PROT_READ as u32 | sys::PROT_WRITE as u32;
        if e.shared || special || e.prot & rw != rw {
            continue;
        }
        // The runtime's own records of the old tids stay as they are.
        let parts = [
            (e.start, e.end.min(skip.0).max(e.start)),
            (e.start.max(skip.1).min(e.end), e.end),
        ];
        for (start, end) in parts {
            // SAFETY: part of a readable, writable private mapping of this process that
            // no other thread uses now (our contract).
            unsafe { scan_resident(start, end, &new_of, &mut done) };
        }
    }
    done
}

/// `scan` over the resident pages of [start, end) only: reading the others would fault
/// in reserved memory that was never used (or, past a mapped file's end, fail).
///
/// # Safety
/// As `scan`, for the whole range.
unsafe fn scan_resident(start: usize, end: usize, new_of: &impl Fn(u32) -> Option<u32>, done: &mut Repaired) {
    const PAGE: usize = 4096;
    let mut resident = [0u8; 2048];
    let mut chunk = start;
    while chunk < end {
        let pages = ((end - chunk) / PAGE).min(resident.len());
        if pages == 0 || sys::mincore(chunk, &mut resident[..pages]).is_err() {
            return;
        }
        let mut i = 0;
        while i < pages {
            // A run of resident pages, scanned as one (a lock may straddle two pages).
            let first = i;
            while i < pages && resident[i] & 1 != 0 {
                i += 1;
            }
            if i > first {
                // SAFETY: resident pages inside the caller's range.
                unsafe { scan(chunk + first * PAGE, chunk + i * PAGE, new_of, done) };
            }
            i += 1;
        }
        chunk += pages * PAGE;
    }
}

/// # Safety
/// [start, end) is readable and writable memory that only this thread changes, but for
/// atomic futex-word updates.
unsafe fn scan(start: usize, end: usize, new_of: &impl Fn(u32) -> Option<u32>, done: &mut Repaired) {
    let word = |addr: usize| {
        // SAFETY: addr is 4-aligned inside [start, end) (the callers' bounds).
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    };
    let mut at = start;
    while at + GLIBC_MUTEX_SIZE.min(GLIBC_RWLOCK_SIZE) <= end {
        // A mutex's owner and a rwlock's writer are where a tid would be: test that first.
        if at + GLIBC_MUTEX_SIZE <= end {
            if let Some(new) = new_of(word(at + GLIBC_MUTEX_OWNER)) {
                // SAFETY: a whole mutex-sized span inside the mapping.
                if unsafe { repair_mutex(at, new) } {
                    done.mutexes += 1;
                }
            }
        }
        if at + GLIBC_RWLOCK_SIZE <= end {
            if let Some(new) = new_of(word(at + GLIBC_RWLOCK_CUR_WRITER)) {
                let write_locked = word(at + GLIBC_RWLOCK_READERS) & RW_WRPHASE_AND_LOCKED == RW_WRPHASE_AND_LOCKED
                    && word(at + GLIBC_RWLOCK_WRITERS_FUTEX) & 1 == 1;
                if write_locked {
                    // SAFETY: the writer field of a rwlock inside the mapping; only the
                    // holder writes it, and no thread runs.
                    unsafe { core::ptr::write_volatile((at + GLIBC_RWLOCK_CUR_WRITER) as *mut u32, new) };
                    done.rwlocks += 1;
                }
            }
        }
        at += GLIBC_LOCK_ALIGN;
    }
}

/// Whether `at` holds a held glibc mutex (checked field by field), and if so hands it to
/// `new`.
///
/// # Safety
/// `at` starts GLIBC_MUTEX_SIZE bytes of memory as `scan` requires.
unsafe fn repair_mutex(at: usize, new: u32) -> bool {
    // SAFETY: 4-aligned words inside the span (our contract).
    let word = |off: usize| unsafe { core::ptr::read_volatile((at + off) as *const u32) };
    let (lock, count, owner, nusers, kind) = (
        word(GLIBC_MUTEX_LOCK),
        word(GLIBC_MUTEX_COUNT),
        word(GLIBC_MUTEX_OWNER),
        word(GLIBC_MUTEX_NUSERS),
        word(GLIBC_MUTEX_KIND),
    );
    if kind & !KIND_KNOWN != 0 || kind & (KIND_ROBUST | KIND_PP) != 0 || nusers == 0 || nusers > 1 << 20 {
        return false;
    }
    let counted = if kind & KIND_TYPE == KIND_RECURSIVE {
        (1..1 << 24).contains(&count)
    } else {
        count == 0
    };
    if !counted {
        return false;
    }
    if kind & KIND_PI != 0 {
        // The lock word is the kernel's: the holder's tid and its waiter bits.
        if lock & FUTEX_TID_MASK != owner {
            return false;
        }
        // SAFETY: the mutex's aligned futex word; waiters change it only atomically.
        let futex = unsafe { AtomicU32::from_ptr((at + GLIBC_MUTEX_LOCK) as *mut u32) };
        let mut value = lock;
        while let Err(now) = futex.compare_exchange(
            value,
            (value & !FUTEX_TID_MASK) | new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            if now & FUTEX_TID_MASK != owner {
                return false;
            }
            value = now;
        }
    } else if lock != 1 && lock != 2 {
        return false;
    }
    // SAFETY: the owner field of a held mutex, which only its holder writes; no thread
    // runs the program.
    unsafe { core::ptr::write_volatile((at + GLIBC_MUTEX_OWNER) as *mut u32, new) };
    true
}

/// /proc/self/maps, read whole into memory of its own (unmapped when dropped).
struct MapsText {
    base: usize,
    size: usize,
    len: usize,
}

impl MapsText {
    fn read() -> Option<MapsText> {
        let mut size = 1 << 20;
        loop {
            let base = sys::map_anon(size).ok()?;
            let text = MapsText { base, size, len: 0 };
            // SAFETY: [base, base + size) was just mapped read-write for us alone.
            let buf = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, size) };
            let n = sys::read_file(b"/proc/self/maps", buf).ok()?;
            if n < size {
                let mut text = text;
                text.len = n;
                return Some(text);
            }
            size *= 4; // it did not fit: try again with more room
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of our own mapping, filled by read_file.
        unsafe { core::slice::from_raw_parts(self.base as *const u8, self.len) }
    }
}

impl Drop for MapsText {
    fn drop(&mut self) {
        // SAFETY: our own mapping, which nothing refers to once we are gone.
        unsafe {
            let _ = sys::munmap(self.base, self.size);
        }
    }
}

//! Step 3, map: the point of no return. Unmap everything outside the window, park the
//! kernel's vdso/vvar inside it, map every region at its address and fill it from the
//! image (checking each region's checksum), then move the vdso/vvar to where the image
//! had them.
//!
//! Large runs of private memory are mapped straight from the image file (MAP_PRIVATE:
//! the page cache's pages, no copy, no zeroing; a write copies the page as for any
//! private file mapping), small ones and all of `--eager` are read in chunks, each
//! hashed while it is in the cache. Either way every byte is hashed where it lies, and
//! a region whose checksum fails ends the restart before the program runs: damage is
//! caught before the program can use the memory, at the cost of reading it once (at
//! memory speed, from the page cache). The image file is never written in place (a
//! later checkpoint writes a new file and renames it), so what is mapped stays as it
//! was checked.

use mtcp_core::arch;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::*;
use mtcp_core::sys;
use mtcp_core::Errno;

use crate::check::Image;
use crate::survey::{Special, Survey};
use crate::window::Window;

/// Runs of at least this many pages are mapped from the image rather than read.
const MAP_MIN_PAGES: u64 = 16;
/// Reads (eager restarts, small runs) go in pieces of this size, each hashed while in
/// the cache.
const READ_CHUNK: usize = 256 << 10;
const MADV_POPULATE_READ: usize = 22;

/// `--eager`: read every page into fresh memory instead of mapping the image.
static EAGER: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn set_eager() {
    EAGER.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Replaces this process's memory with the image's; returns the pages read.
///
/// # Safety
/// Everything outside the window is unmapped: the caller may use nothing there (its
/// stack, code and data are inside the window; `survey` checked every region misses it).
pub unsafe fn replace_address_space(image: &Image, survey: &Survey, window: &Window) -> u64 {
    for &(start, end) in survey.doomed() {
        // SAFETY: the caller's contract: nothing outside the window is in use.
        if let Err(e) = unsafe { sys::munmap(start, end - start) } {
            die!("cannot unmap {:#x}-{:#x}: {}", start, end, ErrnoName(e));
        }
    }
    let specials = survey.specials();
    // Park the kernel's vdso/vvar inside the window, keeping their relative layout.
    let park_base = window.park_area();
    let low = specials.iter().map(|s| s.start).min().unwrap_or(0);
    let mut parked = [Special::default(); 4];
    for (i, s) in specials.iter().enumerate() {
        let to = park_base + (s.start - low);
        move_mapping(s.start, s.len(), to, s.kind);
        parked[i] = Special {
            kind: s.kind,
            start: to,
            end: to + s.len(),
        };
    }
    let meta = &image.meta;
    let mut total_pages = 0u64;
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if matches!(r.kind, KIND_VDSO | KIND_VVAR | KIND_VVAR_VCLOCK) {
            continue;
        }
        // SAFETY: the region lies outside the window (survey), where nothing is in use.
        total_pages += unsafe { restore_region(meta, image.header.version, i, image.fd.raw(), survey.region_file(i)) };
    }
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if let Some(p) = parked[..specials.len()].iter().find(|p| p.kind == r.kind) {
            move_mapping(p.start, p.len(), r.start as usize, r.kind);
        }
    }
    total_pages
}

/// Moves a kernel mapping (vdso/vvar), which cannot be unmapped and mapped again.
fn move_mapping(from: usize, len: usize, to: usize, kind: u32) {
    // SAFETY: moves a vdso/vvar mapping that nothing of mtcp_restart uses (its syscalls
    // are made directly, never through the vdso) to a place the survey found free.
    let moved = unsafe { sys::mremap(from, len, len, sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED, to) };
    if let Err(e) = moved {
        die!("cannot move the {} to {:#x}: {}", kind_name(kind), to, ErrnoName(e));
    }
}

/// Maps region `i` and fills it from the image; returns the pages read.
///
/// # Safety
/// Maps over the region's address range: nothing of mtcp_restart may live there.
unsafe fn restore_region(meta: &Meta, version: u32, i: usize, fd: i32, file_fd: i32) -> u64 {
    let r = meta.region(i);
    let (start, len) = (r.start as usize, r.len() as usize);
    let prot = r.prot as usize;
    let mut flags = sys::MAP_FIXED;
    if r.flags & REGION_NORESERVE != 0 {
        flags |= sys::MAP_NORESERVE;
    }
    if r.flags & REGION_GROWSDOWN != 0 {
        flags |= sys::MAP_GROWSDOWN;
    }
    let has_data = r.run_count > 0;
    if r.kind == KIND_FILE_SHARED && file_fd >= 0 {
        // The file is the data; nothing of the image is read for it.
        // SAFETY: MAP_FIXED over the region's own range, which the caller guarantees
        // nothing uses.
        let m = unsafe { sys::mmap(start, len, prot, flags | sys::MAP_SHARED, file_fd, r.file_offset) };
        check_mapped(&r, m);
        advise(&r);
        return 0;
    }
    let (share, backing, offset) = match r.kind {
        // Map the same file (so /proc/PID/maps and debuggers see it), then lay the saved
        // bytes over it.
        KIND_FILE_PRIVATE if file_fd >= 0 => (sys::MAP_PRIVATE, file_fd, r.file_offset),
        KIND_ANON_SHARED => (sys::MAP_SHARED | sys::MAP_ANONYMOUS, -1, 0),
        _ => (sys::MAP_PRIVATE | sys::MAP_ANONYMOUS, -1, 0),
    };
    let first_prot = if has_data {
        sys::PROT_READ | sys::PROT_WRITE
    } else {
        prot
    };
    // SAFETY: MAP_FIXED over the region's own range, which the caller guarantees nothing
    // uses.
    let mapped = unsafe { sys::mmap(start, len, first_prot, flags | share, backing, offset) };
    check_mapped(&r, mapped);
    let mut hash = RegionChecksum::new(version);
    let mut pages = 0;
    // Shared memory must be the region's own (it is shared with what the program forks),
    // a stack must stay one mapping that can grow: those are read.
    let mappable = !EAGER.load(core::sync::atomic::Ordering::Relaxed)
        && matches!(r.kind, KIND_ANON_PRIVATE | KIND_FILE_PRIVATE)
        && r.flags & (REGION_GROWSDOWN | REGION_STACK) == 0;
    for j in 0..r.run_count as usize {
        let run = meta.run(r.run_first as usize + j);
        hash.start_run(&run);
        let addr = start + run.page_index as usize * arch::PAGE_SIZE;
        let bytes = run.pages as usize * arch::PAGE_SIZE;
        // SAFETY: the run lies inside the region (Meta::parse checked it), mapped
        // writable just above; nothing of ours is in it.
        let from_image =
            mappable && run.pages >= MAP_MIN_PAGES && unsafe { map_run(addr, bytes, flags, fd, run.file_offset) };
        if from_image {
            // One pass over the mapped pages: hash them where they are.
            let _ = sys::madvise(addr, bytes, MADV_POPULATE_READ);
            // SAFETY: the run is mapped readable from the image just above.
            hash.update(unsafe { core::slice::from_raw_parts(addr as *const u8, bytes) });
            crate::progress::advance(bytes as u64);
        } else {
            let mut done = 0;
            while done < bytes {
                let n = (bytes - done).min(READ_CHUNK);
                let at = addr + done;
                // SAFETY: [at, at + n) lies in the run, mapped writable above.
                let chunk = unsafe {
                    if let Err(e) = sys::pread_exact(fd, at as *mut u8, n, run.file_offset + done as u64) {
                        die!("cannot read region data at {:#x}: {}", at, ErrnoName(e));
                    }
                    core::slice::from_raw_parts(at as *const u8, n)
                };
                hash.update(chunk);
                crate::progress::advance(n as u64);
                done += n;
            }
        }
        pages += run.pages;
    }
    if has_data {
        if hash.digest() != r.data_checksum {
            die!(
                "memory data of region {:#x}-{:#x} ({}) is corrupt (checksum mismatch)",
                r.start,
                r.end,
                Lossy(meta.string(r.path))
            );
        }
        // SAFETY: gives the region the protection it had; nothing of ours is in it.
        if let Err(e) = unsafe { sys::mprotect(start, len, prot) } {
            die!("cannot protect region {:#x}-{:#x}: {}", r.start, r.end, ErrnoName(e));
        }
    }
    advise(&r);
    pages
}

/// Maps `len` bytes at `addr` from the image at `offset`, private and writable (`flags`:
/// MAP_FIXED and the region's MAP_NORESERVE); false if the kernel refuses (a file
/// system without mmap, say), leaving the range as it was: the run is read instead.
///
/// # Safety
/// `[addr, addr + len)` is memory of the region being restored, which nothing uses.
unsafe fn map_run(addr: usize, len: usize, flags: usize, fd: i32, offset: u64) -> bool {
    let flags = (flags & (sys::MAP_FIXED | sys::MAP_NORESERVE)) | sys::MAP_PRIVATE;
    // SAFETY: MAP_FIXED over the caller's range, which nothing uses (our contract).
    let m = unsafe { sys::mmap(addr, len, sys::PROT_READ | sys::PROT_WRITE, flags, fd, offset) };
    m == Ok(addr)
}

fn check_mapped(r: &RegionRecord, m: Result<usize, Errno>) {
    match m {
        Ok(a) if a == r.start as usize => {}
        Ok(a) => die!("region {:#x}-{:#x} was mapped at {:#x}", r.start, r.end, a),
        Err(e) => die!("cannot map region {:#x}-{:#x}: {}", r.start, r.end, ErrnoName(e)),
    }
}

/// Gives back the madvise hints the region had; failures only lose a hint.
fn advise(r: &RegionRecord) {
    for (flag, advice) in [
        (REGION_DONTFORK, sys::MADV_DONTFORK),
        (REGION_WIPEONFORK, sys::MADV_WIPEONFORK),
        (REGION_DONTDUMP, sys::MADV_DONTDUMP),
        (REGION_HUGEPAGE, sys::MADV_HUGEPAGE),
        (REGION_NOHUGEPAGE, sys::MADV_NOHUGEPAGE),
        (REGION_MERGEABLE, sys::MADV_MERGEABLE),
    ] {
        if r.flags & flag != 0 {
            let _ = sys::madvise(r.start as usize, r.len() as usize, advice);
        }
    }
}

//! Step 3, map: the point of no return. Unmap everything outside the window, park the
//! kernel's vdso/vvar inside it, map every region at its address and fill it from the
//! image (checking each region's checksum), then move the vdso/vvar to where the image
//! had them.

use mtcp_core::arch;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::*;
use mtcp_core::sys;
use mtcp_core::Errno;

use crate::check::Image;
use crate::survey::{Special, Survey};
use crate::window::Window;

/// The most memory read from the image in one call.
const READ_PIECE: usize = 16 << 20;

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
    for j in 0..r.run_count as usize {
        let run = meta.run(r.run_first as usize + j);
        hash.start_run(&run);
        let addr = start + run.page_index as usize * arch::PAGE_SIZE;
        let bytes = run.pages as usize * arch::PAGE_SIZE;
        // In pieces, so that progress moves within a large run.
        let mut at = 0;
        while at < bytes {
            let n = (bytes - at).min(READ_PIECE);
            // SAFETY: the run lies inside the region (Meta::parse checked it), mapped
            // writable just above.
            let data = unsafe {
                if let Err(e) = sys::pread_exact(fd, (addr + at) as *mut u8, n, run.file_offset + at as u64) {
                    die!("cannot read region data at {:#x}: {}", addr + at, ErrnoName(e));
                }
                core::slice::from_raw_parts((addr + at) as *const u8, n)
            };
            hash.update(data);
            crate::progress::advance(n as u64);
            at += n;
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

//! Which pages of a range are populated: `PAGEMAP_SCAN` (Linux 6.7+), one ioctl on
//! `/proc/self/pagemap` per populated range, with reading the page map itself (8 bytes
//! a page) where the kernel lacks it.

use syscalls::{Errno, Sysno};

use super::{fd_arg, pread_exact};

/// `struct pm_scan_arg` (include/uapi/linux/fs.h): every field is 64 bits wide for
/// every task, pointers included.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}
static_assertions::const_assert_eq!(core::mem::size_of::<PmScanArg>(), 96);
static_assertions::const_assert_eq!(core::mem::offset_of!(PmScanArg, walk_end), 32);
static_assertions::const_assert_eq!(core::mem::offset_of!(PmScanArg, return_mask), 88);

/// `struct page_region`: pages `[start, end)` with the same `categories`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}
static_assertions::const_assert_eq!(core::mem::size_of::<PageRegion>(), 24);

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: usize = 0xC060_6610;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// Mapped to the kernel's shared zero page (read, never written): all zeros.
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;

/// `/proc/self/pagemap`, and how to ask it.
pub struct PageMap {
    fd: i32,
    /// Whether PAGEMAP_SCAN works here (cleared on the first ENOTTY or EINVAL).
    scan: bool,
    regions: &'static mut [PageRegion],
    entries: &'static mut [u64],
}

impl PageMap {
    /// Over the open page map `fd` (which stays the caller's), with scratch room for
    /// the results of one ioctl and of one read.
    pub fn new(fd: i32, regions: &'static mut [PageRegion], entries: &'static mut [u64]) -> PageMap {
        PageMap {
            fd,
            scan: true,
            regions,
            entries,
        }
    }

    /// Whether the last calls used PAGEMAP_SCAN.
    pub fn scans(&self) -> bool {
        self.scan
    }

    /// Calls `f(first, end, zero)` for the populated (present or swapped) pages of
    /// `[start, end)` (page-aligned addresses), in address order, in pieces of pages
    /// that share `zero`: whether they are the kernel's zero page. Errors: the page
    /// map's (EFAULT for a range outside the address space, EINTR on a fatal signal),
    /// or `f`'s.
    pub fn populated(
        &mut self,
        start: usize,
        end: usize,
        page: usize,
        mut f: impl FnMut(usize, usize, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if self.scan {
            match self.scan_range(start, end, &mut f) {
                Err(Errno::ENOTTY) | Err(Errno::EINVAL) | Err(Errno::EOPNOTSUPP) => self.scan = false,
                other => return other,
            }
        }
        self.read_range(start, end, page, &mut f)
    }

    fn scan_range(
        &mut self,
        start: usize,
        end: usize,
        f: &mut impl FnMut(usize, usize, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut from = start as u64;
        while from < end as u64 {
            let mut arg = PmScanArg {
                size: core::mem::size_of::<PmScanArg>() as u64,
                start: from,
                end: end as u64,
                vec: self.regions.as_mut_ptr() as usize as u64,
                vec_len: self.regions.len() as u64,
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
                ..PmScanArg::default()
            };
            // SAFETY: the kernel reads `arg` and writes at most vec_len page_regions to
            // `regions` (ours, that long) and walk_end to `arg`.
            let found = unsafe {
                syscalls::syscall3(
                    Sysno::ioctl,
                    fd_arg(self.fd),
                    PAGEMAP_SCAN,
                    &mut arg as *mut PmScanArg as usize,
                )
            }?;
            for r in &self.regions[..found.min(self.regions.len())] {
                f(r.start as usize, r.end as usize, r.categories & PAGE_IS_PFNZERO != 0)?;
            }
            if arg.walk_end <= from {
                // The kernel made no progress: never loop on it.
                return Err(Errno::EIO);
            }
            from = arg.walk_end;
        }
        Ok(())
    }

    fn read_range(
        &mut self,
        start: usize,
        end: usize,
        page: usize,
        f: &mut impl FnMut(usize, usize, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut addr = start;
        while addr < end {
            let n = ((end - addr) / page).min(self.entries.len());
            // SAFETY: entries has room for n u64s.
            unsafe {
                pread_exact(
                    self.fd,
                    self.entries.as_mut_ptr() as *mut u8,
                    n * 8,
                    (addr / page * 8) as u64,
                )?
            };
            let mut i = 0;
            while i < n {
                if self.entries[i] & (PM_PRESENT | PM_SWAPPED) == 0 {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < n && self.entries[i] & (PM_PRESENT | PM_SWAPPED) != 0 {
                    i += 1;
                }
                f(addr + first * page, addr + i * page, false)?;
            }
            addr += n * page;
        }
        Ok(())
    }
}

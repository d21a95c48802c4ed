//! The restart window: the one address range mtcp_restart occupies, laid out by the
//! linker script (linker/restart-<arch>.ld) and read here from its symbols, so the
//! addresses are written in one place.
#![deny(unsafe_code)]

extern "C" {
    // Symbols of the linker script, not objects: only their addresses mean anything.
    static __restart_window_start: u8;
    static __restart_scratch_start: u8;
    static __restart_scratch_end: u8;
    static __restart_window_end: u8;
}

/// Where mtcp_restart keeps everything it owns.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: usize,
    pub end: usize,
    /// Scratch memory (the arena) inside the window.
    pub scratch_start: usize,
    pub scratch_end: usize,
}

impl Window {
    pub fn get() -> Window {
        // Only the addresses of the linker's symbols are taken, never their contents.
        Window {
            start: core::ptr::addr_of!(__restart_window_start) as usize,
            end: core::ptr::addr_of!(__restart_window_end) as usize,
            scratch_start: core::ptr::addr_of!(__restart_scratch_start) as usize,
            scratch_end: core::ptr::addr_of!(__restart_scratch_end) as usize,
        }
    }

    pub fn contains(&self, addr: usize) -> bool {
        (self.start..self.end).contains(&addr)
    }

    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end as u64 && end > self.start as u64
    }

    /// Where the kernel's vdso/vvar wait while the image's memory is mapped.
    pub fn park_area(&self) -> usize {
        self.scratch_end
    }
}

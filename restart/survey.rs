//! Step 2, survey: what this process has (the kernel's stack and vdso/vvar) against what
//! the image needs (every region outside mtcp_restart's window, the same vdso/vvar
//! sizes, a restore entry in executable memory), and the files that file mappings need,
//! opened now so a missing one stops the restart early. Still nothing is changed.
#![deny(unsafe_code)]

use mtcp_core::arch;
use mtcp_core::arena::Arena;
use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, Lossy};
use mtcp_core::image::*;
use mtcp_core::maps;
use mtcp_core::sys::{self, Fd};
use mtcp_core::Errno;

use crate::check::Image;
use crate::window::Window;

/// One of this process's kernel mappings (vdso, vvar).
#[derive(Clone, Copy, Default)]
pub struct Special {
    pub kind: u32,
    pub start: usize,
    pub end: usize,
}

impl Special {
    pub fn len(&self) -> usize {
        self.end - self.start
    }
}

/// What the map step works from.
pub struct Survey {
    specials: [Special; 4],
    nspecials: usize,
    /// Mappings outside the window that go (the kernel's stack, mostly).
    doomed: [(usize, usize); 16],
    ndoomed: usize,
    /// Per region: the file to map it from, or -1 (the image's data rebuilds it).
    region_files: &'static mut [i32],
}

impl Survey {
    pub fn specials(&self) -> &[Special] {
        &self.specials[..self.nspecials]
    }

    pub fn doomed(&self) -> &[(usize, usize)] {
        &self.doomed[..self.ndoomed]
    }

    pub fn region_file(&self, i: usize) -> i32 {
        self.region_files[i]
    }
}

impl Drop for Survey {
    fn drop(&mut self) {
        for f in self.region_files.iter_mut() {
            if *f >= 0 {
                drop(Fd::adopt(*f));
                *f = -1;
            }
        }
    }
}

pub fn survey(image: &Image, window: &Window, arena: &mut Arena, verbose: bool) -> Survey {
    let mut s = own_mappings(arena, window);
    check_regions(image, window, s.specials());
    s.region_files = open_region_files(&image.meta, arena, verbose);
    s
}

/// This process's kernel mappings, and everything outside the window that must go.
fn own_mappings(arena: &mut Arena, window: &Window) -> Survey {
    let own_maps = match arena.read_file(b"/proc/self/maps") {
        Ok(t) => t,
        Err(e) => die!("cannot read /proc/self/maps: {}", ErrnoName(e)),
    };
    let mut s = Survey {
        specials: [Special::default(); 4],
        nspecials: 0,
        doomed: [(0, 0); 16],
        ndoomed: 0,
        region_files: &mut [],
    };
    for entry in maps::entries(own_maps) {
        let e = match entry {
            Some(e) => e,
            None => die!("cannot parse this process's /proc/self/maps"),
        };
        let kind = match e.path(own_maps) {
            b"[vdso]" => KIND_VDSO,
            b"[vvar]" => KIND_VVAR,
            b"[vvar_vclock]" => KIND_VVAR_VCLOCK,
            b"[vsyscall]" => continue,
            _ if window.contains(e.start) && e.end <= window.end => continue,
            _ => {
                // The kernel's stack and anything else outside the window goes.
                if s.ndoomed == s.doomed.len() {
                    die!("this process has unexpected mappings");
                }
                s.doomed[s.ndoomed] = (e.start, e.end);
                s.ndoomed += 1;
                continue;
            }
        };
        if s.nspecials < s.specials.len() {
            s.specials[s.nspecials] = Special {
                kind,
                start: e.start,
                end: e.end,
            };
            s.nspecials += 1;
        }
    }
    s
}

/// Every region must fit the address space, miss the window, and find this kernel's
/// vdso/vvar of the same size; the restore entry must be executable.
fn check_regions(image: &Image, window: &Window, specials: &[Special]) {
    let (header, meta) = (&image.header, &image.meta);
    let mut entry_ok = false;
    let mut image_specials = 0;
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if r.end > arch::USER_TOP {
            die!("region {:#x}-{:#x} lies outside the user address space", r.start, r.end);
        }
        if window.overlaps(r.start, r.end) {
            die!(
                "region {:#x}-{:#x} ({}) overlaps mtcp_restart's own window {:#x}-{:#x}; this image cannot be restarted by this build",
                r.start,
                r.end,
                Lossy(meta.string(r.path)),
                window.start,
                window.end
            );
        }
        if header.restore_entry >= r.start && header.restore_entry < r.end && r.prot & PROT_EXEC != 0 {
            entry_ok = true;
        }
        if matches!(r.kind, KIND_VDSO | KIND_VVAR | KIND_VVAR_VCLOCK) {
            image_specials += 1;
            match specials.iter().find(|s| s.kind == r.kind) {
                Some(s) if s.len() as u64 == r.len() => {}
                Some(s) => die!(
                    "this kernel's {} is {} bytes, the image's is {}: the kernel differs from the one that took the checkpoint",
                    kind_name(r.kind),
                    s.len(),
                    r.len()
                ),
                None => die!("this kernel has no {} mapping, the image's kernel had one", kind_name(r.kind)),
            }
        }
    }
    if image_specials != specials.len() {
        die!("this kernel's vdso/vvar mappings differ from the ones in the image");
    }
    if !entry_ok {
        die!(
            "the image's restore entry {:#x} is not in any executable region (corrupt image?)",
            header.restore_entry
        );
    }
}

/// The files of file-backed regions: a shared mapping needs the same file (its contents
/// may have moved on); a private one is mapped again only if unchanged, else rebuilt
/// from the image.
fn open_region_files(meta: &Meta, arena: &mut Arena, verbose: bool) -> &'static mut [i32] {
    let files = match arena.alloc::<i32>(meta.region_count) {
        Ok(f) => f,
        Err(_) => die!("too many regions"),
    };
    for (i, file_slot) in files.iter_mut().enumerate() {
        let r = meta.region(i);
        *file_slot = -1;
        if r.kind != KIND_FILE_SHARED && r.kind != KIND_FILE_PRIVATE {
            continue;
        }
        let file = meta.string(r.path);
        let writable = r.kind == KIND_FILE_SHARED && r.prot & PROT_WRITE != 0;
        let flags = if writable { sys::O_RDWR } else { sys::O_RDONLY };
        let opened = if r.flags & REGION_FILE_IDENTITY != 0 {
            sys::open(file, flags | sys::O_CLOEXEC, 0)
        } else {
            Err(Errno::ENOENT)
        };
        let same = match opened {
            Ok(ffd) => match sys::fstat(ffd.raw()) {
                Ok(st)
                    if st.ino == r.inode
                        && st.dev_major == r.dev_major
                        && st.dev_minor == r.dev_minor
                        && (r.kind == KIND_FILE_SHARED
                            || (st.size == r.file_size
                                && st.mtime.sec == r.mtime_sec
                                && st.mtime.nsec == r.mtime_nsec)) =>
                {
                    if verbose && r.kind == KIND_FILE_SHARED && (st.size != r.file_size || st.mtime.sec != r.mtime_sec)
                    {
                        eprint_line!("mtcp_restart: note: {} was modified since the checkpoint", Lossy(file));
                    }
                    *file_slot = ffd.into_raw();
                    true
                }
                _ => false,
            },
            Err(_) => false,
        };
        if !same && r.kind == KIND_FILE_SHARED && r.run_count == 0 {
            die!(
                "{} (mapped shared and writable at {:#x}) is missing or is not the same file as at checkpoint time",
                Lossy(file),
                r.start
            );
        }
        if !same && verbose {
            eprint_line!(
                "mtcp_restart: note: {} changed or is gone; its mapping is restored from the image",
                Lossy(file)
            );
        }
    }
    files
}

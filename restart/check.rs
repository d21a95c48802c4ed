//! Step 1, check: open the image and read its header and metadata, and check both, the
//! architecture and this CPU's register state against it. Nothing is changed yet: any
//! problem is one line and exit 1.

use mtcp_core::arch;
use mtcp_core::arena::Arena;
use mtcp_core::fmt::ErrnoName;
use mtcp_core::image::{arch_name, parse_header, Header, Meta, ARCH_NATIVE, HEADER_SIZE};
use mtcp_core::sys::{self, Fd};

use crate::window::Window;

/// An image whose header and metadata passed every check.
pub struct Image {
    pub fd: Fd,
    pub header: Header,
    pub meta: Meta<'static>,
}

/// Opens and checks the image; maps the scratch arena the metadata is read into.
pub fn open_image(path: &[u8], window: &Window) -> (Image, Arena) {
    // Non-blocking, so that a FIFO or a device given as the image cannot hang the open;
    // read_header refuses anything but a regular file.
    let fd = match sys::open(path, sys::O_RDONLY | sys::O_CLOEXEC | sys::O_NONBLOCK, 0) {
        Ok(fd) => fd,
        Err(e) => die!("cannot open: {}", ErrnoName(e)),
    };
    let header = read_header(&fd);
    check_machine(&header);
    let mut arena = match Arena::map_at(window.scratch_start, window.scratch_end - window.scratch_start) {
        Ok(a) => a,
        Err(e) => die!(
            "cannot map scratch memory at {:#x}: {}",
            window.scratch_start,
            ErrnoName(e)
        ),
    };
    let meta_len = header.meta_size as usize;
    let meta_buf = match arena.alloc::<u8>(meta_len) {
        Ok(b) => b,
        Err(_) => die!("image metadata ({} bytes) is too large", meta_len),
    };
    // SAFETY: meta_buf is valid for writes of meta_len bytes.
    if let Err(e) = unsafe { sys::pread_exact(fd.raw(), meta_buf.as_mut_ptr(), meta_len, header.meta_offset) } {
        die!("cannot read the metadata: {}", ErrnoName(e));
    }
    let meta = match Meta::parse(&header, meta_buf) {
        Ok(m) => m,
        Err(e) => die!("{}", e.message()),
    };
    check_timers(&meta);
    (Image { fd, header, meta }, arena)
}

fn read_header(fd: &Fd) -> Header {
    let size = match sys::fstat(fd.raw()) {
        Ok(st) if st.mode & 0o170000 == 0o100000 => st.size,
        Ok(_) => die!("not a regular file"),
        Err(e) => die!("cannot stat: {}", ErrnoName(e)),
    };
    let mut hbuf = [0u8; HEADER_SIZE];
    let have = if size >= HEADER_SIZE as u64 { HEADER_SIZE } else { 0 };
    // SAFETY: hbuf is valid for writes of `have` bytes.
    if let Err(e) = unsafe { sys::pread_exact(fd.raw(), hbuf.as_mut_ptr(), have, 0) } {
        die!("cannot read the header: {}", ErrnoName(e));
    }
    match parse_header(&hbuf[..have], size) {
        Ok(h) => h,
        Err(e) => die!("{}", e.message()),
    }
}

/// The image must be for this architecture, page size and (at least) this CPU's
/// register state: the saved signal frames hold xsave areas.
fn check_machine(header: &Header) {
    if header.arch != ARCH_NATIVE {
        die!(
            "this is an {} image; this mtcp_restart is for {} (`mtcp restart` picks the right one)",
            arch_name(header.arch),
            arch_name(ARCH_NATIVE)
        );
    }
    if header.page_size as usize != arch::PAGE_SIZE {
        die!(
            "image page size {} differs from this system's {}",
            header.page_size,
            arch::PAGE_SIZE
        );
    }
    let (xfeatures, xsave_size) = arch::xsave_features();
    if header.xfeatures & !xfeatures != 0 {
        die!(
            "this CPU lacks register state the image holds (image xfeatures {:#x}, this CPU {:#x})",
            header.xfeatures,
            xfeatures
        );
    }
    if header.xsave_size > xsave_size {
        die!(
            "this CPU's register save area ({} bytes) is smaller than the image's ({})",
            xsave_size,
            header.xsave_size
        );
    }
}

/// Every POSIX timer of the image must be one the runtime can recreate (its clock and
/// target thread found in the image): it is refused now, while nothing has changed.
fn check_timers(meta: &Meta) {
    let pid = meta.process().pid as u32;
    let in_image = |tid: u32| {
        (0..meta.thread_count)
            .any(|i| meta.thread(i).tid == tid as u64)
            .then_some(tid)
    };
    for i in 0..meta.timer_count() {
        if let Err(why) = meta.timer(i).restored(pid, meta.thread_count, in_image) {
            die!("{}", why);
        }
    }
}

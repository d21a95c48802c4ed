//! Writing an image: plan regions and page runs from smaps and pagemap, then write the
//! data, the metadata and the header into a temporary file that is renamed into place.
//!
//! Runs on a stack inside its scratch arena, so it needs almost nothing of the
//! interrupted thread's stack.

use core::fmt::Write;
use core::mem::size_of;
use syscalls::Errno;

use mtcp_core::arch;
use mtcp_core::arena::{Arena, ArenaVec};
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::*;
use mtcp_core::maps::{self, MapEntry};
use mtcp_core::protocol::{temp_image_writer, TempImageName};
use mtcp_core::sys::{self, CPath, Fd, IoVec, PageMap};
use mtcp_core::xxh64::xxh64;

use crate::config::CONFIG;
use crate::progress::Progress;
use crate::state::{FailMessage, Runtime, Slot};

const PAGE: usize = arch::PAGE_SIZE;
#[cfg(target_pointer_width = "64")]
const ARENA_SIZE: usize = 1 << 30;
#[cfg(target_pointer_width = "32")]
const ARENA_SIZE: usize = 64 << 20;
const WRITER_STACK: usize = 256 << 10;
const PAGEMAP_CHUNK: usize = 4096;
/// Page regions one PAGEMAP_SCAN returns at most.
const SCAN_REGIONS: usize = 4096;
/// Data is hashed and written in pieces of at most this many bytes, so that the write
/// reads what the hash just brought into the cache.
const BATCH: usize = 256 << 10;
/// Written data is handed to writeback in steps of this many bytes, so that the final
/// fsync finds most of it on its way to the disk already.
const WRITEBACK_STEP: u64 = 32 << 20;
/// Metadata starts on the page after the header.
const META_OFFSET: u64 = PAGE as u64;

fn fail(what: &str, path: &[u8], e: Errno) -> FailMessage {
    let mut m = FailMessage::new();
    if path.is_empty() {
        let _ = write!(m, "{}: {}", what, ErrnoName(e));
    } else {
        let _ = write!(m, "{} {}: {}", what, Lossy(path), ErrnoName(e));
    }
    m
}

/// Scratch memory for one checkpoint and the stack (at its start) that the coordinator
/// runs on: a thread's own stack may be as small as PTHREAD_STACK_MIN. Returns the arena
/// and the top of that stack.
pub fn map_scratch() -> Result<(Arena, usize), FailMessage> {
    // The reservation is only backed where touched, but strict overcommit accounting
    // (vm.overcommit_memory=2) counts all of it: ask for less until it fits.
    let mut size = ARENA_SIZE;
    let mut arena = loop {
        match Arena::map(size) {
            Ok(a) => break a,
            Err(e) if size <= 16 << 20 => return Err(fail("cannot map scratch memory", b"", e)),
            Err(_) => size /= 4,
        }
    };
    match arena.alloc::<u8>(WRITER_STACK) {
        Ok(stack) => {
            let top = stack.as_ptr() as usize + stack.len();
            Ok((arena, top))
        }
        Err(e) => {
            arena.unmap();
            Err(fail("cannot map scratch memory", b"", e))
        }
    }
}

/// A region being planned, with its path still pointing into the smaps text.
#[derive(Clone, Copy)]
struct Plan {
    rec: RegionRecord,
    path_start: usize,
    path_len: usize,
    /// What to save (see `Mode`).
    mode: u8,
    /// For MODE_FILE_TAIL: pages backed by the file.
    file_pages: u64,
    /// Where a copy of the region's saved pages waits (their runs one after the other),
    /// made before a forked writer started: 0 when the writer reads the region itself.
    aside: usize,
}

/// Every page.
const MODE_NONE: u8 = 0;
const MODE_ALL: u8 = 1;
/// Pages that were ever populated (present or swapped), skipping all-zero ones.
const MODE_POPULATED: u8 = 2;
/// Pages inside the file, plus populated pages past its end (reading those would fault).
const MODE_FILE_TAIL: u8 = 3;

/// What the image must know about the runtime itself: where restore enters, and memory
/// that is never worth saving (the restore code's own stack).
pub struct Unsaved {
    pub restore_entry: usize,
    pub restore_stack: (usize, usize),
}

/// What `prepare` learned of the parked process: everything a writer needs besides the
/// memory itself.
pub struct Prepared {
    facts: Facts,
    plans: &'static mut [Plan],
    runs: &'static mut [Run],
    restore_entry: usize,
    /// The program, as status and progress files name it (a forked writer is another
    /// process).
    owner: mtcp_core::protocol::ProcName,
}

/// The part of a checkpoint that needs the process itself, parked: its facts, its
/// regions and the runs of pages to save. Call it (and `write_prepared`) on the
/// scratch stack (see `map_scratch`): they need a few hundred KiB.
pub fn prepare(rt: &mut Runtime, arena: &mut Arena, unsaved: &Unsaved) -> Result<Prepared, FailMessage> {
    let facts = gather_facts(rt, arena)?;
    let plans = plan_regions(arena, facts.smaps)?;
    let runs = plan_runs(arena, plans, facts.pagemap.raw(), unsaved.restore_stack)?;
    Ok(Prepared {
        facts,
        plans,
        runs,
        restore_entry: unsaved.restore_entry,
        owner: sys::own_proc_name(),
    })
}

/// Lays out and writes the image `prepare` planned, and records its path in `rt`.
/// `release`: the memory read is a snapshot of the writer's own (a forked writer),
/// given back page by page once written, which bounds what copy-on-write costs the
/// program meanwhile; never for the program's own memory.
pub fn write_prepared(rt: &mut Runtime, arena: &mut Arena, p: &mut Prepared, release: bool) -> Result<(), FailMessage> {
    let layout = lay_out(&rt.slots[..rt.thread_count], p.plans, p.runs, &p.facts);
    let path = write_file(rt, arena, p, &layout, release)?;
    rt.image_path[..path.as_bytes().len()].copy_from_slice(path.as_bytes());
    rt.image_path_len = path.as_bytes().len();
    Ok(())
}

/// Regions a forked writer cannot read itself: not in its copy of the address space
/// (MADV_DONTFORK), zeros there (MADV_WIPEONFORK), or shared with the program, which
/// goes on changing them (shared anonymous memory, memfds).
fn needs_aside(plan: &Plan) -> bool {
    plan.rec.flags & (REGION_DONTFORK | REGION_WIPEONFORK) != 0 || plan.rec.kind == KIND_ANON_SHARED
}

impl Prepared {
    /// Bytes that must be copied aside before a forked writer starts.
    pub fn aside_bytes(&self) -> usize {
        self.plans
            .iter()
            .filter(|p| needs_aside(p))
            .map(|p| {
                self.runs[p.rec.run_first as usize..(p.rec.run_first + p.rec.run_count) as usize]
                    .iter()
                    .map(|r| r.pages as usize * PAGE)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Copies the saved pages of the regions a forked writer cannot read itself into
    /// `buf` (at least `aside_bytes` long, page-aligned), for the writer to read there.
    ///
    /// # Safety
    /// Every other thread is parked: nothing changes those regions while they are copied.
    pub unsafe fn copy_aside(&mut self, buf: &mut [u8]) -> Result<(), FailMessage> {
        let mut at = 0usize;
        for plan in self.plans.iter_mut().filter(|p| needs_aside(p)) {
            let rec = plan.rec;
            let runs = &self.runs[rec.run_first as usize..(rec.run_first + rec.run_count) as usize];
            if runs.is_empty() {
                continue;
            }
            plan.aside = buf.as_ptr() as usize + at;
            let unreadable = rec.prot & PROT_READ == 0;
            if unreadable {
                // SAFETY: adds read access for the copy only; put back below, before any
                // other thread runs.
                unsafe { sys::mprotect(rec.start as usize, rec.len() as usize, (rec.prot | PROT_READ) as usize) }
                    .map_err(|e| fail("cannot read memory at", b"", e))?;
            }
            for run in runs {
                let n = run.pages as usize * PAGE;
                let addr = rec.start as usize + run.page_index as usize * PAGE;
                // SAFETY: the run lies in this mapping, readable now.
                let mem = unsafe { core::slice::from_raw_parts(addr as *const u8, n) };
                buf[at..at + n].copy_from_slice(mem);
                at += n;
            }
            if unreadable {
                // SAFETY: puts back the protection the program chose.
                let _ = unsafe { sys::mprotect(rec.start as usize, rec.len() as usize, rec.prot as usize) };
            }
        }
        Ok(())
    }

    /// Where the image will be (the image directory and its name).
    pub fn image_path(&self, rt: &Runtime) -> CPath {
        let dir = cfg_dir();
        let mut path = CPath::new(dir).unwrap_or_else(|_| CPath::new(b"").unwrap_or_else(|_| unreachable_path()));
        let _ = path.push(b"/");
        let _ = path.push(image_name(rt).as_bytes());
        path
    }
}

#[cold]
fn unreachable_path() -> ! {
    mtcp_core::eprint_line!("mtcp: internal error: an empty path does not fit");
    sys::exit_group(70)
}

/// What the writer reads of the process before it opens any file of its own.
struct Facts {
    cwd: &'static [u8],
    exe: &'static [u8],
    fds: crate::fds::OpenFiles,
    timers: &'static [TimerRecord],
    smaps: &'static [u8],
    pagemap: Fd,
}

/// Fills the process record and reads cwd, exe, open files, POSIX timers, smaps and the
/// page map.
fn gather_facts(rt: &mut Runtime, arena: &mut Arena) -> Result<Facts, FailMessage> {
    // SAFETY: the configuration is written only before the first checkpoint.
    let cfg = unsafe { &*CONFIG.get() };
    crate::capture::capture_process(&mut rt.process);
    rt.generation += 1;
    let p = &mut rt.process;
    p.vpid = rt.vpid as u64;
    p.generation = rt.generation;
    p.checkpoint_signal = cfg.signal;
    p.interval_sec = cfg.interval_sec;
    p.flags = PROCESS_NAMESPACE_READY | if rt.in_namespace { PROCESS_IN_NAMESPACE } else { 0 };

    let nomem = |e| fail("out of scratch memory while reading the process", b"", e);
    let cwd_buf = arena.alloc::<u8>(4096).map_err(nomem)?;
    let cwd: &'static [u8] = sys::getcwd(cwd_buf).unwrap_or(b"");
    rt.cwd[..cwd.len()].copy_from_slice(cwd);
    rt.cwd_len = cwd.len();
    let exe_buf = arena.alloc::<u8>(4096).map_err(nomem)?;
    let exe: &'static [u8] = sys::readlink(b"/proc/self/exe", exe_buf).unwrap_or(b"");

    crate::deleted_files::refuse_oversized()?;
    // Before the writer opens any file of its own.
    let fds = crate::fds::capture(arena).map_err(|e| fail("cannot list open files in", b"/proc/self/fd", e))?;
    // SAFETY: the writer runs in the coordinator while every other thread is parked.
    let timers = unsafe { crate::timers::capture(arena)? };
    let smaps = arena
        .read_file(b"/proc/self/smaps")
        .map_err(|e| fail("cannot read", b"/proc/self/smaps", e))?;
    let pagemap = sys::open(b"/proc/self/pagemap", sys::O_RDONLY | sys::O_CLOEXEC, 0)
        .map_err(|e| fail("cannot open", b"/proc/self/pagemap", e))?;
    Ok(Facts {
        cwd,
        exe,
        fds,
        timers,
        smaps,
        pagemap,
    })
}

fn out_of_scratch(e: Errno) -> FailMessage {
    fail("out of scratch memory while planning the image", b"", e)
}

/// Step 1: one plan per mapping of smaps, the scratch arena cut out.
fn plan_regions(arena: &mut Arena, smaps: &'static [u8]) -> Result<&'static mut [Plan], FailMessage> {
    let (arena_start, arena_end) = (arena.base, arena.base + arena.size);
    let mut plans = arena.vec::<Plan>();
    for entry in maps::entries(smaps) {
        let entry = match entry {
            Some(e) => e,
            None => {
                let mut m = FailMessage::new();
                let _ = write!(m, "cannot parse a line of /proc/self/smaps");
                return Err(m);
            }
        };
        // The arena is ours alone; cut it out even if the kernel merged it with a neighbour.
        for (start, end) in [
            (entry.start, entry.end.min(arena_start)),
            (entry.start.max(arena_end), entry.end),
        ] {
            if start < end {
                let mut piece = entry;
                if piece.start != start {
                    piece.offset += (start - piece.start) as u64;
                }
                piece.start = start;
                piece.end = end;
                if let Some(plan) = classify(&piece, smaps)? {
                    plans.push(plan).map_err(out_of_scratch)?;
                }
            }
        }
    }
    Ok(plans.finish())
}

/// Step 2: the runs of pages to save, region by region (each plan records its range of
/// runs). Nothing in `unsaved` is kept.
fn plan_runs(
    arena: &mut Arena,
    plans: &mut [Plan],
    pagemap: i32,
    unsaved: (usize, usize),
) -> Result<&'static mut [Run], FailMessage> {
    let regions = arena.alloc::<sys::PageRegion>(SCAN_REGIONS).map_err(out_of_scratch)?;
    let entries = arena.alloc::<u64>(PAGEMAP_CHUNK).map_err(out_of_scratch)?;
    let mut pm = PageMap::new(pagemap, regions, entries);
    let mut runs = arena.vec::<Run>();
    for plan in plans.iter_mut() {
        plan.rec.run_first = runs.len() as u32;
        plan_region_runs(plan, &mut pm, unsaved, &mut runs).map_err(|e| match e {
            Errno::ENOMEM => out_of_scratch(e),
            e => fail("cannot read", b"/proc/self/pagemap", e),
        })?;
        plan.rec.run_count = runs.len() as u32 - plan.rec.run_first;
    }
    Ok(runs.finish())
}

/// Where each table of the metadata goes, and where the data starts.
struct Layout {
    index: MetaIndex,
    meta_size: usize,
    data_offset: u64,
    file_size: u64,
    thread_count: usize,
}

/// Step 3: header page, metadata (index, process, threads, regions, runs, fds, timers,
/// strings), then the page-aligned data; gives each run its place in the file.
fn lay_out(threads: &[Slot], plans: &[Plan], runs: &mut [Run], facts: &Facts) -> Layout {
    let mut strings_size = facts.cwd.len() + facts.exe.len() + facts.fds.paths.len();
    for plan in plans.iter() {
        strings_size += plan.path_len;
    }
    let process_offset = align8(size_of::<MetaIndex>());
    let thread_offset = align8(process_offset + size_of::<ProcessRecord>());
    let region_offset = align8(thread_offset + threads.len() * size_of::<ThreadRecord>());
    let run_offset = align8(region_offset + plans.len() * size_of::<RegionRecord>());
    let fd_offset = align8(run_offset + core::mem::size_of_val(runs));
    let timer_offset = align8(fd_offset + core::mem::size_of_val(facts.fds.records));
    let strings_offset = align8(timer_offset + core::mem::size_of_val(facts.timers));
    let meta_size = strings_offset + strings_size;
    let data_offset = align_up(META_OFFSET + meta_size as u64, PAGE as u64);
    let mut cursor = data_offset;
    for run in runs.iter_mut() {
        run.file_offset = cursor;
        cursor += run.pages * PAGE as u64;
    }
    Layout {
        index: MetaIndex {
            process_offset: process_offset as u64,
            thread_offset: thread_offset as u64,
            region_offset: region_offset as u64,
            run_offset: run_offset as u64,
            strings_offset: strings_offset as u64,
            strings_size: strings_size as u64,
            fd_offset: fd_offset as u64,
            fd_count: facts.fds.records.len() as u64,
            timer_offset: timer_offset as u64,
            timer_count: facts.timers.len() as u64,
            reserved: [0; 6],
        },
        meta_size,
        data_offset,
        file_size: cursor,
        thread_count: threads.len(),
    }
}

/// `ckpt_<comm>_<vpid>.mtcp`, with anything but `[A-Za-z0-9._-]` in the name made `_`.
fn image_name(rt: &Runtime) -> FmtBuf<128> {
    let mut name = FmtBuf::<128>::new();
    let _ = write!(name, "ckpt_");
    for &c in rt.process.comm.iter().take_while(|&&c| c != 0) {
        name.push_bytes(&[if c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_' {
            c
        } else {
            b'_'
        }]);
    }
    let _ = write!(name, "_{}.mtcp", rt.vpid);
    name
}

/// Step 4: data, metadata and header into a temporary file in the image directory,
/// fsynced and renamed into place (a failure removes it and leaves the previous image
/// as it was). Returns the image's path.
fn write_file(
    rt: &Runtime,
    arena: &mut Arena,
    p: &mut Prepared,
    layout: &Layout,
    release: bool,
) -> Result<CPath, FailMessage> {
    let (facts, restore_entry) = (&p.facts, p.restore_entry);
    let (plans, runs): (&mut [Plan], &[Run]) = (p.plans, p.runs);
    let dir = cfg_dir();
    let name = image_name(rt);
    // Unpredictable and this writer's own: nobody can plant it in a shared directory,
    // and two processes of one computation (a restarted copy beside its original) never
    // write the same one. The pid lets the next checkpoint remove it if we die.
    let mut tmp_name = FmtBuf::<200>::new();
    let _ = write!(
        tmp_name,
        "{}",
        TempImageName {
            image: name.as_bytes(),
            writer: sys::own_proc_name(),
            random: sys::random_u64(),
        }
    );
    let mut final_path = CPath::new(dir).map_err(|e| fail("bad image directory", dir, e))?;
    let _ = final_path.push(b"/");
    let _ = final_path.push(name.as_bytes());

    let dirfd = crate::config::open_image_dir(dir).map_err(|m| {
        let mut f = FailMessage::new();
        f.push_bytes(m.as_bytes());
        f
    })?;
    let tmp = CPath::new(tmp_name.as_bytes()).map_err(|e| fail("bad image name", tmp_name.as_bytes(), e))?;
    let fd = sys::openat(
        dirfd.raw(),
        &tmp,
        sys::O_WRONLY | sys::O_CREAT | sys::O_EXCL | sys::O_NOFOLLOW | sys::O_CLOEXEC,
        0o600,
    )
    .map_err(|e| fail("cannot create", final_path.as_bytes(), e))?;

    let mut progress = Progress::start(layout.file_size, p.owner);
    let written = (|| -> Result<(), FailMessage> {
        let wfail = |e| fail("cannot write", final_path.as_bytes(), e);
        let bounce = arena.alloc::<u8>(BATCH).map_err(out_of_scratch)?;
        write_data(fd.raw(), plans, runs, bounce, release, &mut progress).map_err(wfail)?;
        let meta = arena.alloc::<u8>(layout.meta_size).map_err(out_of_scratch)?;
        fill_metadata(meta, rt, facts, plans, runs, layout);
        sys::pwrite_all(fd.raw(), meta, META_OFFSET).map_err(wfail)?;
        let header = seal_header(layout, xxh64(meta, 0), plans.len(), runs.len(), restore_entry);
        sys::pwrite_all(fd.raw(), as_bytes(&header), 0).map_err(wfail)?;
        progress.syncing();
        sys::fsync(fd.raw()).map_err(wfail)
    })();
    drop(fd);
    let renamed = written.and_then(|()| {
        let dst = CPath::new(name.as_bytes()).map_err(|e| fail("bad image name", name.as_bytes(), e))?;
        sys::renameat(dirfd.raw(), &tmp, dirfd.raw(), &dst)
            .map_err(|e| fail("cannot rename the image to", final_path.as_bytes(), e))
    });
    progress.finish(renamed.is_ok());
    match renamed {
        Ok(()) => {
            // Make the rename itself durable.
            let _ = sys::fsync(dirfd.raw());
            remove_dead_temporaries(&dirfd);
            Ok(final_path)
        }
        Err(m) => {
            let _ = sys::unlinkat(dirfd.raw(), &tmp);
            Err(m)
        }
    }
}

/// Temporary images whose writer is gone (killed in the middle of a checkpoint), ours
/// to remove: they are only ever reclaimed here, by the next checkpoint in the directory
/// (or by `mtcp clean`).
fn remove_dead_temporaries(dir: &sys::Fd) {
    let owner = sys::geteuid();
    let _ = sys::for_each_dir_entry(dir, |entry| {
        let writer_gone = temp_image_writer(entry).is_some_and(sys::named_process_gone);
        if !writer_gone {
            return;
        }
        let Ok(path) = CPath::new(entry) else {
            return;
        };
        // Never another user's file (in a shared, sticky directory it could not be
        // removed anyway), never through a link.
        let mine = sys::statx(dir.raw(), &path, sys::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.uid == owner && st.mode as u32 & 0o170000 == 0o100000);
        if mine {
            let _ = sys::unlinkat(dir.raw(), &path);
        }
    });
}

/// The metadata block: index, records and the string table they refer to.
fn fill_metadata(meta: &mut [u8], rt: &Runtime, facts: &Facts, plans: &[Plan], runs: &[Run], layout: &Layout) {
    let index = &layout.index;
    let (tables, string_area) = meta.split_at_mut(index.strings_offset as usize);
    put(tables, 0, index);
    let mut strings = StringTable {
        buf: string_area,
        len: 0,
    };
    let mut process = rt.process;
    process.cwd = strings.add(facts.cwd);
    process.exe = strings.add(facts.exe);
    put(tables, index.process_offset as usize, &process);
    for (i, plan) in plans.iter().enumerate() {
        let mut rec = plan.rec;
        rec.path = strings.add(&facts.smaps[plan.path_start..plan.path_start + plan.path_len]);
        put(
            tables,
            index.region_offset as usize + i * size_of::<RegionRecord>(),
            &rec,
        );
    }
    for (i, slot) in rt.slots[..layout.thread_count].iter().enumerate() {
        put(
            tables,
            index.thread_offset as usize + i * size_of::<ThreadRecord>(),
            &slot.rec,
        );
    }
    for (i, run) in runs.iter().enumerate() {
        put(tables, index.run_offset as usize + i * size_of::<Run>(), run);
    }
    let fds = &facts.fds;
    for (i, (rec, range)) in fds.records.iter().zip(fds.ranges.iter()).enumerate() {
        let mut rec = *rec;
        rec.path = strings.add(&fds.paths[range.0..range.1]);
        let data = fds.data_ranges[i];
        rec.data = strings.add(&fds.paths[data.0..data.1]);
        put(tables, index.fd_offset as usize + i * size_of::<FdRecord>(), &rec);
    }
    for (i, timer) in facts.timers.iter().enumerate() {
        put(
            tables,
            index.timer_offset as usize + i * size_of::<TimerRecord>(),
            timer,
        );
    }
}

/// The header, written last: it is what makes the file an image.
fn seal_header(layout: &Layout, meta_checksum: u64, regions: usize, runs: usize, restore_entry: usize) -> Header {
    let (xfeatures, xsave_size) = arch::xsave_features();
    let (sec, nsec) = sys::realtime();
    let mut h = Header::zeroed();
    h.magic = MAGIC;
    h.version = VERSION;
    h.arch = ARCH_NATIVE;
    h.header_size = HEADER_SIZE as u32;
    h.page_size = PAGE as u32;
    h.meta_offset = META_OFFSET;
    h.meta_size = layout.meta_size as u64;
    h.meta_checksum = meta_checksum;
    h.data_offset = layout.data_offset;
    h.data_size = layout.file_size - layout.data_offset;
    h.file_size = layout.file_size;
    h.restore_entry = restore_entry as u64;
    h.xfeatures = xfeatures;
    h.xsave_size = xsave_size;
    h.thread_count = layout.thread_count as u32;
    h.region_count = regions as u32;
    h.run_count = runs as u32;
    h.time_sec = sec;
    h.time_nsec = nsec;
    h.seal();
    h
}

fn cfg_dir() -> &'static [u8] {
    // SAFETY: the configuration is written only before the first checkpoint.
    unsafe { (*CONFIG.get()).dir() }
}

fn align8(v: usize) -> usize {
    (v + 7) & !7
}

fn put<T: Copy>(buf: &mut [u8], offset: usize, value: &T) {
    buf[offset..offset + size_of::<T>()].copy_from_slice(as_bytes(value));
}

struct StringTable<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl StringTable<'_> {
    fn add(&mut self, s: &[u8]) -> StrRef {
        let r = StrRef {
            offset: self.len as u32,
            len: s.len() as u32,
        };
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        r
    }
}

/// Decides how a mapping is rebuilt and what of it is saved; None for mappings that
/// are not part of the process (vsyscall, uprobes).
fn classify(e: &MapEntry, text: &[u8]) -> Result<Option<Plan>, FailMessage> {
    let path = e.path(text);
    let mut rec = RegionRecord {
        start: e.start as u64,
        end: e.end as u64,
        prot: e.prot,
        file_offset: e.offset,
        dev_major: e.dev_major,
        dev_minor: e.dev_minor,
        inode: e.inode,
        ..RegionRecord::default()
    };
    let vm = e.vmflags;
    for (bit, flag) in [
        (maps::VM_GROWSDOWN, REGION_GROWSDOWN),
        (maps::VM_NORESERVE, REGION_NORESERVE),
        (maps::VM_DONTFORK, REGION_DONTFORK),
        (maps::VM_WIPEONFORK, REGION_WIPEONFORK),
        (maps::VM_DONTDUMP, REGION_DONTDUMP),
        (maps::VM_HUGEPAGE, REGION_HUGEPAGE),
        (maps::VM_NOHUGEPAGE, REGION_NOHUGEPAGE),
        (maps::VM_MERGEABLE, REGION_MERGEABLE),
    ] {
        if vm & bit != 0 {
            rec.flags |= flag;
        }
    }
    let mut plan = Plan {
        rec,
        path_start: e.path_start,
        path_len: e.path_len,
        mode: MODE_NONE,
        file_pages: 0,
        aside: 0,
    };
    let readable = e.prot & PROT_READ != 0;
    let deleted_suffix: &[u8] = b" (deleted)";
    match path {
        b"[vsyscall]" | b"[uprobes]" => return Ok(None),
        b"[vdso]" => plan.rec.kind = KIND_VDSO,
        b"[vvar]" => plan.rec.kind = KIND_VVAR,
        b"[vvar_vclock]" => plan.rec.kind = KIND_VVAR_VCLOCK,
        _ if path.is_empty() || path[0] == b'[' => {
            if path == b"[heap]" {
                plan.rec.flags |= REGION_HEAP;
            }
            if path == b"[stack]" {
                plan.rec.flags |= REGION_STACK | REGION_GROWSDOWN;
            }
            if e.shared {
                plan.rec.kind = KIND_ANON_SHARED;
                plan.mode = if readable { MODE_ALL } else { MODE_POPULATED };
            } else {
                plan.rec.kind = KIND_ANON_PRIVATE;
                let never_touched = e.have_vmflags && e.rss_kb == 0 && e.swap_kb == 0;
                plan.mode = if never_touched { MODE_NONE } else { MODE_POPULATED };
            }
        }
        _ => {
            let deleted = path.ends_with(deleted_suffix);
            if deleted {
                plan.path_len -= deleted_suffix.len();
                plan.rec.flags |= REGION_DELETED;
            }
            let file = &path[..plan.path_len];
            if !deleted {
                if let Ok(st) = CPath::new(file).and_then(|p| sys::statx(sys::AT_FDCWD, &p, 0)) {
                    if st.ino == e.inode && st.dev_major == e.dev_major && st.dev_minor == e.dev_minor {
                        plan.rec.flags |= REGION_FILE_IDENTITY;
                        plan.rec.file_size = st.size;
                        plan.rec.mtime_sec = st.mtime.sec;
                        plan.rec.mtime_nsec = st.mtime.nsec;
                    }
                }
            }
            if e.shared && !deleted {
                // The file holds the data; it is mapped again at restart. Read-only ones
                // also keep their bytes, so a changed or missing file (another machine)
                // can still be restored from the image.
                plan.rec.kind = KIND_FILE_SHARED;
                if readable && e.prot & PROT_WRITE == 0 && plan.rec.flags & REGION_FILE_IDENTITY != 0 {
                    plan.mode = MODE_FILE_TAIL;
                    plan.file_pages = plan.rec.file_size.saturating_sub(e.offset).div_ceil(PAGE as u64);
                }
            } else if e.shared {
                // A deleted or memfd file: keep its bytes, restore as shared anonymous memory.
                plan.rec.kind = KIND_ANON_SHARED;
                plan.mode = if readable { MODE_ALL } else { MODE_POPULATED };
            } else {
                plan.rec.kind = KIND_FILE_PRIVATE;
                if !readable {
                    plan.mode = MODE_POPULATED;
                } else if plan.rec.flags & REGION_FILE_IDENTITY != 0 {
                    plan.mode = MODE_FILE_TAIL;
                    let in_file = plan.rec.file_size.saturating_sub(e.offset);
                    plan.file_pages = in_file.div_ceil(PAGE as u64);
                } else {
                    plan.mode = MODE_ALL;
                }
            }
        }
    }
    let kernel_owned = matches!(plan.rec.kind, KIND_VDSO | KIND_VVAR | KIND_VVAR_VCLOCK);
    if vm & maps::VM_IO != 0 && !kernel_owned {
        let mut m = FailMessage::new();
        let _ = write!(
            m,
            "cannot save device memory mapped at {:#x} ({})",
            e.start,
            Lossy(path)
        );
        return Err(m);
    }
    Ok(Some(plan))
}

/// Appends the runs of saved pages for one region.
fn plan_region_runs(
    plan: &Plan,
    pm: &mut PageMap,
    unsaved: (usize, usize),
    runs: &mut ArenaVec<'_, Run>,
) -> Result<(), Errno> {
    if plan.mode == MODE_NONE {
        return Ok(());
    }
    let start = plan.rec.start as usize;
    let end = plan.rec.end as usize;
    let pages = (end - start) / PAGE;
    let readable = plan.rec.prot & PROT_READ != 0;
    let zero_check = readable && plan.rec.kind == KIND_ANON_PRIVATE;
    // Pages kept whatever the page map says: all of them, or those inside the file.
    let always = match plan.mode {
        MODE_ALL => pages,
        MODE_FILE_TAIL => (plan.file_pages as usize).min(pages),
        _ => 0,
    };
    // Runs of earlier regions must never be extended into this one.
    let first = runs.len();
    let keep = |i: usize, runs: &mut ArenaVec<'_, Run>| -> Result<(), Errno> {
        let own_runs = runs.len() > first;
        match runs.last_mut() {
            Some(r) if own_runs && r.page_index + r.pages == i as u64 => r.pages += 1,
            _ => runs.push(Run {
                page_index: i as u64,
                pages: 1,
                file_offset: 0,
            })?,
        }
        Ok(())
    };
    let saved = |addr: usize| addr < unsaved.0 || addr >= unsaved.1;
    for i in 0..always {
        if saved(start + i * PAGE) {
            keep(i, runs)?;
        }
    }
    if always == pages {
        return Ok(());
    }
    // Past those, only pages ever populated (present or swapped) hold anything: a private
    // page never touched reads as zeros, or as the file.
    pm.populated(start + always * PAGE, end, PAGE, |from, to, zero_page| {
        if zero_page {
            return Ok(());
        }
        let mut addr = from;
        while addr < to {
            // SAFETY: a page-aligned page of this mapping, readable (zero_check) and
            // present; private anonymous memory that only this process's threads write,
            // and they are all parked.
            let zero = zero_check && unsafe { page_is_zero(addr) };
            if saved(addr) && !zero {
                keep((addr - start) / PAGE, runs)?;
            }
            addr += PAGE;
        }
        Ok(())
    })
}

/// Whether the page at `addr` holds only zero bytes.
///
/// # Safety
/// `addr` must be the page-aligned address of a readable page that stays mapped, and
/// that nothing writes, while it is read.
unsafe fn page_is_zero(addr: usize) -> bool {
    // SAFETY: a whole readable page, aligned for u64 and left alone while it is read (our
    // contract); any bits are a valid u64.
    let words = unsafe { core::slice::from_raw_parts(addr as *const u64, PAGE / 8) };
    let mut acc = 0u64;
    for chunk in words.chunks_exact(8) {
        for w in chunk {
            acc |= *w;
        }
        if acc != 0 {
            return false;
        }
    }
    true
}

/// Writes every run's pages and records each region's checksum: in batches of up to
/// BATCH bytes, each hashed and then written with one `pwritev` while it is still in
/// the cache (scattered single pages make one write per batch, not one per page).
fn write_data(
    fd: i32,
    plans: &mut [Plan],
    runs: &[Run],
    bounce: &mut [u8],
    release: bool,
    progress: &mut Progress,
) -> Result<(), Errno> {
    let mut out = Batch {
        fd,
        iov: [IoVec { base: 0, len: 0 }; BATCH / PAGE],
        release: [(0, 0); BATCH / PAGE],
        count: 0,
        bytes: 0,
        offset: 0,
        synced: 0,
    };
    for plan in plans.iter_mut() {
        let rec = &mut plan.rec;
        let mut hash = RegionChecksum::new(VERSION);
        let my_runs = &runs[rec.run_first as usize..(rec.run_first + rec.run_count) as usize];
        // A copy made before the writer started, if any, is what it reads.
        let mut aside = plan.aside;
        let unreadable = rec.prot & PROT_READ == 0 && !my_runs.is_empty() && aside == 0;
        if unreadable {
            // SAFETY: adds read access to a mapping of this process for the copy only;
            // its protection is put back below before any other thread runs.
            unsafe { sys::mprotect(rec.start as usize, rec.len() as usize, (rec.prot | PROT_READ) as usize)? };
        }
        // Shared memory may change under us (another process): hash and write one
        // stable copy.
        let copy = rec.kind == KIND_ANON_SHARED && aside == 0;
        // Only private anonymous memory the writer needs no more is given back: never a
        // file's pages (the writer runs the runtime's code and its relocated data) nor
        // the runtime's own state, which the writer goes on reading.
        let release = release && rec.kind == KIND_ANON_PRIVATE && !holds_runtime_state(rec);
        let result = (|| {
            for run in my_runs {
                hash.start_run(run);
                let mut addr = if aside != 0 {
                    aside
                } else {
                    rec.start as usize + run.page_index as usize * PAGE
                };
                if aside != 0 {
                    aside += run.pages as usize * PAGE;
                }
                let mut left = run.pages as usize * PAGE;
                let mut offset = run.file_offset;
                while left > 0 {
                    out.make_room(offset)?;
                    let n = left.min(BATCH - out.bytes);
                    // SAFETY: [addr, addr+n) lies in this mapping and is readable now.
                    let mem = unsafe { core::slice::from_raw_parts(addr as *const u8, n) };
                    let data: &[u8] = if copy {
                        let b = &mut bounce[out.bytes..out.bytes + n];
                        b.copy_from_slice(mem);
                        b
                    } else {
                        mem
                    };
                    hash.update(data);
                    out.add(data, offset, release && !copy)?;
                    progress.advance(n as u64);
                    addr += n;
                    left -= n;
                    offset += n as u64;
                }
            }
            // The bounce buffer is reused by the next region.
            out.flush()
        })();
        if unreadable {
            // SAFETY: puts back the protection the program chose.
            unsafe {
                let _ = sys::mprotect(rec.start as usize, rec.len() as usize, rec.prot as usize);
            }
        }
        result?;
        rec.data_checksum = hash.digest();
    }
    Ok(())
}

/// Whether the region holds memory the writer reads after writing the data (the
/// runtime's records, configuration and status text).
fn holds_runtime_state(rec: &RegionRecord) -> bool {
    let rt = crate::state::RT.get() as usize;
    let cfg = crate::config::CONFIG.get() as usize;
    let state = [
        (rt, rt + size_of::<Runtime>()),
        (cfg, cfg + size_of::<crate::config::Config>()),
        crate::status::text_range(),
    ];
    state
        .iter()
        .any(|&(from, to)| (from as u64) < rec.end && (to as u64) > rec.start)
}

/// Data waiting to be written with one `pwritev`: consecutive pieces of the file.
struct Batch {
    fd: i32,
    iov: [IoVec; BATCH / PAGE],
    /// For each piece: the pages to give back once written (len 0: none).
    release: [(usize, usize); BATCH / PAGE],
    count: usize,
    bytes: usize,
    /// Where the first piece goes.
    offset: u64,
    /// Bytes up to here have been handed to writeback.
    synced: u64,
}

impl Batch {
    /// Writes what waits if a piece for `offset` cannot join it (it does not follow on,
    /// or there is no room); then up to `BATCH - bytes` bytes can be added.
    fn make_room(&mut self, offset: u64) -> Result<(), Errno> {
        let follows = self.offset + self.bytes as u64 == offset;
        if self.count > 0 && (!follows || self.count == self.iov.len() || self.bytes == BATCH) {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds `data` (at most `BATCH - bytes` bytes, after `make_room(offset)`), which goes
    /// at `offset` of the file. `data` must stay readable and unchanged until the next
    /// flush; with `release`, it is whole pages of the writer's own snapshot, given back
    /// (MADV_DONTNEED) once written.
    fn add(&mut self, data: &[u8], offset: u64, release: bool) -> Result<(), Errno> {
        if self.count == 0 {
            self.offset = offset;
        }
        self.iov[self.count] = IoVec {
            base: data.as_ptr() as usize,
            len: data.len(),
        };
        self.release[self.count] = if release {
            (data.as_ptr() as usize, data.len())
        } else {
            (0, 0)
        };
        self.count += 1;
        self.bytes += data.len();
        if self.bytes == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Errno> {
        if self.count == 0 {
            return Ok(());
        }
        // SAFETY: every buffer was readable when added and stays so until now (add's
        // contract).
        unsafe { sys::pwritev_all(self.fd, &mut self.iov[..self.count], self.offset)? };
        for &(addr, len) in &self.release[..self.count] {
            if len > 0 {
                // The writer's copy of pages it will not read again: the program then
                // owns them alone, and writing them costs it no copy. A failure only
                // keeps them.
                let _ = sys::madvise(addr, len, sys::MADV_DONTNEED);
            }
        }
        let end = self.offset + self.bytes as u64;
        self.count = 0;
        self.bytes = 0;
        if end >= self.synced + WRITEBACK_STEP {
            // Writeback starts now, overlapped with the rest of the write; failures only
            // leave more for fsync.
            let _ = sys::sync_file_range(self.fd, self.synced, end - self.synced, sys::SYNC_FILE_RANGE_WRITE);
            self.synced = end;
        }
        Ok(())
    }
}

//! Image format v3: the on-disk layout shared by the runtime, `mtcp_restart` and `mtcp`.
//!
//! Everything here is plain `#[repr(C)]` data with fixed-width fields, identical for
//! x86_64 and i386 images, so one reader understands both. `docs/image-format.md`
//! describes the same layout in prose; keep the two in step.
//!
//! File layout (all offsets in bytes, little endian):
//!
//! ```text
//! 0                 Header (HEADER_SIZE bytes, padded to one page)
//! meta_offset       MetaIndex, ProcessRecord, ThreadRecord[], RegionRecord[], Run[], FdRecord[],
//!                   TimerRecord[], strings
//! data_offset       page-aligned memory data, one block per Run, in Run order
//! file_size         end of file
//! ```

use core::mem::size_of;
use static_assertions::const_assert_eq;

use crate::xxh64::{xxh64, Xxh64};

pub const MAGIC: [u8; 8] = *b"MTCPIMG\0";
/// The version this code writes. Version 2 binds each region's data checksum to where
/// its runs go (see `RegionChecksum`); version 3 adds the POSIX timer table (and grows
/// the MetaIndex to hold it); version 4 adds message queue descriptors (FD_MQUEUE) and
/// the state of netlink sockets (NetlinkState). Versions 1 to 3 are still read.
pub const VERSION: u32 = 4;
/// The first version with the POSIX timer table and the 128-byte MetaIndex.
pub const TIMERS_VERSION: u32 = 3;
/// The oldest version this code reads.
pub const OLDEST_VERSION: u32 = 1;

/// ELF machine numbers double as architecture ids.
pub const ARCH_I386: u32 = 3;
pub const ARCH_X86_64: u32 = 62;
/// The architecture this code is built for.
pub const ARCH_NATIVE: u32 = crate::arch::ELF_MACHINE;
static_assertions::const_assert!(ARCH_NATIVE == ARCH_I386 || ARCH_NATIVE == ARCH_X86_64);

pub fn arch_name(arch: u32) -> &'static str {
    match arch {
        ARCH_I386 => "i386",
        ARCH_X86_64 => "x86_64",
        _ => "unknown",
    }
}

/// Bytes of the header at offset 0; the metadata starts at `meta_offset` (the writer
/// puts it on the next page).
pub const HEADER_SIZE: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub arch: u32,
    pub header_size: u32,
    pub page_size: u32,
    pub meta_offset: u64,
    pub meta_size: u64,
    /// xxh64 of the metadata bytes `[meta_offset, meta_offset + meta_size)`.
    pub meta_checksum: u64,
    pub data_offset: u64,
    pub data_size: u64,
    pub file_size: u64,
    /// Address of the runtime's restore entry inside the restored memory.
    pub restore_entry: u64,
    /// XCR0 of the checkpointing CPU: which xsave components the saved frames may hold.
    pub xfeatures: u64,
    /// Size of the xsave area for `xfeatures` (cpuid 0xD.0 EBX).
    pub xsave_size: u32,
    pub thread_count: u32,
    pub region_count: u32,
    pub run_count: u32,
    /// Seconds since the epoch when the checkpoint was taken.
    pub time_sec: u64,
    pub time_nsec: u32,
    pub flags: u32,
    pub reserved: [u64; 16],
    /// xxh64 of the header bytes before this field.
    pub header_checksum: u64,
}
const_assert_eq!(size_of::<Header>(), HEADER_SIZE);

impl Header {
    pub const fn zeroed() -> Header {
        Header {
            magic: [0; 8],
            version: 0,
            arch: 0,
            header_size: 0,
            page_size: 0,
            meta_offset: 0,
            meta_size: 0,
            meta_checksum: 0,
            data_offset: 0,
            data_size: 0,
            file_size: 0,
            restore_entry: 0,
            xfeatures: 0,
            xsave_size: 0,
            thread_count: 0,
            region_count: 0,
            run_count: 0,
            time_sec: 0,
            time_nsec: 0,
            flags: 0,
            reserved: [0; 16],
            header_checksum: 0,
        }
    }

    pub fn compute_checksum(&self) -> u64 {
        let bytes = as_bytes(self);
        xxh64(&bytes[..HEADER_SIZE - 8], 0)
    }

    pub fn seal(&mut self) {
        self.header_checksum = self.compute_checksum();
    }
}

/// Offsets (relative to `meta_offset`) of each table in the metadata block. Images
/// before version 3 have only the first 64 bytes (no timers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaIndex {
    pub process_offset: u64,
    pub thread_offset: u64,
    pub region_offset: u64,
    pub run_offset: u64,
    pub strings_offset: u64,
    pub strings_size: u64,
    pub fd_offset: u64,
    pub fd_count: u64,
    /// Version 3: where the `timer_count` TimerRecords start.
    pub timer_offset: u64,
    pub timer_count: u64,
    pub reserved: [u64; 6],
}
const_assert_eq!(size_of::<MetaIndex>(), 128);
const_assert_eq!(core::mem::offset_of!(MetaIndex, timer_offset), 64);
/// The MetaIndex of versions 1 and 2.
pub const META_INDEX_V2_SIZE: usize = 64;

impl MetaIndex {
    /// Bytes of the index in an image of format `version`.
    pub fn size_for(version: u32) -> usize {
        if version >= TIMERS_VERSION {
            size_of::<MetaIndex>()
        } else {
            META_INDEX_V2_SIZE
        }
    }
}

pub const NSIG: usize = 64;
pub const NRLIMITS: usize = 16;
pub const AUXV_WORDS: usize = 128;

/// Handed by mtcp_restart to the runtime's restore entry (same architecture on both sides).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RestartArgs {
    pub magic: u64,
    /// mtcp_restart's own address range, which the runtime unmaps first.
    pub window_start: u64,
    pub window_len: u64,
    pub flags: u64,
    pub image_path_len: u64,
    pub image_path: [u8; 4096],
    /// With RESTART_EXE_FD: a descriptor of the program's executable, unchanged since the
    /// checkpoint, for /proc/PID/exe (the runtime closes it). Last, so that a runtime
    /// that predates it reads the rest as before.
    pub exe_fd: u64,
}

impl RestartArgs {
    pub const fn zeroed() -> RestartArgs {
        RestartArgs {
            magic: 0,
            window_start: 0,
            window_len: 0,
            flags: 0,
            image_path_len: 0,
            image_path: [0; 4096],
            exe_fd: 0,
        }
    }
}

pub const RESTART_ARGS_MAGIC: u64 = 0x6d74_6370_5253_5431; // "mtcpRST1"
/// RestartArgs.flags
pub const RESTART_VERBOSE: u64 = 1;
/// The process already has its old pid: give every thread its old tid too.
pub const RESTART_SAME_PID: u64 = 2;
/// A terminal got its settings back: send the program SIGWINCH once it runs again, so
/// that it looks at its new terminal's size (and redraws).
pub const RESTART_WINCH: u64 = 4;
/// The process runs in namespaces mtcp_restart made for it (its pid seen from outside
/// differs from the one it sees).
pub const RESTART_NAMESPACE: u64 = 8;
/// The process holds capabilities in a user namespace of its own, needed to choose its
/// threads' ids and its /proc/PID/exe: every thread drops them before the program runs.
pub const RESTART_DROP_CAPS: u64 = 16;
/// `exe_fd` is valid.
pub const RESTART_EXE_FD: u64 = 32;
/// New ids were asked for (`--new-ids`), not forced: the runtime's note on what new ids
/// leave stale is only for --verbose then.
pub const RESTART_NEW_IDS_ASKED: u64 = 64;

/// ProcessRecord.flags: the runtime that wrote the image understands RESTART_DROP_CAPS
/// and RESTART_NAMESPACE (an older one would leave the capabilities with the program).
pub const PROCESS_NAMESPACE_READY: u32 = 1;
/// ProcessRecord.flags: the process ran in namespaces mtcp_restart made for it.
pub const PROCESS_IN_NAMESPACE: u32 = 2;

/// One signal's disposition, widened to 64-bit fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SigActionRecord {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
const_assert_eq!(size_of::<SigActionRecord>(), 32);

/// The memory-map fields that `prctl(PR_SET_MM, PR_SET_MM_MAP)` restores.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}
const_assert_eq!(size_of::<MmFields>(), 88);

/// A string in the metadata's string table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StrRef {
    pub offset: u32,
    pub len: u32,
}

/// Process-wide state.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcessRecord {
    pub pid: u64,
    /// Identity of the computation across restarts: the pid of the process that first
    /// ran the runtime (a forked child takes its own pid).
    pub vpid: u64,
    /// How many checkpoints this computation has taken, this one included.
    pub generation: u64,
    pub mm: MmFields,
    pub umask: u32,
    pub personality: u32,
    pub checkpoint_signal: u32,
    pub interval_sec: u32,
    /// Bytes of `auxv` in use: /proc/self/auxv as the kernel gave it.
    pub auxv_bytes: u32,
    pub flags: u32,
    pub cwd: StrRef,
    pub exe: StrRef,
    pub comm: [u8; 16],
    pub auxv: [u64; AUXV_WORDS],
    pub sigactions: [SigActionRecord; NSIG],
    /// Signals pending for the whole process (bit n-1 for signal n); sent again at restart.
    pub pending: u64,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: (interval, time left) in microseconds.
    pub itimers: [[u64; 2]; 3],
    /// getrlimit for RLIMIT_* 0..16: (soft, hard); u64::MAX is unlimited.
    pub rlimits: [[u64; 2]; NRLIMITS],
    pub reserved: [u64; 7],
}
const_assert_eq!(
    size_of::<ProcessRecord>(),
    24 + 88 + 24 + 16 + 16 + AUXV_WORDS * 8 + NSIG * 32 + 8 + 48 + NRLIMITS * 16 + 56
);

impl ProcessRecord {
    pub const fn zeroed() -> ProcessRecord {
        ProcessRecord {
            pid: 0,
            vpid: 0,
            generation: 0,
            mm: MmFields {
                start_code: 0,
                end_code: 0,
                start_data: 0,
                end_data: 0,
                start_brk: 0,
                brk: 0,
                start_stack: 0,
                arg_start: 0,
                arg_end: 0,
                env_start: 0,
                env_end: 0,
            },
            umask: 0,
            personality: 0,
            checkpoint_signal: 0,
            interval_sec: 0,
            auxv_bytes: 0,
            flags: 0,
            cwd: StrRef { offset: 0, len: 0 },
            exe: StrRef { offset: 0, len: 0 },
            comm: [0; 16],
            auxv: [0; AUXV_WORDS],
            sigactions: [SigActionRecord {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            }; NSIG],
            pending: 0,
            itimers: [[0; 2]; 3],
            rlimits: [[0; 2]; NRLIMITS],
            reserved: [0; 7],
        }
    }
}

/// ThreadRecord.flags
pub const THREAD_MAIN: u32 = 1;
pub const THREAD_RSEQ: u32 = 2;
pub const THREAD_COORDINATOR: u32 = 4;

/// Per-thread state. Registers, FPU state and the signal mask live in the signal
/// frame on the thread's own stack (saved with memory); `sp`/`ip` here are copies for
/// inspection.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadRecord {
    pub tid: u64,
    pub flags: u32,
    pub rseq_len: u32,
    pub tls_base: u64,
    /// i386: the GDT entry number behind %gs; x86_64: the gs base.
    pub tls_aux: u64,
    pub clear_child_tid: u64,
    pub robust_list: u64,
    pub robust_list_len: u64,
    pub rseq: u64,
    pub rseq_sig: u32,
    pub altstack_flags: u32,
    pub altstack_sp: u64,
    pub altstack_size: u64,
    pub sigmask: u64,
    pub sp: u64,
    pub ip: u64,
    pub name: [u8; 16],
    /// Signals pending for this thread (bit n-1 for signal n); sent again at restart.
    pub pending: u64,
    /// Scheduling policy as sched_getscheduler gives it (SCHED_RESET_ON_FORK included),
    /// its static priority, and the nice value (when THREAD_SCHED is set: version 1
    /// images have zeros here, recorded nothing).
    pub sched_policy: u32,
    pub sched_priority: u32,
    pub nice: i32,
    /// THREAD_SCHED, THREAD_AFFINITY: which of these fields were recorded.
    pub sched_flags: u32,
    /// The CPUs (0-63) the thread may run on, when THREAD_AFFINITY is set.
    pub affinity: u64,
}
const_assert_eq!(size_of::<ThreadRecord>(), 160);
const_assert_eq!(core::mem::offset_of!(ThreadRecord, sched_policy), 136);
const_assert_eq!(core::mem::offset_of!(ThreadRecord, affinity), 152);

/// ThreadRecord.sched_flags
pub const THREAD_SCHED: u32 = 1;
/// The thread's CPU set fits in `affinity` (the machine has at most 64 CPUs).
pub const THREAD_AFFINITY: u32 = 2;

impl ThreadRecord {
    pub const fn zeroed() -> ThreadRecord {
        ThreadRecord {
            tid: 0,
            flags: 0,
            rseq_len: 0,
            tls_base: 0,
            tls_aux: 0,
            clear_child_tid: 0,
            robust_list: 0,
            robust_list_len: 0,
            rseq: 0,
            rseq_sig: 0,
            altstack_flags: 0,
            altstack_sp: 0,
            altstack_size: 0,
            sigmask: 0,
            sp: 0,
            ip: 0,
            name: [0; 16],
            pending: 0,
            sched_policy: 0,
            sched_priority: 0,
            nice: 0,
            sched_flags: 0,
            affinity: 0,
        }
    }
}

/// RegionRecord.kind: how the region is rebuilt.
pub const KIND_ANON_PRIVATE: u32 = 1;
pub const KIND_FILE_PRIVATE: u32 = 2;
pub const KIND_FILE_SHARED: u32 = 3;
pub const KIND_ANON_SHARED: u32 = 4;
/// Kernel-provided mappings: recorded (address and size), never saved.
pub const KIND_VDSO: u32 = 5;
pub const KIND_VVAR: u32 = 6;
pub const KIND_VVAR_VCLOCK: u32 = 7;

pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_ANON_PRIVATE => "anon",
        KIND_FILE_PRIVATE => "file",
        KIND_FILE_SHARED => "file-shared",
        KIND_ANON_SHARED => "anon-shared",
        KIND_VDSO => "vdso",
        KIND_VVAR => "vvar",
        KIND_VVAR_VCLOCK => "vvar_vclock",
        _ => "?",
    }
}

/// RegionRecord.prot (same bits as PROT_*).
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// RegionRecord.flags
pub const REGION_GROWSDOWN: u32 = 1 << 0;
pub const REGION_NORESERVE: u32 = 1 << 1;
pub const REGION_HEAP: u32 = 1 << 2;
pub const REGION_STACK: u32 = 1 << 3;
/// The backing file was deleted (or is a memfd) when the checkpoint was taken.
pub const REGION_DELETED: u32 = 1 << 4;
/// madvise hints to give back.
pub const REGION_DONTFORK: u32 = 1 << 5;
pub const REGION_WIPEONFORK: u32 = 1 << 6;
pub const REGION_DONTDUMP: u32 = 1 << 7;
pub const REGION_HUGEPAGE: u32 = 1 << 8;
pub const REGION_NOHUGEPAGE: u32 = 1 << 9;
pub const REGION_MERGEABLE: u32 = 1 << 10;
/// The region's file identity (dev, inode, size, mtime) was read at checkpoint time.
pub const REGION_FILE_IDENTITY: u32 = 1 << 11;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionRecord {
    pub start: u64,
    pub end: u64,
    pub kind: u32,
    pub prot: u32,
    pub flags: u32,
    pub run_first: u32,
    pub run_count: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mtime_nsec: u32,
    pub file_offset: u64,
    pub inode: u64,
    pub file_size: u64,
    pub mtime_sec: i64,
    pub path: StrRef,
    /// xxh64 over this region's data blocks, in run order.
    pub data_checksum: u64,
}
const_assert_eq!(size_of::<RegionRecord>(), 96);

impl RegionRecord {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The checksum a region's `data_checksum` holds: xxh64 over its runs in order, each
/// (from version 2 on) preceded by its `page_index` and `pages` as little-endian u64, so
/// that data moved to another place in the region does not pass.
pub struct RegionChecksum {
    hash: Xxh64,
    binds_places: bool,
}

impl RegionChecksum {
    /// For an image of format `version`.
    pub fn new(version: u32) -> RegionChecksum {
        RegionChecksum {
            hash: Xxh64::new(0),
            binds_places: version >= 2,
        }
    }

    /// Before each run's data.
    pub fn start_run(&mut self, run: &Run) {
        if self.binds_places {
            self.hash.update(&run.page_index.to_le_bytes());
            self.hash.update(&run.pages.to_le_bytes());
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
    }

    pub fn digest(&self) -> u64 {
        self.hash.digest()
    }
}

/// A run of saved pages: `pages` pages starting `page_index` pages into the region,
/// stored at `file_offset` in the image.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub page_index: u64,
    pub pages: u64,
    pub file_offset: u64,
}
const_assert_eq!(size_of::<Run>(), 24);

/// FdRecord.kind
pub const FD_FILE: u32 = 1;
pub const FD_DIR: u32 = 2;
/// A character device (terminal, /dev/null, ...).
pub const FD_CHAR: u32 = 3;
/// Anything else (an inotify instance, say): recorded, not restorable.
pub const FD_OTHER: u32 = 4;
/// One end of a pipe. A pipe whose both ends are in the process comes back, with the
/// bytes that were in it (held by the read end's record).
pub const FD_PIPE: u32 = 5;
/// An eventfd; `data` holds its EventFdState.
pub const FD_EVENTFD: u32 = 6;
/// A timerfd; `data` holds its TimerFdState.
pub const FD_TIMERFD: u32 = 7;
/// A signalfd; `data` holds its SignalFdState.
pub const FD_SIGNALFD: u32 = 8;
/// An epoll instance; `data` holds an EpollState and then one EpollEntry per registration.
pub const FD_EPOLL: u32 = 9;
/// A socket; `data` holds its SocketInfo, and for Unix and IP sockets a SocketState
/// and queued messages after it. A netlink socket comes back new and unbound (so that a
/// thread waiting on it keeps waiting); Unix and IP sockets as SocketState describes.
pub const FD_SOCKET: u32 = 10;
/// A regular file that was deleted while open (`tmpfile()`, `O_TMPFILE`, an unlinked
/// log); `data` holds a DeletedFile and then, unless it shares an earlier record's
/// file, the file's contents. It comes back as an unlinked file again.
pub const FD_DELETED: u32 = 11;
/// A FIFO opened by path; `data` holds the bytes that waited in it when the process
/// held both a read and a write end of it (on the first read end's record).
pub const FD_FIFO: u32 = 12;
/// An inotify instance; `data` holds an InotifyState and then its watches, each an
/// InotifyWatch followed by its path.
pub const FD_INOTIFY: u32 = 13;
/// A POSIX message queue (version 4); `data` holds an MqueueState, then, for a queue
/// unlinked while open whose messages were saved, its messages, each an MqMessage
/// followed by its bytes.
pub const FD_MQUEUE: u32 = 14;

pub fn fd_kind_name(kind: u32) -> &'static str {
    match kind {
        FD_FILE => "file",
        FD_DIR => "dir",
        FD_CHAR => "chardev",
        FD_OTHER => "other",
        FD_PIPE => "pipe",
        FD_EVENTFD => "eventfd",
        FD_TIMERFD => "timerfd",
        FD_SIGNALFD => "signalfd",
        FD_EPOLL => "epoll",
        FD_SOCKET => "socket",
        FD_DELETED => "deleted",
        FD_FIFO => "fifo",
        FD_INOTIFY => "inotify",
        FD_MQUEUE => "mqueue",
        _ => "?",
    }
}

/// An open file descriptor at checkpoint time (0, 1 and 2 included, for inspection;
/// a restart keeps its own 0, 1 and 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FdRecord {
    pub fd: u32,
    pub kind: u32,
    /// open(2) flags as /proc/PID/fdinfo shows them (O_CLOEXEC included).
    pub flags: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mode: u32,
    pub pos: u64,
    pub inode: u64,
    /// The link target of /proc/PID/fd/N.
    pub path: StrRef,
    /// For the read end of a pipe: the bytes that were in the pipe; for a regular file
    /// (version 2): its FileIdentity (in the string table).
    pub data: StrRef,
}
const_assert_eq!(size_of::<FdRecord>(), 56);

/// What a regular file was at checkpoint time, beyond its inode: its size, change time
/// and (where the filesystem keeps one) birth time. Version 2 images keep it as the
/// `data` of a regular file's FdRecord, so a restart can tell a file that was modified,
/// or replaced by another that happens to reuse its inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
    /// FILE_BTIME: `btime_*` are valid.
    pub flags: u32,
    pub btime_sec: i64,
    pub btime_nsec: u32,
    pub reserved: u32,
}
const_assert_eq!(size_of::<FileIdentity>(), 40);

/// FileIdentity.flags
pub const FILE_BTIME: u32 = 1;

impl FileIdentity {
    /// The identity a regular file's record carries, if it carries one.
    pub fn of(rec: &FdRecord, data: &[u8]) -> Option<FileIdentity> {
        if rec.kind != FD_FILE || data.len() != size_of::<FileIdentity>() {
            return None;
        }
        // SAFETY: the slice holds exactly one FileIdentity, a plain record valid for any
        // bit pattern; read_unaligned copes with any alignment.
        Some(unsafe { core::ptr::read_unaligned(data.as_ptr() as *const FileIdentity) })
    }

    /// Whether both are known to be different files (different birth times).
    pub fn born_apart(&self, other: &FileIdentity) -> bool {
        self.flags & other.flags & FILE_BTIME != 0
            && (self.btime_sec, self.btime_nsec) != (other.btime_sec, other.btime_nsec)
    }

    /// Whether the file changed (size or change time).
    pub fn changed(&self, other: &FileIdentity) -> bool {
        (self.size, self.ctime_sec, self.ctime_nsec) != (other.size, other.ctime_sec, other.ctime_nsec)
    }
}

/// The head of a deleted file's `data`; the file's `size` bytes follow unless `same_as`
/// names an earlier record of the same file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletedFile {
    /// The fd of an earlier FD_DELETED record for the same file (same inode), or
    /// NOT_SHARED.
    pub same_as: u32,
    /// DELETED_SAME_OPEN_FILE.
    pub flags: u32,
    pub size: u64,
}
const_assert_eq!(size_of::<DeletedFile>(), 16);

/// DeletedFile.flags: the record is a dup of `same_as` (one open file, one offset),
/// not just another open of the same file.
pub const DELETED_SAME_OPEN_FILE: u32 = 1;

impl DeletedFile {
    /// A deleted file's head and the contents that follow it, if `rec` is one and its
    /// payload is well formed.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(DeletedFile, &'a [u8])> {
        let head = size_of::<DeletedFile>();
        if rec.kind != FD_DELETED || data.len() < head {
            return None;
        }
        let d: DeletedFile = record_from(&data[..head])?;
        let contents = &data[head..];
        let expected = if d.same_as == NOT_SHARED { d.size } else { 0 };
        let ok = contents.len() as u64 == expected
            && d.flags & !DELETED_SAME_OPEN_FILE == 0
            && (d.same_as != NOT_SHARED || d.flags == 0);
        ok.then_some((d, contents))
    }
}

/// The head of an inotify descriptor's `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InotifyState {
    /// The fd of an earlier FD_INOTIFY record for the same open file (a dup), or
    /// NOT_SHARED; such a record has no watches of its own.
    pub same_as: u32,
    /// How many watches follow.
    pub count: u32,
}
const_assert_eq!(size_of::<InotifyState>(), 8);

/// One watch of an inotify descriptor, as /proc/PID/fdinfo shows it, followed in the
/// payload by `path_len` bytes: the watched file's path, resolved at checkpoint time
/// (0: it could not be, and the watch cannot come back).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InotifyWatch {
    /// The watch descriptor; watches are in increasing order.
    pub wd: u32,
    pub mask: u32,
    pub ignored_mask: u32,
    pub path_len: u32,
    pub inode: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
}
const_assert_eq!(size_of::<InotifyWatch>(), 32);

/// The watches of an inotify payload, in order, each with its path.
#[derive(Clone)]
pub struct InotifyWatches<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for InotifyWatches<'a> {
    type Item = (InotifyWatch, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = size_of::<InotifyWatch>();
        if self.left == 0 || self.rest.len() < head {
            return None;
        }
        let w: InotifyWatch = record_from(&self.rest[..head])?;
        let end = head
            .checked_add(w.path_len as usize)
            .filter(|&e| e <= self.rest.len())?;
        let path = &self.rest[head..end];
        self.rest = &self.rest[end..];
        self.left -= 1;
        Some((w, path))
    }
}

impl InotifyState {
    /// An inotify record's head and its watches, if `rec` is one and its payload is well
    /// formed: exactly `count` watches, in increasing wd order from 1, nothing after.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(InotifyState, InotifyWatches<'a>)> {
        let head = size_of::<InotifyState>();
        if rec.kind != FD_INOTIFY || data.len() < head {
            return None;
        }
        let state: InotifyState = record_from(&data[..head])?;
        let watches = InotifyWatches {
            rest: &data[head..],
            left: state.count,
        };
        let mut check = watches.clone();
        let mut last = 0u32;
        for _ in 0..state.count {
            let (w, _) = check.next()?;
            if w.wd <= last {
                return None;
            }
            last = w.wd;
        }
        let shared_and_watching = state.same_as != NOT_SHARED && state.count != 0;
        (check.rest.is_empty() && !shared_and_watching).then_some((state, watches))
    }
}

/// What a terminal was at checkpoint time: the `data` of a character device's FdRecord
/// when the device is a terminal, followed by the `saved` bytes of typed input (fd 0
/// only). Images without it (older ones) simply bring no terminal state back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtyState {
    /// TTY_STATE_MAGIC: tells the record from other data.
    pub magic: u32,
    /// TTY_WINSIZE: `rows` .. `ypixel` are valid.
    pub flags: u32,
    /// The kernel's struct termios (TCGETS), field by field.
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
    /// The window size (TIOCGWINSZ).
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
    /// Bytes of typed input waiting to be read at checkpoint time (fd 0, when the
    /// process was in the terminal's foreground).
    pub pending: u32,
    /// How many of them follow this record (all, where TIOCSTI was permitted; else 0).
    pub saved: u32,
    pub reserved: u32,
}
const_assert_eq!(size_of::<TtyState>(), 64);

pub const TTY_STATE_MAGIC: u32 = 0x5954_5431; // "1TTY"
/// TtyState.flags
pub const TTY_WINSIZE: u32 = 1;

impl TtyState {
    /// The terminal state a character device's record carries, and the typed input
    /// after it, if it carries any.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(TtyState, &'a [u8])> {
        if rec.kind != FD_CHAR || data.len() < size_of::<TtyState>() {
            return None;
        }
        // SAFETY: the slice holds at least one TtyState, a plain record valid for any
        // bit pattern; read_unaligned copes with any alignment.
        let t = unsafe { core::ptr::read_unaligned(data.as_ptr() as *const TtyState) };
        let input = &data[size_of::<TtyState>()..];
        (t.magic == TTY_STATE_MAGIC && t.saved as usize == input.len()).then_some((t, input))
    }
}

/// Whether `rec` is fd 0 as a pipe or FIFO whose write end was outside the process:
/// then its `data` holds the bytes that waited in it and `pos` how many waited (more
/// than `data` holds only if the runtime could not copy them all).
pub fn is_stdin_pipe(rec: &FdRecord) -> bool {
    rec.fd == 0 && rec.mode & 0o170000 == 0o010000 && (rec.kind == FD_PIPE || rec.kind == FD_OTHER)
}

/// `same_as` of an event descriptor's state when no earlier record shares its file.
pub const NOT_SHARED: u32 = u32::MAX;

/// An eventfd's state (FD_EVENTFD).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFdState {
    /// The number of an earlier record for the same open file (a dup), or NOT_SHARED.
    pub same_as: u32,
    /// EVENTFD_SEMAPHORE.
    pub flags: u32,
    /// The counter, as a read would return it (all of it, or 1 in semaphore mode).
    pub count: u64,
}
const_assert_eq!(size_of::<EventFdState>(), 16);

/// EventFdState.flags: the eventfd was made with EFD_SEMAPHORE.
pub const EVENTFD_SEMAPHORE: u32 = 1;

/// A timerfd's state (FD_TIMERFD).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerFdState {
    pub same_as: u32,
    /// The clock id given to timerfd_create.
    pub clock: u32,
    /// The flags of the last timerfd_settime (TFD_TIMER_ABSTIME 1, TFD_TIMER_CANCEL_ON_SET 2).
    pub settime_flags: u32,
    pub value_nsec: u32,
    /// When it fires next: the time left, or with TFD_TIMER_ABSTIME the absolute time on
    /// its clock; 0 and 0 = disarmed.
    pub value_sec: i64,
    pub interval_sec: i64,
    pub interval_nsec: u32,
    pub reserved: u32,
    /// Expirations not read yet.
    pub ticks: u64,
}
const_assert_eq!(size_of::<TimerFdState>(), 48);

/// A signalfd's state (FD_SIGNALFD).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalFdState {
    pub same_as: u32,
    pub reserved: u32,
    /// The signals it reads (bit n - 1 for signal n).
    pub mask: u64,
}
const_assert_eq!(size_of::<SignalFdState>(), 16);

/// The start of an epoll instance's state (FD_EPOLL); its EpollEntries follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpollState {
    pub same_as: u32,
    pub reserved: u32,
}
const_assert_eq!(size_of::<EpollState>(), 8);

/// One registration of an epoll instance, as /proc/PID/fdinfo shows it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpollEntry {
    /// The descriptor number the file was registered under.
    pub fd: u32,
    /// The event mask (EPOLLET, EPOLLONESHOT, ... included).
    pub events: u32,
    /// The program's epoll_data.
    pub data: u64,
    /// The registered file's inode and device: if the record at `fd` is another file,
    /// the file was registered under a number it no longer has.
    pub inode: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
}
const_assert_eq!(size_of::<EpollEntry>(), 32);

/// A POSIX message queue descriptor's state (FD_MQUEUE). Its name is the record's
/// path (`/name`, with ` (deleted)` after it once unlinked).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqueueState {
    /// An earlier FD_MQUEUE record of the same queue, or NOT_SHARED; such a record
    /// carries no messages (the first one does) and shares its registration.
    pub same_as: u32,
    /// MQ_UNLINKED, MQ_SAME_OPEN_FILE, MQ_MESSAGES_SAVED, MQ_VALUE_KNOWN.
    pub flags: u32,
    pub maxmsg: u64,
    pub msgsize: u64,
    /// Messages queued at checkpoint time, and their bytes together.
    pub curmsgs: u64,
    pub qsize: u64,
    /// The queue's notification registration: MQ_NOTIFY_*.
    pub notify: u32,
    /// MQ_NOTIFY_SIGNAL: the signal; MQ_NOTIFY_THREAD: the netlink socket's descriptor.
    pub signo: u32,
    /// MQ_NOTIFY_SIGNAL: the sigev_value, if MQ_VALUE_KNOWN.
    pub value: u64,
    /// The registered process's pid at checkpoint time, or 0.
    pub notify_pid: u32,
    /// How many MqMessages follow (MQ_MESSAGES_SAVED).
    pub messages: u32,
    /// MQ_NOTIFY_THREAD: the cookie the kernel sends the socket (last byte 0).
    pub cookie: [u8; COOKIE_LEN],
}
const_assert_eq!(size_of::<MqueueState>(), 96);

/// MqueueState.flags: the queue had been unlinked (mq_unlink) while open.
pub const MQ_UNLINKED: u32 = 1;
/// The record is a dup of `same_as` (one open file), not another open of the queue.
pub const MQ_SAME_OPEN_FILE: u32 = 2;
/// The messages of an unlinked queue follow (all `curmsgs` of them).
pub const MQ_MESSAGES_SAVED: u32 = 4;
/// `value` is the registration's sigev_value.
pub const MQ_VALUE_KNOWN: u32 = 8;
const MQ_FLAGS_ALL: u32 = 15;

/// MqueueState.notify: no registration.
pub const MQ_NOTIFY_NONE: u32 = 0;
/// This process, SIGEV_SIGNAL.
pub const MQ_NOTIFY_SIGNAL: u32 = 1;
/// This process, SIGEV_NONE.
pub const MQ_NOTIFY_QUIET: u32 = 2;
/// This process, SIGEV_THREAD (glibc's: a cookie sent to a netlink socket).
pub const MQ_NOTIFY_THREAD: u32 = 3;
/// Another process holds the registration.
pub const MQ_NOTIFY_ELSEWHERE: u32 = 4;
/// A registration that could not be read (the process had the queue open for writing only).
pub const MQ_NOTIFY_UNKNOWN: u32 = 5;

pub fn mq_notify_name(notify: u32) -> &'static str {
    match notify {
        MQ_NOTIFY_NONE => "none",
        MQ_NOTIFY_SIGNAL => "signal",
        MQ_NOTIFY_QUIET => "registered (SIGEV_NONE)",
        MQ_NOTIFY_THREAD => "thread",
        MQ_NOTIFY_ELSEWHERE => "another process",
        MQ_NOTIFY_UNKNOWN => "unknown",
        _ => "?",
    }
}

/// The head of one saved message; its `len` bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqMessage {
    pub prio: u32,
    pub len: u32,
}
const_assert_eq!(size_of::<MqMessage>(), 8);

/// The saved messages of a queue, in the order they are received: (priority, bytes).
#[derive(Clone)]
pub struct MqMessages<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> MqMessages<'a> {
    /// The `count` messages laid out in `bytes`.
    pub fn new(bytes: &'a [u8], count: u32) -> MqMessages<'a> {
        MqMessages {
            rest: bytes,
            left: count,
        }
    }
}

impl<'a> Iterator for MqMessages<'a> {
    type Item = (u32, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = size_of::<MqMessage>();
        if self.left == 0 || self.rest.len() < head {
            return None;
        }
        let m: MqMessage = record_from(&self.rest[..head])?;
        let end = head.checked_add(m.len as usize).filter(|&e| e <= self.rest.len())?;
        let bytes = &self.rest[head..end];
        self.rest = &self.rest[end..];
        self.left -= 1;
        Some((m.prio, bytes))
    }
}

impl MqueueState {
    /// A queue record's state and its saved messages, if `rec` is one and its payload is
    /// well formed: exactly `messages` messages, none longer than `msgsize`, in receive
    /// order (priorities never rising), nothing after them.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(MqueueState, MqMessages<'a>)> {
        let head = size_of::<MqueueState>();
        if rec.kind != FD_MQUEUE || data.len() < head {
            return None;
        }
        let s: MqueueState = record_from(&data[..head])?;
        let messages = MqMessages {
            rest: &data[head..],
            left: s.messages,
        };
        let mut check = messages.clone();
        let mut last = u32::MAX;
        for _ in 0..s.messages {
            let (prio, bytes) = check.next()?;
            if prio > last || bytes.len() as u64 > s.msgsize {
                return None;
            }
            last = prio;
        }
        let saved = s.flags & MQ_MESSAGES_SAVED != 0;
        let ok = check.rest.is_empty()
            && s.flags & !MQ_FLAGS_ALL == 0
            && mq_notify_name(s.notify) != "?"
            && (saved || s.messages == 0)
            && (s.same_as == NOT_SHARED || (s.messages == 0 && s.notify == MQ_NOTIFY_NONE))
            && (s.same_as != NOT_SHARED || s.flags & MQ_SAME_OPEN_FILE == 0);
        ok.then_some((s, messages))
    }
}

/// A plain record read from the exact bytes of a payload.
fn record_from<T: Copy>(data: &[u8]) -> Option<T> {
    if data.len() != size_of::<T>() {
        return None;
    }
    // SAFETY: the slice holds exactly one T, one of this module's plain records, valid
    // for any bit pattern; read_unaligned copes with any alignment.
    Some(unsafe { core::ptr::read_unaligned(data.as_ptr() as *const T) })
}

/// What a socket was: its address family, type and protocol (getsockopt SO_DOMAIN,
/// SO_TYPE, SO_PROTOCOL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    pub domain: u32,
    pub kind: u32,
    pub protocol: u32,
    pub reserved: u32,
}
const_assert_eq!(size_of::<SocketInfo>(), 16);

/// SocketInfo.domain of a netlink socket.
pub const AF_NETLINK: u32 = 16;

impl SocketInfo {
    /// The socket's SocketInfo, alone or followed by a well-formed SocketState.
    pub fn of(rec: &FdRecord, data: &[u8]) -> Option<SocketInfo> {
        let head = size_of::<SocketInfo>();
        let info: SocketInfo = record_from(data.get(..head)?).filter(|_| rec.kind == FD_SOCKET)?;
        let rest_ok = data.len() == head
            || if info.domain == AF_NETLINK {
                NetlinkState::of(rec, data).is_some()
            } else {
                SocketState::of(rec, data).is_some()
            };
        rest_ok.then_some(info)
    }
}

/// What a netlink socket was, after its SocketInfo (version 4): its port id and
/// multicast groups (getsockname), and the message-queue notifications (SIGEV_THREAD
/// cookies, NOTIFY_COOKIE_LEN bytes each) that waited in it unread, which follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetlinkState {
    pub portid: u32,
    pub groups: u32,
    /// How many cookies follow.
    pub cookies: u32,
    pub reserved: u32,
}
const_assert_eq!(size_of::<NetlinkState>(), 16);

/// The length of a SIGEV_THREAD cookie (the kernel's NOTIFY_COOKIE_LEN).
pub const COOKIE_LEN: usize = 32;

impl NetlinkState {
    /// A netlink socket's state and the cookies after it, if it has them.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(NetlinkState, impl Iterator<Item = &'a [u8]> + 'a)> {
        let head = size_of::<SocketInfo>();
        let end = head + size_of::<NetlinkState>();
        let info: SocketInfo = record_from(data.get(..head)?)?;
        if rec.kind != FD_SOCKET || info.domain != AF_NETLINK || data.len() < end {
            return None;
        }
        let state: NetlinkState = record_from(&data[head..end])?;
        let cookies = &data[end..];
        let ok = state.reserved == 0 && cookies.len() == state.cookies as usize * COOKIE_LEN;
        ok.then(|| (state, cookies.chunks_exact(COOKIE_LEN)))
    }
}

/// What a socket was doing, after its SocketInfo (images written since sockets are
/// restored; an image without it has only the SocketInfo). Queued messages follow it:
/// each a u32 length and that many bytes, the bytes that waited to be read on this end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketState {
    /// SOCKET_UNBOUND, SOCKET_BOUND, SOCKET_LISTENING, SOCKET_PAIR or SOCKET_CONNECTED.
    pub state: u32,
    /// SOCKOPT_* bits.
    pub options: u32,
    /// listen()'s backlog, for SOCKET_LISTENING.
    pub backlog: u32,
    /// SO_RCVBUF and SO_SNDBUF as getsockopt reports them (twice what was set).
    pub rcvbuf: u32,
    pub sndbuf: u32,
    /// The number of an earlier record for the same socket (a dup), or NOT_SHARED.
    pub same_as: u32,
    /// Bytes of `addr` (getsockname) and of `peer` (getpeername) in use.
    pub addr_len: u32,
    pub peer_len: u32,
    /// The peer's socket inode (Unix sockets, from sock_diag), or 0.
    pub peer_inode: u64,
    pub addr: [u8; 128],
    pub peer: [u8; 128],
}
const_assert_eq!(size_of::<SocketState>(), 296);

impl Default for SocketState {
    fn default() -> SocketState {
        SocketState {
            state: SOCKET_UNBOUND,
            options: 0,
            backlog: 0,
            rcvbuf: 0,
            sndbuf: 0,
            same_as: NOT_SHARED,
            addr_len: 0,
            peer_len: 0,
            peer_inode: 0,
            addr: [0; 128],
            peer: [0; 128],
        }
    }
}

/// SocketState.state: neither bound nor connected (or nothing more is known).
pub const SOCKET_UNBOUND: u32 = 0;
/// Bound to `addr`, not listening, not connected (a UDP server, say).
pub const SOCKET_BOUND: u32 = 1;
/// Listening on `addr`.
pub const SOCKET_LISTENING: u32 = 2;
/// A Unix socket connected to another socket of the process (`peer_inode`).
pub const SOCKET_PAIR: u32 = 3;
/// Connected to `peer`, outside the process.
pub const SOCKET_CONNECTED: u32 = 4;

pub fn socket_state_name(state: u32) -> &'static str {
    match state {
        SOCKET_UNBOUND => "unbound",
        SOCKET_BOUND => "bound",
        SOCKET_LISTENING => "listening",
        SOCKET_PAIR => "pair",
        SOCKET_CONNECTED => "connected",
        _ => "?",
    }
}

/// SocketState.options bits.
pub const SOCKOPT_REUSEADDR: u32 = 1;
pub const SOCKOPT_REUSEPORT: u32 = 2;
pub const SOCKOPT_KEEPALIVE: u32 = 4;
pub const SOCKOPT_NODELAY: u32 = 8;
pub const SOCKOPT_V6ONLY: u32 = 16;
const SOCKOPT_ALL: u32 = 31;

impl SocketState {
    /// The state and the queued messages of a socket record that has them.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(SocketState, SocketMessages<'a>)> {
        let head = size_of::<SocketInfo>();
        let end = head + size_of::<SocketState>();
        if rec.kind != FD_SOCKET || data.len() < end {
            return None;
        }
        let s: SocketState = record_from(&data[head..end])?;
        let messages = SocketMessages(&data[end..]);
        let ok = s.state <= SOCKET_CONNECTED
            && s.options & !SOCKOPT_ALL == 0
            && s.addr_len as usize <= s.addr.len()
            && s.peer_len as usize <= s.peer.len()
            && messages.clone().all(|m| m.is_some());
        ok.then_some((s, messages))
    }

    pub fn addr(&self) -> &[u8] {
        &self.addr[..self.addr_len as usize]
    }

    pub fn peer(&self) -> &[u8] {
        &self.peer[..self.peer_len as usize]
    }
}

/// A socket address as getsockname gives it, shown as `1.2.3.4:80`, `[::1]:80`,
/// `/path`, `@abstract` or `unnamed`.
pub struct SocketAddr<'a>(pub &'a [u8]);

impl core::fmt::Display for SocketAddr<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.0;
        let family = if a.len() >= 2 {
            u16::from_le_bytes([a[0], a[1]])
        } else {
            0
        };
        let port = |a: &[u8]| u16::from_be_bytes([a[2], a[3]]);
        match family {
            1 if a.len() <= 2 => f.write_str("unnamed"),
            1 => {
                let (at, name) = if a[2] == 0 { ("@", &a[3..]) } else { ("", &a[2..]) };
                let name = if at.is_empty() {
                    name.split(|&c| c == 0).next().unwrap_or(name)
                } else {
                    name
                };
                f.write_str(at)?;
                for chunk in name.utf8_chunks() {
                    f.write_str(chunk.valid())?;
                    for b in chunk.invalid() {
                        write!(f, "\\x{:02x}", b)?;
                    }
                }
                Ok(())
            }
            2 if a.len() >= 8 => write!(f, "{}.{}.{}.{}:{}", a[4], a[5], a[6], a[7], port(a)),
            10 if a.len() >= 24 => {
                f.write_str("[")?;
                for i in 0..8 {
                    let g = u16::from_be_bytes([a[8 + 2 * i], a[9 + 2 * i]]);
                    write!(f, "{}{:x}", if i > 0 { ":" } else { "" }, g)?;
                }
                write!(f, "]:{}", port(a))
            }
            _ => f.write_str("none"),
        }
    }
}

/// The messages queued on a socket, each Some(bytes); a None means a length runs past
/// the end (`SocketState::of` refuses such a payload).
#[derive(Clone)]
pub struct SocketMessages<'a>(&'a [u8]);

impl<'a> SocketMessages<'a> {
    /// The messages laid out in `bytes`.
    pub fn new(bytes: &'a [u8]) -> SocketMessages<'a> {
        SocketMessages(bytes)
    }

    /// All the queued bytes together.
    pub fn total(&self) -> usize {
        self.clone().flatten().map(|m| m.len()).sum()
    }
}

impl<'a> Iterator for SocketMessages<'a> {
    type Item = Option<&'a [u8]>;
    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        if self.0.is_empty() {
            return None;
        }
        let len = self
            .0
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match len.filter(|&l| l <= self.0.len() - 4) {
            Some(l) => {
                let m = &self.0[4..4 + l];
                self.0 = &self.0[4 + l..];
                Some(Some(m))
            }
            None => {
                self.0 = &[];
                Some(None)
            }
        }
    }
}

impl EventFdState {
    pub fn of(rec: &FdRecord, data: &[u8]) -> Option<EventFdState> {
        record_from(data).filter(|_| rec.kind == FD_EVENTFD)
    }
}

impl TimerFdState {
    pub fn of(rec: &FdRecord, data: &[u8]) -> Option<TimerFdState> {
        record_from(data).filter(|_| rec.kind == FD_TIMERFD)
    }
}

impl SignalFdState {
    pub fn of(rec: &FdRecord, data: &[u8]) -> Option<SignalFdState> {
        record_from(data).filter(|_| rec.kind == FD_SIGNALFD)
    }
}

impl EpollState {
    /// The state and the registrations of an epoll record.
    pub fn of<'a>(rec: &FdRecord, data: &'a [u8]) -> Option<(EpollState, impl Iterator<Item = EpollEntry> + 'a)> {
        let head = size_of::<EpollState>();
        let each = size_of::<EpollEntry>();
        if rec.kind != FD_EPOLL || data.len() < head || !(data.len() - head).is_multiple_of(each) {
            return None;
        }
        let state = record_from(&data[..head])?;
        let entries = data[head..].chunks_exact(each).filter_map(record_from);
        Some((state, entries))
    }
}

/// Which earlier record an event descriptor shares its open file with (NOT_SHARED for
/// none), if `rec` is one.
pub fn event_fd_same_as(rec: &FdRecord, data: &[u8]) -> Option<u32> {
    match rec.kind {
        FD_EVENTFD => EventFdState::of(rec, data).map(|s| s.same_as),
        FD_TIMERFD => TimerFdState::of(rec, data).map(|s| s.same_as),
        FD_SIGNALFD => SignalFdState::of(rec, data).map(|s| s.same_as),
        FD_EPOLL => EpollState::of(rec, data).map(|(s, _)| s.same_as),
        _ => None,
    }
}

/// Whether an event descriptor's payload is well formed (size, reserved fields); true
/// for the other kinds.
fn event_payload_ok(rec: &FdRecord, data: &[u8]) -> bool {
    match rec.kind {
        FD_EVENTFD => EventFdState::of(rec, data).is_some(),
        FD_TIMERFD => TimerFdState::of(rec, data).is_some_and(|s| s.reserved == 0),
        FD_SIGNALFD => SignalFdState::of(rec, data).is_some_and(|s| s.reserved == 0),
        FD_EPOLL => EpollState::of(rec, data).is_some_and(|(s, _)| s.reserved == 0),
        FD_SOCKET => SocketInfo::of(rec, data).is_some_and(|s| s.reserved == 0),
        FD_DELETED => DeletedFile::of(rec, data).is_some(),
        FD_INOTIFY => InotifyState::of(rec, data).is_some(),
        FD_MQUEUE => MqueueState::of(rec, data).is_some(),
        _ => true,
    }
}

/// TimerRecord.notify: the kernel's `sigev_notify` as `/proc/PID/timers` shows it.
pub const TIMER_NOTIFY_SIGNAL: u32 = 0;
pub const TIMER_NOTIFY_NONE: u32 = 1;
/// SIGEV_THREAD as the kernel takes it (a signal to the process; libc's SIGEV_THREAD
/// timers reach the kernel as TIMER_NOTIFY_THREAD_ID to libc's helper thread).
pub const TIMER_NOTIFY_THREAD: u32 = 2;
/// SIGEV_SIGNAL | SIGEV_THREAD_ID: the signal goes to thread `target`.
pub const TIMER_NOTIFY_THREAD_ID: u32 = 4;

pub fn timer_notify_name(notify: u32) -> &'static str {
    match notify {
        TIMER_NOTIFY_SIGNAL => "signal",
        TIMER_NOTIFY_NONE => "none",
        TIMER_NOTIFY_THREAD => "thread",
        TIMER_NOTIFY_THREAD_ID => "thread-id",
        _ => "?",
    }
}

/// One POSIX timer (`timer_create`) of the process, not counting the runtime's own
/// interval timer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerRecord {
    /// The timer id the program holds (0..=i32::MAX); the restart recreates it.
    pub id: u32,
    /// The clock id as the kernel keeps it; CPU-time clocks are negative and encode a
    /// pid or tid (see `CpuClock`).
    pub clock: i32,
    /// TIMER_NOTIFY_*.
    pub notify: u32,
    pub signo: u32,
    /// The thread the signal goes to (TIMER_NOTIFY_THREAD_ID), else the process's pid.
    pub target: u32,
    /// No bits are defined; 0.
    pub flags: u32,
    /// The sigev_value handed to the handler (si_value), widened to 64 bits.
    pub value: u64,
    /// Time left until the next expiry, in nanoseconds of the timer's clock; 0 = disarmed.
    pub value_ns: u64,
    /// The period in nanoseconds; 0 = one-shot.
    pub interval_ns: u64,
    pub reserved: [u64; 2],
}
const_assert_eq!(size_of::<TimerRecord>(), 64);
const_assert_eq!(core::mem::offset_of!(TimerRecord, value), 24);
const_assert_eq!(core::mem::offset_of!(TimerRecord, interval_ns), 40);

/// A CPU-time clock id, decoded (the kernel's `CPUCLOCK_*` encoding: `~pid << 3`, bit 2
/// for a thread's clock, the low two bits for which time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuClock {
    /// The process or thread measured; 0 = the caller (at timer creation).
    pub pid: u32,
    pub per_thread: bool,
    /// CPUCLOCK_PROF, _VIRT or _SCHED.
    pub which: i32,
}

impl CpuClock {
    /// The CPU-time clock `clock` names, if it is one.
    pub fn decode(clock: i32) -> Option<CpuClock> {
        if clock >= 0 {
            return None;
        }
        Some(CpuClock {
            pid: !(clock >> 3) as u32,
            per_thread: clock & 4 != 0,
            which: clock & 3,
        })
    }

    pub fn encode(&self) -> i32 {
        ((!self.pid as i32) << 3) | if self.per_thread { 4 } else { 0 } | self.which
    }
}

/// Why a timer of an image cannot be recreated in the restarted process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerRefusal {
    /// It measures the CPU time of another process.
    OtherProcessClock { id: u32, pid: u32 },
    /// It measures the CPU time of a thread that is not in the image.
    UnknownClockThread { id: u32, tid: u32 },
    /// CLOCK_THREAD_CPUTIME_ID of a multi-threaded process: the kernel does not say
    /// which thread's.
    UnnamedClockThread { id: u32 },
    /// Its signal goes to a thread that is not in the image.
    UnknownTarget { id: u32, tid: u32 },
}

impl core::fmt::Display for TimerRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            TimerRefusal::OtherProcessClock { id, pid } => write!(
                f,
                "POSIX timer {} measures the CPU time of another process ({}) and cannot be restored",
                id, pid
            ),
            TimerRefusal::UnknownClockThread { id, tid } => write!(
                f,
                "POSIX timer {} measures the CPU time of thread {}, which is not one of the image's threads",
                id, tid
            ),
            TimerRefusal::UnnamedClockThread { id } => write!(
                f,
                "POSIX timer {} measures the CPU time of the thread that created it (CLOCK_THREAD_CPUTIME_ID), \
                 which the kernel does not name in a multi-threaded process, so it cannot be restored",
                id
            ),
            TimerRefusal::UnknownTarget { id, tid } => write!(
                f,
                "POSIX timer {} signals thread {}, which is not one of the image's threads",
                id, tid
            ),
        }
    }
}

impl TimerRecord {
    pub const fn zeroed() -> TimerRecord {
        TimerRecord {
            id: 0,
            clock: 0,
            notify: 0,
            signo: 0,
            target: 0,
            flags: 0,
            value: 0,
            value_ns: 0,
            interval_ns: 0,
            reserved: [0; 2],
        }
    }

    /// The clock and the target thread this timer gets in the restarted process, given
    /// the image's pid, its number of threads and each thread's new tid (`new_tid` of an
    /// old tid; None for a tid that is not in the image). The target is 0 unless the
    /// notification is TIMER_NOTIFY_THREAD_ID.
    pub fn restored(
        &self,
        old_pid: u32,
        thread_count: usize,
        new_tid: impl Fn(u32) -> Option<u32>,
    ) -> Result<(i32, u32), TimerRefusal> {
        let id = self.id;
        let clock = match CpuClock::decode(self.clock) {
            None => self.clock,
            Some(c) if !c.per_thread => {
                if c.pid != 0 && c.pid != old_pid {
                    return Err(TimerRefusal::OtherProcessClock { id, pid: c.pid });
                }
                // The restarted process's own, under any pid.
                CpuClock { pid: 0, ..c }.encode()
            }
            Some(c) if c.pid == 0 => {
                // Whoever creates it: the restore creates timers on the main thread,
                // which is the thread when there is only one.
                if thread_count != 1 {
                    return Err(TimerRefusal::UnnamedClockThread { id });
                }
                self.clock
            }
            Some(c) => match new_tid(c.pid) {
                Some(tid) => CpuClock { pid: tid, ..c }.encode(),
                None => return Err(TimerRefusal::UnknownClockThread { id, tid: c.pid }),
            },
        };
        let target = if self.notify == TIMER_NOTIFY_THREAD_ID {
            new_tid(self.target).ok_or(TimerRefusal::UnknownTarget { id, tid: self.target })?
        } else {
            0
        };
        Ok((clock, target))
    }
}

/// Why an image cannot be used; every reader reports these the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    TooShort,
    BadMagic,
    BadVersion(u32),
    BadHeaderChecksum,
    Truncated { expected: u64, actual: u64 },
    BadLayout(&'static str),
    BadMetaChecksum,
}

impl FormatError {
    /// A one-line message.
    pub fn message(&self) -> &'static str {
        match self {
            FormatError::TooShort => "file is too short to be an mtcp image",
            FormatError::BadMagic => "not an mtcp image (bad magic)",
            FormatError::BadVersion(_) => "unsupported image format version",
            FormatError::BadHeaderChecksum => "image header is corrupt (checksum mismatch)",
            FormatError::Truncated { .. } => "image is truncated (file is shorter than its header says)",
            FormatError::BadLayout(why) => why,
            FormatError::BadMetaChecksum => "image metadata is corrupt (checksum mismatch)",
        }
    }
}

/// Reads and checks a header from the first bytes of a file of `file_len` bytes.
pub fn parse_header(bytes: &[u8], file_len: u64) -> Result<Header, FormatError> {
    if bytes.len() < HEADER_SIZE {
        return Err(FormatError::TooShort);
    }
    if bytes[..8] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    // SAFETY: Header is plain old data of HEADER_SIZE bytes and bytes holds at least
    // that many; read_unaligned copes with any alignment of the buffer.
    let h: Header = unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const Header) };
    if !(OLDEST_VERSION..=VERSION).contains(&h.version) {
        return Err(FormatError::BadVersion(h.version));
    }
    if h.header_checksum != h.compute_checksum() {
        return Err(FormatError::BadHeaderChecksum);
    }
    if h.header_size as usize != HEADER_SIZE {
        return Err(FormatError::BadLayout("image header has an unexpected size"));
    }
    if h.flags != 0 || h.reserved != [0; 16] {
        return Err(FormatError::BadLayout(
            "image header has flags or reserved fields set (written by a newer mtcp?)",
        ));
    }
    if file_len < h.file_size {
        return Err(FormatError::Truncated {
            expected: h.file_size,
            actual: file_len,
        });
    }
    let page = h.page_size as u64;
    if page == 0 || !page.is_power_of_two() || !h.data_offset.is_multiple_of(page) {
        return Err(FormatError::BadLayout("image data area is not page-aligned"));
    }
    let meta_end = h.meta_offset.checked_add(h.meta_size);
    match meta_end {
        Some(end) if h.meta_offset >= HEADER_SIZE as u64 && end <= h.data_offset => {}
        _ => return Err(FormatError::BadLayout("image metadata lies outside its bounds")),
    }
    match h.data_offset.checked_add(h.data_size) {
        Some(end) if end <= h.file_size => {}
        _ => return Err(FormatError::BadLayout("image data lies outside the file")),
    }
    Ok(h)
}

/// The metadata block, checked: each table lies inside it and each run inside the data area.
pub struct Meta<'a> {
    pub bytes: &'a [u8],
    pub index: MetaIndex,
    pub thread_count: usize,
    pub region_count: usize,
    pub run_count: usize,
}

impl<'a> Meta<'a> {
    pub fn parse(header: &Header, bytes: &'a [u8]) -> Result<Meta<'a>, FormatError> {
        if bytes.len() as u64 != header.meta_size {
            return Err(FormatError::BadLayout("image metadata has the wrong size"));
        }
        if xxh64(bytes, 0) != header.meta_checksum {
            return Err(FormatError::BadMetaChecksum);
        }
        let index_size = MetaIndex::size_for(header.version);
        if bytes.len() < index_size {
            return Err(FormatError::BadLayout("image metadata is too small"));
        }
        // Older images have a shorter index: what it lacks reads as zero (no timers).
        let mut index = MetaIndex::default();
        // SAFETY: the index is plain old data of at least index_size bytes, and the slice
        // holds at least index_size bytes.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut index as *mut MetaIndex as *mut u8, index_size) };
        if index.reserved != [0; 6] {
            return Err(FormatError::BadLayout(
                "image metadata index has reserved fields set (written by a newer mtcp?)",
            ));
        }
        let m = Meta {
            bytes,
            index,
            thread_count: header.thread_count as usize,
            region_count: header.region_count as usize,
            run_count: header.run_count as usize,
        };
        let len = bytes.len() as u64;
        let fits = |off: u64, size: Option<u64>| size.and_then(|s| off.checked_add(s)).is_some_and(|e| e <= len);
        let table = |count: usize, each: usize| (count as u64).checked_mul(each as u64);
        if !fits(index.process_offset, Some(size_of::<ProcessRecord>() as u64))
            || !fits(index.thread_offset, table(m.thread_count, size_of::<ThreadRecord>()))
            || !fits(index.region_offset, table(m.region_count, size_of::<RegionRecord>()))
            || !fits(index.run_offset, table(m.run_count, size_of::<Run>()))
            || !fits(index.strings_offset, Some(index.strings_size))
            || !fits(index.fd_offset, table(index.fd_count as usize, size_of::<FdRecord>()))
            || index.fd_count > u32::MAX as u64
            || !fits(
                index.timer_offset,
                table(index.timer_count as usize, size_of::<TimerRecord>()),
            )
            || index.timer_count > u32::MAX as u64
        {
            return Err(FormatError::BadLayout("image metadata tables overrun the metadata"));
        }
        let in_strings = |s: StrRef| (s.offset as u64) + (s.len as u64) <= index.strings_size;
        let p = m.process();
        if p.reserved != [0; 7] {
            return Err(FormatError::BadLayout(
                "image process record has reserved fields set (written by a newer mtcp?)",
            ));
        }
        if !in_strings(p.cwd) || !in_strings(p.exe) {
            return Err(FormatError::BadLayout(
                "image process paths lie outside the string table",
            ));
        }
        let page = header.page_size as u64;
        let mut prev_end = 0u64;
        for i in 0..m.region_count {
            let r = m.region(i);
            if !r.start.is_multiple_of(page) || !r.end.is_multiple_of(page) || r.end <= r.start || r.start < prev_end {
                return Err(FormatError::BadLayout(
                    "image region table is not sorted, aligned and disjoint",
                ));
            }
            prev_end = r.end;
            let last = (r.run_first as u64).checked_add(r.run_count as u64);
            if last.is_none_or(|l| l > m.run_count as u64) {
                return Err(FormatError::BadLayout("image region refers to runs that do not exist"));
            }
            let region_pages = r.len() / page;
            for j in 0..r.run_count as usize {
                let run = m.run(r.run_first as usize + j);
                let in_region = run.page_index.checked_add(run.pages).is_some_and(|e| e <= region_pages);
                let data_end = run.pages.checked_mul(page).and_then(|n| run.file_offset.checked_add(n));
                let in_data = run.file_offset >= header.data_offset
                    && run.file_offset.is_multiple_of(page)
                    && data_end.is_some_and(|e| e <= header.data_offset + header.data_size);
                if run.pages == 0 || !in_region || !in_data {
                    return Err(FormatError::BadLayout(
                        "image run lies outside its region or the data area",
                    ));
                }
            }
            if !in_strings(r.path) {
                return Err(FormatError::BadLayout(
                    "image region path lies outside the string table",
                ));
            }
        }
        for i in 0..m.fd_count() {
            if !in_strings(m.fd(i).path) || !in_strings(m.fd(i).data) {
                return Err(FormatError::BadLayout("image fd path lies outside the string table"));
            }
            if !event_payload_ok(&m.fd(i), m.string(m.fd(i).data)) {
                return Err(FormatError::BadLayout(
                    "image descriptor state (event descriptor, socket, deleted file, inotify or message queue) is malformed",
                ));
            }
        }
        let mut prev_id = None;
        for i in 0..m.timer_count() {
            let t = m.timer(i);
            if prev_id.is_some_and(|p| t.id <= p) {
                return Err(FormatError::BadLayout("image timer table is not sorted by id"));
            }
            prev_id = Some(t.id);
            if t.flags != 0 || t.reserved != [0; 2] || t.id > i32::MAX as u32 {
                return Err(FormatError::BadLayout(
                    "image timer record has reserved fields set (written by a newer mtcp?)",
                ));
            }
            if timer_notify_name(t.notify) == "?" {
                return Err(FormatError::BadLayout(
                    "image timer record has an unknown notification kind",
                ));
            }
        }
        Ok(m)
    }

    pub fn timer_count(&self) -> usize {
        self.index.timer_count as usize
    }

    pub fn timer(&self, i: usize) -> TimerRecord {
        self.read(self.index.timer_offset + (i * size_of::<TimerRecord>()) as u64)
    }

    pub fn fd_count(&self) -> usize {
        self.index.fd_count as usize
    }

    pub fn fd(&self, i: usize) -> FdRecord {
        self.read(self.index.fd_offset + (i * size_of::<FdRecord>()) as u64)
    }

    fn read<T: Copy>(&self, offset: u64) -> T {
        let off = offset as usize;
        assert!(off + size_of::<T>() <= self.bytes.len());
        // SAFETY: bounds checked just above; T is one of this module's plain-old-data
        // records, valid for any bit pattern.
        unsafe { core::ptr::read_unaligned(self.bytes.as_ptr().add(off) as *const T) }
    }

    pub fn process(&self) -> ProcessRecord {
        self.read(self.index.process_offset)
    }

    pub fn thread(&self, i: usize) -> ThreadRecord {
        self.read(self.index.thread_offset + (i * size_of::<ThreadRecord>()) as u64)
    }

    pub fn region(&self, i: usize) -> RegionRecord {
        self.read(self.index.region_offset + (i * size_of::<RegionRecord>()) as u64)
    }

    pub fn run(&self, i: usize) -> Run {
        self.read(self.index.run_offset + (i * size_of::<Run>()) as u64)
    }

    /// A string from the string table; empty if the reference is out of bounds.
    pub fn string(&self, s: StrRef) -> &'a [u8] {
        let start = self.index.strings_offset as usize + s.offset as usize;
        let end = start + s.len as usize;
        let strings_end = (self.index.strings_offset + self.index.strings_size) as usize;
        if s.len == 0 || end > strings_end || end > self.bytes.len() {
            return &[];
        }
        &self.bytes[start..end]
    }
}

/// Views a plain-old-data record as bytes.
pub fn as_bytes<T>(value: &T) -> &[u8] {
    // SAFETY: every record in this module is repr(C) with no padding holes that matter
    // for reading (all fields are integers), so its bytes are initialized.
    unsafe { core::slice::from_raw_parts(value as *const T as *const u8, size_of::<T>()) }
}

pub const fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32) -> FdRecord {
        FdRecord {
            kind,
            ..FdRecord::default()
        }
    }

    #[test]
    fn deleted_file_payloads() {
        let rec = record(FD_DELETED);
        let head = DeletedFile {
            same_as: NOT_SHARED,
            flags: 0,
            size: 3,
        };
        let mut data = as_bytes(&head).to_vec();
        data.extend_from_slice(b"abc");
        assert_eq!(DeletedFile::of(&rec, &data).map(|(_, c)| c), Some(&b"abc"[..]));
        assert!(
            DeletedFile::of(&rec, &data[..data.len() - 1]).is_none(),
            "contents short of size"
        );
        assert!(DeletedFile::of(&record(FD_FILE), &data).is_none(), "another kind");
        let shared = DeletedFile {
            same_as: 4,
            flags: DELETED_SAME_OPEN_FILE,
            size: 3,
        };
        assert!(
            DeletedFile::of(&rec, as_bytes(&shared)).is_some(),
            "a dup carries no contents"
        );
        let mut bad = shared;
        bad.flags = 2;
        assert!(DeletedFile::of(&rec, as_bytes(&bad)).is_none(), "unknown flag");
        let mut dup_without_original = head;
        dup_without_original.flags = DELETED_SAME_OPEN_FILE;
        assert!(DeletedFile::of(&rec, as_bytes(&dup_without_original)).is_none());
    }

    #[test]
    fn mqueue_payloads() {
        let rec = record(FD_MQUEUE);
        let head = MqueueState {
            same_as: NOT_SHARED,
            flags: MQ_UNLINKED | MQ_MESSAGES_SAVED,
            msgsize: 8,
            messages: 2,
            ..MqueueState::default()
        };
        let message = |prio: u32, bytes: &[u8]| {
            let mut v = as_bytes(&MqMessage {
                prio,
                len: bytes.len() as u32,
            })
            .to_vec();
            v.extend_from_slice(bytes);
            v
        };
        let payload = |h: &MqueueState, messages: &[Vec<u8>]| {
            let mut v = as_bytes(h).to_vec();
            for m in messages {
                v.extend_from_slice(m);
            }
            v
        };
        let good = payload(&head, &[message(5, b"hi"), message(1, b"")]);
        let (_, saved) = MqueueState::of(&rec, &good).unwrap();
        assert_eq!(saved.collect::<Vec<_>>(), [(5, &b"hi"[..]), (1, &b""[..])]);
        assert!(MqueueState::of(&record(FD_FILE), &good).is_none(), "another kind");
        assert!(
            MqueueState::of(&rec, &good[..good.len() - 1]).is_none(),
            "a message short"
        );
        let rising = payload(&head, &[message(1, b"hi"), message(5, b"")]);
        assert!(MqueueState::of(&rec, &rising).is_none(), "not in receive order");
        let long = payload(&head, &[message(5, b"123456789"), message(1, b"")]);
        assert!(MqueueState::of(&rec, &long).is_none(), "longer than msgsize");
        let extra = payload(&head, &[message(5, b"hi"), message(1, b""), message(0, b"")]);
        assert!(MqueueState::of(&rec, &extra).is_none(), "more than `messages`");
        let mut shared = head;
        shared.same_as = 3;
        assert!(
            MqueueState::of(&rec, &payload(&shared, &[message(5, b"hi"), message(1, b"")])).is_none(),
            "a record sharing another's queue carries no messages"
        );
        shared.messages = 0;
        shared.notify = MQ_NOTIFY_SIGNAL;
        assert!(MqueueState::of(&rec, as_bytes(&shared)).is_none(), "nor a registration");
        let mut bad = head;
        bad.messages = 0;
        bad.notify = 9;
        assert!(MqueueState::of(&rec, as_bytes(&bad)).is_none(), "unknown notification");
        bad.notify = MQ_NOTIFY_NONE;
        bad.flags |= 1 << 10;
        assert!(MqueueState::of(&rec, as_bytes(&bad)).is_none(), "unknown flag");
    }

    #[test]
    fn netlink_payloads() {
        let rec = record(FD_SOCKET);
        let info = SocketInfo {
            domain: AF_NETLINK,
            kind: 3,
            ..SocketInfo::default()
        };
        let state = NetlinkState {
            cookies: 1,
            ..NetlinkState::default()
        };
        let mut data = as_bytes(&info).to_vec();
        assert!(
            SocketInfo::of(&rec, &data).is_some(),
            "an older image: the SocketInfo alone"
        );
        data.extend_from_slice(as_bytes(&state));
        data.extend_from_slice(&[7; COOKIE_LEN]);
        assert_eq!(NetlinkState::of(&rec, &data).map(|(_, c)| c.count()), Some(1));
        assert!(SocketInfo::of(&rec, &data).is_some());
        assert!(
            SocketInfo::of(&rec, &data[..data.len() - 1]).is_none(),
            "a cookie short"
        );
        let mut unix = info;
        unix.domain = 1;
        let mut as_unix = as_bytes(&unix).to_vec();
        as_unix.extend_from_slice(&data[size_of::<SocketInfo>()..]);
        assert!(
            SocketInfo::of(&rec, &as_unix).is_none(),
            "a netlink state after a Unix socket"
        );
    }

    #[test]
    fn inotify_payloads() {
        let rec = record(FD_INOTIFY);
        let watch = |wd: u32, path: &[u8]| {
            let w = InotifyWatch {
                wd,
                path_len: path.len() as u32,
                ..InotifyWatch::default()
            };
            let mut v = as_bytes(&w).to_vec();
            v.extend_from_slice(path);
            v
        };
        let payload = |count: u32, watches: &[Vec<u8>]| {
            let mut v = as_bytes(&InotifyState {
                same_as: NOT_SHARED,
                count,
            })
            .to_vec();
            for w in watches {
                v.extend_from_slice(w);
            }
            v
        };
        let good = payload(2, &[watch(2, b"/a"), watch(5, b"")]);
        let (_, watches) = InotifyState::of(&rec, &good).unwrap();
        let got: Vec<(u32, &[u8])> = watches.map(|(w, p)| (w.wd, p)).collect();
        assert_eq!(got, [(2, &b"/a"[..]), (5, &b""[..])]);
        assert!(
            InotifyState::of(&rec, &payload(3, &[watch(2, b"/a"), watch(5, b"")])).is_none(),
            "count too high"
        );
        assert!(
            InotifyState::of(&rec, &payload(1, &[watch(2, b"/a"), watch(5, b"")])).is_none(),
            "bytes left over"
        );
        assert!(
            InotifyState::of(&rec, &payload(2, &[watch(5, b"/a"), watch(2, b"")])).is_none(),
            "out of order"
        );
        assert!(
            InotifyState::of(&rec, &payload(1, &[watch(0, b"/a")])).is_none(),
            "wd 0"
        );
        assert!(
            InotifyState::of(&rec, &good[..good.len() - 1]).is_none(),
            "a path cut short"
        );
    }
    use crate::sample_image::{sample_image, SAMPLE_PID};
    use std::vec::Vec;

    fn sample_header(file_size: u64) -> Header {
        let mut h = Header::zeroed();
        h.magic = MAGIC;
        h.version = VERSION;
        h.arch = ARCH_X86_64;
        h.header_size = HEADER_SIZE as u32;
        h.page_size = 4096;
        h.meta_offset = 4096;
        h.meta_size = 100;
        h.data_offset = 8192;
        h.data_size = 4096;
        h.file_size = file_size;
        h.time_sec = 1_700_000_000;
        h.thread_count = 1;
        h.seal();
        h
    }

    #[test]
    fn header_round_trip() {
        let h = sample_header(12288);
        let bytes = as_bytes(&h).to_vec();
        assert_eq!(bytes.len(), HEADER_SIZE);
        let back = parse_header(&bytes, 12288).expect("a sealed header parses");
        assert_eq!(as_bytes(&back), &bytes[..]);
        assert_eq!(back.time_sec, 1_700_000_000);
        assert_eq!(back.header_checksum, h.compute_checksum());

        // A longer file is fine; a shorter one is truncated.
        assert!(parse_header(&bytes, 20000).is_ok());
        assert_eq!(
            parse_header(&bytes, 12287).unwrap_err(),
            FormatError::Truncated {
                expected: 12288,
                actual: 12287
            }
        );

        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(
            parse_header(&flipped, 12288).unwrap_err(),
            FormatError::BadHeaderChecksum
        );
        let mut flipped = bytes.clone();
        flipped[HEADER_SIZE - 1] ^= 0x80;
        assert_eq!(
            parse_header(&flipped, 12288).unwrap_err(),
            FormatError::BadHeaderChecksum
        );

        assert_eq!(
            parse_header(&bytes[..HEADER_SIZE - 1], 12288).unwrap_err(),
            FormatError::TooShort
        );
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert_eq!(parse_header(&magic, 12288).unwrap_err(), FormatError::BadMagic);

        let mut v2 = h;
        v2.version = VERSION + 1;
        v2.seal();
        assert_eq!(
            parse_header(as_bytes(&v2), 12288).unwrap_err(),
            FormatError::BadVersion(VERSION + 1)
        );
    }

    /// The sample image's header and a copy of its metadata block.
    fn sample_parts() -> (Header, Vec<u8>) {
        let file = sample_image();
        let h = parse_header(&file[..HEADER_SIZE], file.len() as u64).unwrap();
        let meta = file[h.meta_offset as usize..(h.meta_offset + h.meta_size) as usize].to_vec();
        (h, meta)
    }

    /// Rewrites one record of the metadata, then its checksum, so that only the layout
    /// checks can catch the change.
    fn patched<T: Copy>(h: &Header, meta: &[u8], offset: u64, f: impl FnOnce(&mut T)) -> (Header, Vec<u8>) {
        let mut meta = meta.to_vec();
        let at = offset as usize;
        // SAFETY: T is one of this module's plain records and the slice holds it.
        let mut rec: T = unsafe { core::ptr::read_unaligned(meta[at..].as_ptr() as *const T) };
        f(&mut rec);
        meta[at..at + size_of::<T>()].copy_from_slice(as_bytes(&rec));
        let mut h = *h;
        h.meta_checksum = xxh64(&meta, 0);
        h.seal();
        (h, meta)
    }

    #[test]
    fn sample_metadata_parses() {
        let (h, meta) = sample_parts();
        let m = Meta::parse(&h, &meta).expect("the sample image is valid");
        assert_eq!(m.process().pid, SAMPLE_PID);
        assert_eq!(
            (m.thread_count, m.region_count, m.run_count, m.fd_count()),
            (1, 2, 2, 0)
        );
        assert_eq!(m.thread(0).flags, THREAD_MAIN);
        assert_eq!(m.timer_count(), 2);
        assert_eq!(m.timer(1), crate::sample_image::SAMPLE_TIMERS[1]);
        assert_eq!(m.string(m.region(1).path), b"[vdso]");
        assert_eq!(m.run(1).page_index, 2);
        assert_eq!(
            m.string(StrRef { offset: 9999, len: 4 }),
            b"",
            "out-of-bounds strings read as empty"
        );
    }

    #[test]
    fn metadata_checksum_and_size() {
        let (h, meta) = sample_parts();
        let mut flipped = meta.clone();
        flipped[70] ^= 1;
        assert_eq!(Meta::parse(&h, &flipped).err(), Some(FormatError::BadMetaChecksum));
        assert!(matches!(Meta::parse(&h, &meta[1..]), Err(FormatError::BadLayout(_))));
    }

    #[test]
    fn metadata_layout_violations() {
        let (h, meta) = sample_parts();
        let index: MetaIndex = unsafe_read(&meta, 0);
        let region0 = index.region_offset;
        let region1 = region0 + size_of::<RegionRecord>() as u64;
        let run0 = index.run_offset;
        let timer0 = index.timer_offset;
        let cases: Vec<(&str, (Header, Vec<u8>))> = std::vec![
            (
                "unaligned region",
                patched::<RegionRecord>(&h, &meta, region0, |r| r.start += 1)
            ),
            (
                "empty region",
                patched::<RegionRecord>(&h, &meta, region0, |r| r.end = r.start)
            ),
            (
                "overlapping regions",
                patched::<RegionRecord>(&h, &meta, region1, |r| r.start = 0x12000)
            ),
            (
                "run beyond the run table",
                patched::<RegionRecord>(&h, &meta, region0, |r| r.run_count = 3)
            ),
            (
                "path outside the strings",
                patched::<RegionRecord>(&h, &meta, region0, |r| r.path.offset = 1 << 20)
            ),
            (
                "run past its region",
                patched::<Run>(&h, &meta, run0, |r| r.page_index = 3)
            ),
            ("empty run", patched::<Run>(&h, &meta, run0, |r| r.pages = 0)),
            (
                "run outside the data",
                patched::<Run>(&h, &meta, run0, |r| r.file_offset = 0)
            ),
            ("unaligned run", patched::<Run>(&h, &meta, run0, |r| r.file_offset += 8)),
            (
                "table past the end",
                patched::<MetaIndex>(&h, &meta, 0, |i| i.thread_offset = 1 << 30)
            ),
            (
                "fd table overflow",
                patched::<MetaIndex>(&h, &meta, 0, |i| i.fd_count = u64::MAX / 8)
            ),
            (
                "process paths",
                patched::<ProcessRecord>(&h, &meta, index.process_offset, |p| p.exe.len = 1 << 20)
            ),
            (
                "process reserved",
                patched::<ProcessRecord>(&h, &meta, index.process_offset, |p| p.reserved[6] = 1),
            ),
            (
                "index reserved",
                patched::<MetaIndex>(&h, &meta, 0, |i| i.reserved[5] = 1)
            ),
            (
                "timer table past the end",
                patched::<MetaIndex>(&h, &meta, 0, |i| i.timer_count = 1000)
            ),
            (
                "timer table overflow",
                patched::<MetaIndex>(&h, &meta, 0, |i| i.timer_count = u64::MAX / 16)
            ),
            (
                "timer notification",
                patched::<TimerRecord>(&h, &meta, timer0, |t| t.notify = 3)
            ),
            (
                "timer flags",
                patched::<TimerRecord>(&h, &meta, timer0, |t| t.flags = 1)
            ),
            (
                "timer reserved",
                patched::<TimerRecord>(&h, &meta, timer0, |t| t.reserved[1] = 1)
            ),
            (
                "timer id out of range",
                patched::<TimerRecord>(&h, &meta, timer0, |t| t.id = 1 << 31)
            ),
            (
                "timers not sorted",
                patched::<TimerRecord>(&h, &meta, timer0, |t| t.id = 5)
            ),
        ];
        for (what, (h, meta)) in cases {
            match Meta::parse(&h, &meta) {
                Err(FormatError::BadLayout(_)) => {}
                other => panic!("{}: expected a layout error, got {:?}", what, other.err()),
            }
        }
    }

    /// A version 2 image: the 64-byte index, no timers.
    #[test]
    fn version_2_metadata_parses() {
        let (h, meta) = sample_parts();
        let index: MetaIndex = unsafe_read(&meta, 0);
        let cut = size_of::<MetaIndex>() - META_INDEX_V2_SIZE;
        let mut old = index;
        for off in [
            &mut old.process_offset,
            &mut old.thread_offset,
            &mut old.region_offset,
            &mut old.run_offset,
            &mut old.strings_offset,
        ] {
            *off -= cut as u64;
        }
        let timers = index.timer_count as usize * size_of::<TimerRecord>();
        old.strings_offset -= timers as u64;
        let mut v2 = as_bytes(&old)[..META_INDEX_V2_SIZE].to_vec();
        v2.extend_from_slice(&meta[size_of::<MetaIndex>()..index.timer_offset as usize]);
        v2.extend_from_slice(&meta[index.strings_offset as usize..]);
        let mut h2 = h;
        h2.version = 2;
        h2.meta_size = v2.len() as u64;
        h2.meta_checksum = xxh64(&v2, 0);
        h2.seal();
        let m = Meta::parse(&h2, &v2).expect("a version 2 image parses");
        assert_eq!((m.timer_count(), m.process().pid), (0, SAMPLE_PID));
        assert_eq!(m.string(m.region(1).path), b"[vdso]");
        // The same bytes read as version 3 are not a valid layout.
        h2.version = 3;
        h2.seal();
        assert!(Meta::parse(&h2, &v2).is_err());
    }

    #[test]
    fn timers_map_to_the_restarted_threads() {
        let t = |clock: i32, notify: u32, target: u32| TimerRecord {
            id: 9,
            clock,
            notify,
            target,
            ..TimerRecord::zeroed()
        };
        let renamed = |old: u32| [(100, 200), (101, 201)].iter().find(|m| m.0 == old).map(|m| m.1);
        let thread_clock = |tid: u32| {
            CpuClock {
                pid: tid,
                per_thread: true,
                which: 2,
            }
            .encode()
        };
        assert_eq!(t(1, TIMER_NOTIFY_SIGNAL, 100).restored(100, 2, renamed), Ok((1, 0)));
        assert_eq!(
            t(0, TIMER_NOTIFY_THREAD_ID, 101).restored(100, 2, renamed),
            Ok((0, 201))
        );
        assert_eq!(
            t(0, TIMER_NOTIFY_THREAD_ID, 102).restored(100, 2, renamed),
            Err(TimerRefusal::UnknownTarget { id: 9, tid: 102 })
        );
        // The process's CPU clock, by its old pid or as "self", is the new process's.
        let by_pid = CpuClock {
            pid: 100,
            per_thread: false,
            which: 0,
        };
        assert_eq!(
            t(by_pid.encode(), TIMER_NOTIFY_NONE, 100).restored(100, 2, renamed),
            Ok((-8, 0))
        );
        assert_eq!(t(-6, TIMER_NOTIFY_NONE, 100).restored(100, 2, renamed), Ok((-6, 0)));
        assert_eq!(
            t(by_pid.encode(), TIMER_NOTIFY_NONE, 100).restored(55, 2, renamed),
            Err(TimerRefusal::OtherProcessClock { id: 9, pid: 100 })
        );
        // A thread's CPU clock follows the thread.
        assert_eq!(
            t(thread_clock(101), TIMER_NOTIFY_SIGNAL, 100).restored(100, 2, renamed),
            Ok((thread_clock(201), 0))
        );
        assert_eq!(
            t(thread_clock(7), TIMER_NOTIFY_SIGNAL, 100).restored(100, 2, renamed),
            Err(TimerRefusal::UnknownClockThread { id: 9, tid: 7 })
        );
        // CLOCK_THREAD_CPUTIME_ID: fine with one thread, unknowable with more.
        assert_eq!(t(-2, TIMER_NOTIFY_SIGNAL, 100).restored(100, 1, renamed), Ok((-2, 0)));
        assert_eq!(
            t(-2, TIMER_NOTIFY_SIGNAL, 100).restored(100, 2, renamed),
            Err(TimerRefusal::UnnamedClockThread { id: 9 })
        );
    }

    #[test]
    fn header_layout_violations() {
        let good = sample_header(12288);
        let mut cases = Vec::new();
        let mut h = good;
        h.data_offset = 8000;
        cases.push(("unaligned data", h));
        let mut h = good;
        h.page_size = 3000;
        cases.push(("page size not a power of two", h));
        let mut h = good;
        h.meta_offset = 100;
        cases.push(("metadata inside the header", h));
        let mut h = good;
        h.meta_size = u64::MAX;
        cases.push(("metadata overflow", h));
        let mut h = good;
        h.data_size = 1 << 40;
        cases.push(("data past the file", h));
        let mut h = good;
        h.header_size = 128;
        cases.push(("header size", h));
        let mut h = good;
        h.flags = 1;
        cases.push(("flags", h));
        let mut h = good;
        h.reserved[15] = 1;
        cases.push(("reserved", h));
        for (what, mut h) in cases {
            h.seal();
            match parse_header(as_bytes(&h), h.file_size) {
                Err(FormatError::BadLayout(_)) => {}
                other => panic!("{}: expected a layout error, got {:?}", what, other),
            }
        }
    }

    #[test]
    fn region_checksums_bind_where_runs_go() {
        let data = [7u8; 64];
        let digest = |version: u32, page_index: u64| {
            let mut c = RegionChecksum::new(version);
            c.start_run(&Run {
                page_index,
                pages: 1,
                file_offset: 8192,
            });
            c.update(&data);
            c.digest()
        };
        assert_ne!(digest(2, 0), digest(2, 1), "version 2: a moved run does not pass");
        assert_eq!(digest(1, 0), digest(1, 1), "version 1 covered the data only");
        assert_eq!(digest(1, 0), xxh64(&data, 0));
    }

    #[test]
    fn file_identities() {
        let id = FileIdentity {
            size: 10,
            ctime_sec: 5,
            ctime_nsec: 6,
            flags: FILE_BTIME,
            btime_sec: 1,
            btime_nsec: 2,
            reserved: 0,
        };
        let file = FdRecord {
            kind: FD_FILE,
            ..FdRecord::default()
        };
        let pipe = FdRecord {
            kind: FD_PIPE,
            ..FdRecord::default()
        };
        assert_eq!(FileIdentity::of(&file, as_bytes(&id)), Some(id));
        assert_eq!(
            FileIdentity::of(&pipe, as_bytes(&id)),
            None,
            "a pipe's data is its bytes"
        );
        assert_eq!(FileIdentity::of(&file, &as_bytes(&id)[1..]), None);
        let grown = FileIdentity { size: 11, ..id };
        let reborn = FileIdentity { btime_nsec: 3, ..id };
        let unknown_birth = FileIdentity { flags: 0, ..reborn };
        assert!(grown.changed(&id) && !grown.born_apart(&id));
        assert!(reborn.born_apart(&id) && !reborn.changed(&id));
        assert!(!unknown_birth.born_apart(&id), "without birth times nothing is known");
    }

    #[test]
    fn socket_payloads() {
        let rec = FdRecord {
            kind: FD_SOCKET,
            ..FdRecord::default()
        };
        let info = SocketInfo {
            domain: 1,
            kind: 1,
            protocol: 0,
            reserved: 0,
        };
        let state = SocketState {
            state: SOCKET_PAIR,
            addr_len: 2,
            ..SocketState::default()
        };
        let mut data = as_bytes(&info).to_vec();
        assert_eq!(
            SocketInfo::of(&rec, &data),
            Some(info),
            "an older image's SocketInfo alone"
        );
        assert!(SocketState::of(&rec, &data).is_none());
        data.extend_from_slice(as_bytes(&state));
        for m in [&b"ab"[..], b"", b"xyz"] {
            data.extend_from_slice(&(m.len() as u32).to_le_bytes());
            data.extend_from_slice(m);
        }
        let (s, messages) = SocketState::of(&rec, &data).unwrap();
        assert_eq!(s, state);
        assert_eq!(
            messages.clone().flatten().collect::<Vec<_>>(),
            [&b"ab"[..], b"", b"xyz"]
        );
        assert_eq!(messages.total(), 5);
        assert_eq!(SocketInfo::of(&rec, &data), Some(info));
        // A message that runs past the end, a short state, an unknown state: refused.
        assert!(SocketInfo::of(&rec, &data[..data.len() - 1]).is_none());
        assert!(SocketInfo::of(&rec, &data[..20]).is_none());
        let mut bad = data.clone();
        bad[16] = 9;
        assert!(SocketInfo::of(&rec, &bad).is_none());
        let mut long = data.clone();
        long[16 + 24] = 200; // addr_len beyond addr
        assert!(SocketInfo::of(&rec, &long).is_none());
    }

    #[test]
    fn socket_addresses() {
        let mut v4 = [0u8; 16];
        v4[0] = 2;
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(std::format!("{}", SocketAddr(&v4)), "127.0.0.1:8080");
        let mut v6 = [0u8; 28];
        v6[0] = 10;
        v6[2..4].copy_from_slice(&80u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(std::format!("{}", SocketAddr(&v6)), "[0:0:0:0:0:0:0:1]:80");
        assert_eq!(std::format!("{}", SocketAddr(b"\x01\x00/tmp/s\x00")), "/tmp/s");
        assert_eq!(std::format!("{}", SocketAddr(b"\x01\x00\x00name")), "@name");
        assert_eq!(std::format!("{}", SocketAddr(b"\x01\x00")), "unnamed");
    }

    fn unsafe_read<T: Copy>(bytes: &[u8], at: usize) -> T {
        assert!(at + size_of::<T>() <= bytes.len());
        // SAFETY: bounds checked above; T is a plain record of this module.
        unsafe { core::ptr::read_unaligned(bytes[at..].as_ptr() as *const T) }
    }
}

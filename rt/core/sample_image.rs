//! A small but complete image built by hand, for the tests of every reader (the core's
//! own, and the tool's `inspect`): it pins the format down independently of the writer.
#![deny(unsafe_code)]

use core::mem::size_of;

use crate::image::*;
use crate::xxh64::xxh64;

/// The pid, exe and first region path `sample_image` records.
pub const SAMPLE_PID: u64 = 4242;
pub const SAMPLE_EXE: &[u8] = b"/usr/bin/sample";

/// The sample's POSIX timers: a periodic one signalling the process with SIGALRM on
/// CLOCK_MONOTONIC, and a one-shot one signalling the main thread with SIGRTMIN+2 on
/// the process's CPU-time clock.
pub const SAMPLE_TIMERS: [TimerRecord; 2] = [
    TimerRecord {
        id: 1,
        clock: 1,
        notify: TIMER_NOTIFY_SIGNAL,
        signo: 14,
        target: SAMPLE_PID as u32,
        flags: 0,
        value: 0x1234,
        value_ns: 250_000_000,
        interval_ns: 500_000_000,
        reserved: [0; 2],
    },
    TimerRecord {
        id: 5,
        clock: -6,
        notify: TIMER_NOTIFY_THREAD_ID,
        signo: 36,
        target: SAMPLE_PID as u32,
        flags: 0,
        value: 7,
        value_ns: 3_000_000_000,
        interval_ns: 0,
        reserved: [0; 2],
    },
];

/// A byte buffer filled front to back (no allocator here: the runtime links this crate).
pub struct Bytes<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bytes<N> {
    fn new() -> Self {
        Bytes { buf: [0; N], len: 0 }
    }

    fn extend_from_slice(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl<const N: usize> core::ops::Deref for Bytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> core::ops::DerefMut for Bytes<N> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

const PAGE: u64 = 4096;
/// The sample's size: header page, two metadata pages, two data pages.
pub const SAMPLE_SIZE: usize = 5 * PAGE as usize;

/// A small but complete image: one thread, an anonymous region with two runs (one
/// page skipped), a vdso region with none, and two POSIX timers.
pub fn sample_image() -> Bytes<SAMPLE_SIZE> {
    let mut strings = Bytes::<64>::new();
    let mut add = |s: &[u8]| {
        let r = StrRef {
            offset: strings.len() as u32,
            len: s.len() as u32,
        };
        strings.extend_from_slice(s);
        r
    };
    let exe = add(SAMPLE_EXE);
    let cwd = add(b"/home/\"quoted\"");
    let heap = add(b"[heap]");
    let vdso = add(b"[vdso]");

    let index_size = size_of::<MetaIndex>() as u64;
    let process_offset = index_size;
    let thread_offset = process_offset + size_of::<ProcessRecord>() as u64;
    let region_offset = thread_offset + size_of::<ThreadRecord>() as u64;
    let run_offset = region_offset + 2 * size_of::<RegionRecord>() as u64;
    let timer_offset = run_offset + 2 * size_of::<Run>() as u64;
    let strings_offset = timer_offset + SAMPLE_TIMERS.len() as u64 * size_of::<TimerRecord>() as u64;
    let meta_size = strings_offset + strings.len() as u64;
    let data_offset = align_up(PAGE + meta_size, PAGE);

    let page_a = [0xa5u8; PAGE as usize];
    let mut page_b = [0u8; PAGE as usize];
    for (i, b) in page_b.iter_mut().enumerate() {
        *b = i as u8;
    }

    let runs = [
        Run {
            page_index: 0,
            pages: 1,
            file_offset: data_offset,
        },
        Run {
            page_index: 2,
            pages: 1,
            file_offset: data_offset + PAGE,
        },
    ];
    let mut anon_sum = RegionChecksum::new(VERSION);
    anon_sum.start_run(&runs[0]);
    anon_sum.update(&page_a);
    anon_sum.start_run(&runs[1]);
    anon_sum.update(&page_b);

    let index = MetaIndex {
        process_offset,
        thread_offset,
        region_offset,
        run_offset,
        strings_offset,
        strings_size: strings.len() as u64,
        timer_offset,
        timer_count: SAMPLE_TIMERS.len() as u64,
        ..Default::default()
    };
    let mut p = ProcessRecord::zeroed();
    p.pid = SAMPLE_PID;
    p.vpid = 4000;
    p.generation = 3;
    p.checkpoint_signal = 12;
    p.umask = 0o022;
    p.mm.start_brk = 0x10000;
    p.mm.brk = 0x13000;
    p.exe = exe;
    p.cwd = cwd;
    p.comm[..6].copy_from_slice(b"sample");
    let mut t = ThreadRecord::zeroed();
    t.tid = 4242;
    t.flags = THREAD_MAIN;
    t.sp = 0x7ffd_0000;
    t.name[..6].copy_from_slice(b"sample");
    let anon = RegionRecord {
        start: 0x10000,
        end: 0x13000,
        kind: KIND_ANON_PRIVATE,
        prot: PROT_READ | PROT_WRITE,
        flags: REGION_HEAP,
        run_first: 0,
        run_count: 2,
        path: heap,
        data_checksum: anon_sum.digest(),
        ..Default::default()
    };
    let vdso_region = RegionRecord {
        start: 0x20000,
        end: 0x22000,
        kind: KIND_VDSO,
        prot: PROT_READ | PROT_EXEC,
        run_first: 2,
        run_count: 0,
        path: vdso,
        data_checksum: xxh64(b"", 0),
        ..Default::default()
    };

    let mut meta = Bytes::<{ 2 * PAGE as usize }>::new();
    meta.extend_from_slice(as_bytes(&index));
    meta.extend_from_slice(as_bytes(&p));
    meta.extend_from_slice(as_bytes(&t));
    meta.extend_from_slice(as_bytes(&anon));
    meta.extend_from_slice(as_bytes(&vdso_region));
    for r in &runs {
        meta.extend_from_slice(as_bytes(r));
    }
    for t in &SAMPLE_TIMERS {
        meta.extend_from_slice(as_bytes(t));
    }
    meta.extend_from_slice(&strings);
    assert_eq!(meta.len() as u64, meta_size);

    let mut h = Header::zeroed();
    h.magic = MAGIC;
    h.version = VERSION;
    h.arch = ARCH_X86_64;
    h.header_size = HEADER_SIZE as u32;
    h.page_size = PAGE as u32;
    h.meta_offset = PAGE;
    h.meta_size = meta_size;
    h.meta_checksum = xxh64(&meta, 0);
    h.data_offset = data_offset;
    h.data_size = 2 * PAGE;
    h.file_size = data_offset + 2 * PAGE;
    h.thread_count = 1;
    h.region_count = 2;
    h.run_count = 2;
    h.time_sec = 1_700_000_000;
    h.seal();

    assert_eq!(h.file_size as usize, SAMPLE_SIZE);
    let mut file = Bytes::<SAMPLE_SIZE>::new();
    file.extend_from_slice(&[0; SAMPLE_SIZE]);
    file[..HEADER_SIZE].copy_from_slice(as_bytes(&h));
    file[PAGE as usize..(PAGE + meta_size) as usize].copy_from_slice(&meta);
    file[data_offset as usize..(data_offset + PAGE) as usize].copy_from_slice(&page_a);
    file[(data_offset + PAGE) as usize..].copy_from_slice(&page_b);
    file
}

//! Tests of the shared format code (rt/xxh64.rs, rt/image.rs) as the CLI reads it.

use std::mem::size_of;

use crate::image::*;
use crate::xxh64::{xxh64, Xxh64};

#[test]
fn xxh64_known_vectors() {
    assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
    assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
    assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
}

#[test]
fn xxh64_streaming_matches_one_shot() {
    let data: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let whole = xxh64(&data, 0);
    for piece in [1, 3, 7, 31, 32, 33, 64, 100, 999, 1000] {
        let mut h = Xxh64::new(0);
        for chunk in data.chunks(piece) {
            h.update(chunk);
        }
        assert_eq!(h.digest(), whole, "pieces of {}", piece);
    }
    // Uneven pieces that straddle the 32-byte stripes.
    let mut h = Xxh64::new(0);
    let (a, rest) = data.split_at(5);
    let (b, c) = rest.split_at(290);
    h.update(a);
    h.update(&[]);
    h.update(b);
    h.update(c);
    assert_eq!(h.digest(), whole);
    assert_ne!(xxh64(&data, 1), whole, "the seed matters");
}

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
    v2.version = 2;
    v2.seal();
    assert_eq!(
        parse_header(as_bytes(&v2), 12288).unwrap_err(),
        FormatError::BadVersion(2)
    );
}

/// A small but complete image: one thread, an anonymous region with two runs (one
/// page skipped) and a vdso region with none.
fn sample_image() -> Vec<u8> {
    const PAGE: u64 = 4096;
    let mut strings = Vec::new();
    let mut add = |s: &[u8]| {
        let r = StrRef {
            offset: strings.len() as u32,
            len: s.len() as u32,
        };
        strings.extend_from_slice(s);
        r
    };
    let exe = add(b"/usr/bin/sample");
    let cwd = add(b"/home/\"quoted\"");
    let heap = add(b"[heap]");
    let vdso = add(b"[vdso]");

    let index_size = size_of::<MetaIndex>() as u64;
    let process_offset = index_size;
    let thread_offset = process_offset + size_of::<ProcessRecord>() as u64;
    let region_offset = thread_offset + size_of::<ThreadRecord>() as u64;
    let run_offset = region_offset + 2 * size_of::<RegionRecord>() as u64;
    let strings_offset = run_offset + 2 * size_of::<Run>() as u64;
    let meta_size = strings_offset + strings.len() as u64;
    let data_offset = align_up(PAGE + meta_size, PAGE);

    let page_a = vec![0xa5u8; PAGE as usize];
    let page_b: Vec<u8> = (0..PAGE).map(|i| i as u8).collect();
    let mut anon_sum = Xxh64::new(0);
    anon_sum.update(&page_a);
    anon_sum.update(&page_b);

    let index = MetaIndex {
        process_offset,
        thread_offset,
        region_offset,
        run_offset,
        strings_offset,
        strings_size: strings.len() as u64,
        ..Default::default()
    };
    let mut p = ProcessRecord::zeroed();
    p.pid = 4242;
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

    let mut meta = Vec::new();
    meta.extend_from_slice(as_bytes(&index));
    meta.extend_from_slice(as_bytes(&p));
    meta.extend_from_slice(as_bytes(&t));
    meta.extend_from_slice(as_bytes(&anon));
    meta.extend_from_slice(as_bytes(&vdso_region));
    for r in &runs {
        meta.extend_from_slice(as_bytes(r));
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

    let mut file = vec![0u8; h.file_size as usize];
    file[..HEADER_SIZE].copy_from_slice(as_bytes(&h));
    file[PAGE as usize..(PAGE + meta_size) as usize].copy_from_slice(&meta);
    file[data_offset as usize..(data_offset + PAGE) as usize].copy_from_slice(&page_a);
    file[(data_offset + PAGE) as usize..].copy_from_slice(&page_b);
    file
}

/// Opens, parses and verifies an image file the way `mtcp inspect` does.
fn check_file(dir: &crate::TempDir, bytes: &[u8], name: &str) -> Result<Vec<bool>, String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let (file, header) = crate::inspect::open_image(&path).map_err(|e| format!("{:?}", e))?;
    let mut meta_bytes = vec![0u8; header.meta_size as usize];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut meta_bytes, header.meta_offset).unwrap();
    let meta = Meta::parse(&header, &meta_bytes).map_err(|e| e.message().to_string())?;
    assert_eq!(meta.process().pid, 4242);
    assert_eq!(meta.string(meta.process().exe), b"/usr/bin/sample");
    assert_eq!(meta.string(meta.region(0).path), b"[heap]");
    let checks = crate::inspect::verify(&file, &header, &meta).unwrap();
    assert_eq!(checks[0].saved_pages, 2);
    assert_eq!(checks[1].saved_pages, 0);
    Ok(checks.iter().map(|c| c.ok()).collect())
}

#[test]
fn whole_image_checks() {
    let dir = crate::TempDir::new("format-image");
    let good = sample_image();
    assert_eq!(check_file(&dir, &good, "good.mtcp").unwrap(), vec![true, true]);

    let mut bad_data = good.clone();
    let last = bad_data.len() - 1;
    bad_data[last] ^= 1;
    assert_eq!(check_file(&dir, &bad_data, "bad-data.mtcp").unwrap(), vec![false, true]);

    let mut bad_meta = good.clone();
    bad_meta[4096 + 60] ^= 1;
    assert_eq!(
        check_file(&dir, &bad_meta, "bad-meta.mtcp").unwrap_err(),
        FormatError::BadMetaChecksum.message()
    );

    let short = &good[..good.len() - 1];
    let err = check_file(&dir, short, "short.mtcp").unwrap_err();
    assert!(err.contains("truncated"), "{}", err);
}

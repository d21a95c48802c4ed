//! Random damage to images, thousands of times: the image reader (header, metadata, every
//! record and string) never panics, `mtcp inspect` always ends with an exit code (never
//! a signal or a panic), and `mtcp_restart` refuses every damaged image with one line
//! and exit 1 (its checks run before it changes anything, the data's as it maps).
//!
//! Deterministic (a fixed seed): a failure names the mutant's number, and the same run
//! finds it again. A longer run is one command:
//!   MTCP_FUZZ_ITERATIONS=200000 cargo test --release --test fuzz_images
//! (the default, for CI, is 20000 mutants read in-process, every 40th also given to
//! `mtcp inspect` and every 100th to `mtcp_restart`).

pub mod common;

use common::*;
use mtcp_core::image::{self, Header, Meta, HEADER_SIZE};
use mtcp_core::xxh64::xxh64;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// xorshift64*: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break arithmetic and bounds more often than random ones do.
const EDGES: [u64; 8] = [0, 1, 4095, 4096, 0x7fff_ffff, 0xffff_ffff, i64::MAX as u64, u64::MAX];

/// One mutant of `good`: a few random changes; with `reseal`, the header and metadata
/// checksums are made right again so that the checks behind them are reached.
fn mutate(good: &[u8], rng: &mut Rng, reseal: bool) -> Vec<u8> {
    let mut m = good.to_vec();
    let header = image::parse_header(&good[..HEADER_SIZE], good.len() as u64).unwrap();
    let (meta_at, meta_len) = (header.meta_offset as usize, header.meta_size as usize);
    for _ in 0..1 + rng.below(4) {
        // Mostly the header and metadata, where the parsing is; sometimes anywhere.
        let at = match rng.below(10) {
            0..=2 => rng.below(HEADER_SIZE),
            3..=8 => meta_at + rng.below(meta_len),
            _ => rng.below(m.len()),
        };
        match rng.below(4) {
            0 => m[at] ^= 1 << rng.below(8),
            1 => m[at] = rng.next() as u8,
            2 => {
                let at = at & !7;
                let v = EDGES[rng.below(EDGES.len())].wrapping_add(rng.below(3) as u64);
                if at + 8 <= m.len() {
                    m[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                let at = at & !3;
                if at + 4 <= m.len() {
                    m[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
            }
        }
    }
    match rng.below(20) {
        0 => m.truncate(rng.below(m.len())),
        1 => m.extend(std::iter::repeat_n(0u8, 1 + rng.below(8192))),
        _ => {}
    }
    if reseal && m.len() >= meta_at + meta_len && m.len() >= HEADER_SIZE {
        let sum = xxh64(&m[meta_at..meta_at + meta_len], 0);
        m[40..48].copy_from_slice(&sum.to_le_bytes());
        let sum = xxh64(&m[..248], 0);
        m[248..256].copy_from_slice(&sum.to_le_bytes());
    }
    m
}

/// Reads everything the way the readers do; returns whether the image passed.
fn read_all(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(HEADER_SIZE)];
    let Ok(h): Result<Header, _> = image::parse_header(head, bytes.len() as u64) else {
        return false;
    };
    let (at, len) = (h.meta_offset as usize, h.meta_size as usize);
    let Some(meta_bytes) = bytes.get(at..at.saturating_add(len)) else {
        return false;
    };
    let Ok(meta) = Meta::parse(&h, meta_bytes) else {
        return false;
    };
    let p = meta.process();
    let _ = (meta.string(p.cwd), meta.string(p.exe));
    for i in 0..meta.thread_count {
        let _ = meta.thread(i);
    }
    for i in 0..meta.region_count {
        let r = meta.region(i);
        let _ = meta.string(r.path);
        for j in 0..r.run_count as usize {
            let run = meta.run(r.run_first as usize + j);
            assert!(run.file_offset + run.pages * h.page_size as u64 <= h.data_offset + h.data_size);
        }
    }
    for i in 0..meta.fd_count() {
        let f = meta.fd(i);
        let _ = (meta.string(f.path), meta.string(f.data));
    }
    for i in 0..meta.timer_count() {
        let _ = meta.timer(i);
    }
    true
}

fn iterations() -> usize {
    std::env::var("MTCP_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn damaged_images_never_crash_a_reader() {
    let t = Test::new("fuzz_images");
    // A short-lived program, so that a mutant that happens to restart ends by itself.
    let prog = t.compile("counter", Variant::Dynamic, Bits::B64, &[]);
    let mut p = t.launch(&prog, &["60"]);
    p.wait_for_count(2, LINE_TIMEOUT);
    let real = fs::read(checkpoint(p.pid())).unwrap();
    p.kill9();
    let sample = mtcp_core::sample_image::sample_image().to_vec();
    assert!(read_all(&real) && read_all(&sample), "the unharmed images must pass");

    let mutant_path = t.path("mutant.mtcp");
    let mut rng = Rng(0x6d74_6370_f022_2026);
    let started = Instant::now();
    let (mut passed, mut inspected, mut restarted) = (0usize, 0usize, 0usize);
    let mut problems: Vec<String> = Vec::new();
    for n in 0..iterations() {
        let good: &[u8] = if n % 4 == 0 { &sample } else { &real };
        let reseal = n % 2 == 0;
        let m = mutate(good, &mut rng, reseal);
        let read = std::panic::catch_unwind(|| read_all(&m));
        match read {
            Ok(true) => passed += 1,
            Ok(false) => {}
            Err(_) => problems.push(format!("mutant {n}: the image reader panicked")),
        }
        if n % 40 == 0 {
            fs::write(&mutant_path, &m).unwrap();
            inspected += 1;
            let out = mtcp(&["inspect", mutant_path.to_str().unwrap()], Duration::from_secs(30));
            if out.status.code().is_none_or(|c| c > 2) {
                problems.push(format!("mutant {n}: mtcp inspect\n{}", describe_output(&out)));
            }
        }
        // Only damage that no checksum was fixed for: all of it must be refused.
        if n % 100 == 1 && !reseal && std::ptr::eq(good, real.as_slice()) && m != real {
            fs::write(&mutant_path, &m).unwrap();
            restarted += 1;
            let out = run_restart_program(Bits::B64.mtcp_restart(), &mutant_path, &t.dir);
            let err = String::from_utf8_lossy(&out.stderr);
            // Damage only in padding no checksum covers changes nothing: that mutant
            // restarts, and the program counts to its end.
            let harmless = out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done 60");
            if !harmless && (out.status.code() != Some(1) || err.trim().lines().count() != 1) {
                problems.push(format!(
                    "mutant {n}: mtcp_restart did not refuse it with one line ({:?}, signal {:?})\n{}",
                    out.status.code(),
                    out.status.signal(),
                    describe_output(&out)
                ));
            }
        }
        if problems.len() >= 5 {
            break;
        }
    }
    eprintln!(
        "[fuzz] {} mutants in {:?}: {passed} passed the reader's checks, {inspected} given to inspect, {restarted} to mtcp_restart",
        iterations(),
        started.elapsed()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // Keep the run honest: most damage must be caught, and the checks behind the
    // checksums must have been reached.
    assert!(
        passed < iterations() / 2,
        "{passed} mutants passed: the damage is not reaching the checks"
    );
}

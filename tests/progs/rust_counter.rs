//! rust_counter: the counter of counter.c written with Rust's std, run under `mtcp launch`
//! (libmtcp.so preloaded). Every ~50 ms prints `count N`, after checking a 1 MiB buffer's
//! checksum, a growing list of heap blocks with patterns, blocks taken with libc's sbrk
//! (up to 256, so the brk heap grows across the restart), and a thread-local value.
//! `BAD ...` and exit 3 on corruption; argv[1] is the limit (default 100000), then `done N`.
//! Built by the tests with `rustc -O`.

use std::cell::Cell;
use std::io::Write;
use std::time::Duration;

extern "C" {
    /// libc's sbrk (std links libc): grows the brk heap that the restart must restore.
    fn sbrk(increment: isize) -> *mut u8;
}

thread_local! {
    static TLS: Cell<u64> = const { Cell::new(0) };
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn checksum(data: &[u64]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &w| (h ^ w).wrapping_mul(0x0100_0000_01b3))
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed.wrapping_mul(131).wrapping_add(i as u64 * 7) & 0xff) as u8).collect()
}

fn bad(what: &str, detail: u64) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "BAD {what} {detail}");
    let _ = out.flush();
    std::process::exit(3)
}

fn main() {
    let limit: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut buf: Vec<u64> = (0..(1 << 20) / 8).map(|_| rng.next()).collect();
    let mut sum = checksum(&buf);
    let mut blocks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    let mut brk_blocks: Vec<(*mut u8, u8)> = Vec::new();
    TLS.with(|t| t.set(0xfeed));

    let stdout = std::io::stdout();
    {
        let mut out = stdout.lock();
        let _ = writeln!(out, "start {}", std::process::id());
        let _ = out.flush();
    }
    for count in 1..=limit {
        if checksum(&buf) != sum {
            bad("checksum", count);
        }
        for _ in 0..8 {
            let i = (rng.next() % buf.len() as u64) as usize;
            buf[i] = rng.next();
        }
        sum = checksum(&buf);
        for (seed, b) in &blocks {
            if *b != pattern(*seed, b.len()) {
                bad("heap", *seed);
            }
        }
        if blocks.len() < 200 {
            let seed = count;
            let len = 16 + (count as usize * 2654435761usize) % 30000;
            blocks.push((seed, pattern(seed, len)));
        }
        for (i, s) in strings.iter().enumerate() {
            if *s != format!("string number {i}") {
                bad("string", i as u64);
            }
        }
        if strings.len() < 500 {
            strings.push(format!("string number {}", strings.len()));
        }
        for &(p, fill) in &brk_blocks {
            // SAFETY: each block is 4096 bytes that sbrk gave us and nothing else uses.
            let block = unsafe { std::slice::from_raw_parts(p, 4096) };
            if block.iter().any(|&b| b != fill) {
                bad("sbrk", fill as u64);
            }
        }
        if brk_blocks.len() < 256 {
            // SAFETY: sbrk returns the start of 4096 new bytes, or (void*)-1 on failure.
            let p = unsafe { sbrk(4096) };
            if p as isize == -1 {
                bad("sbrk failed", count);
            }
            let fill = (count % 251) as u8;
            // SAFETY: p is valid for 4096 bytes (just allocated).
            unsafe { std::ptr::write_bytes(p, fill, 4096) };
            brk_blocks.push((p, fill));
        }
        if TLS.with(|t| t.get()) != 0xfeed {
            bad("tls", count);
        }
        {
            let mut out = stdout.lock();
            let _ = writeln!(out, "count {count}");
            let _ = out.flush();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = stdout.lock();
    let _ = writeln!(out, "done {limit}");
    let _ = out.flush();
}

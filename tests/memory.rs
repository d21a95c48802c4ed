//! Memory of every shape through checkpoint, SIGKILL and restart (tests/progs/memory.c
//! checks its contents at every count): dense data rewritten as it runs, pages written
//! far apart in a large `MAP_NORESERVE` reservation, pages of the kernel's zero page,
//! pages cleared to zeros, data under `PROT_NONE`; twice in a row, so that the second
//! checkpoint is of a restarted process. For x86_64 and i386 programs.

pub mod common;

use common::*;
use std::time::Duration;

const LIMIT: u64 = 200;

fn shapes(bits: Bits) {
    let t = Test::new(&bits.name("memory_shapes"));
    let prog = t.compile("memory", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &[&LIMIT.to_string()]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let first = cycle(&t, p);
    let reserve: u64 = if bits == Bits::B64 { 64 << 30 } else { 1 << 30 };
    let size = std::fs::metadata(&first.image).unwrap().len();
    assert!(
        size < 64 << 20,
        "the image is {size} bytes: only the pages written belong in it, not the {reserve}-byte reservation"
    );
    let second = cycle(&t, first.restarted);
    let mut r = second.restarted;
    expect_done(&mut r, LIMIT, Duration::from_secs(30));
}

per_width!(memory_shapes, memory_shapes_32 => shapes());

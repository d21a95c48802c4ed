//! i386 only: what has no x86_64 counterpart. The single-threaded scenarios run for 32-bit
//! programs (built with `gcc -m32`, or `rustc --target i686-unknown-linux-gnu`) as the
//! `*_32` tests of checkpoint_restart.rs (with a 32-bit and a 64-bit computation side by
//! side), triggers.rs, bad_images.rs and, for multi-threaded programs, threads.rs.
//! All of them need the i686 build of the runtime and of mtcp_restart
//! (`cargo build --release --target i686-unknown-linux-gnu`). Here: images of the wrong
//! architecture given to each mtcp_restart.

pub mod common;

use common::*;
use std::path::PathBuf;

/// Each mtcp_restart refuses an image of the other architecture: exit 1, one line on
/// stderr naming the architecture, the address space untouched (no signal).
#[test]
fn wrong_architecture_images_are_refused() {
    let t = Test::new("i386_wrong_arch");
    let prog32 = t.compile_as("counter", "counter32", Variant::Dynamic, Bits::B32, &[]);
    let prog64 = t.compile_as("counter", "counter64", Variant::Dynamic, Bits::B64, &[]);
    let image32 = image_of(&t, &prog32);
    let image64 = image_of(&t, &prog64);
    assert_eq!((image_arch(&image32), image_arch(&image64)), (3, 62));
    let mut problems = Vec::new();
    let cases: [(Bits, &PathBuf, &[&str]); 2] = [
        (Bits::B64, &image32, &["i386", "i686", "32-bit"]),
        (Bits::B32, &image64, &["x86_64", "x86-64", "64-bit"]),
    ];
    for (bits, image, keywords) in cases {
        let program = bits.mtcp_restart();
        let out = run_restart_program(program, image, &t.dir);
        problems.extend(one_line_failure(
            &format!(
                "{} ({}) given the {} image {}",
                program.display(),
                bits.arch(),
                bits.other().arch(),
                image.display()
            ),
            &out,
            true,
            keywords,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // And the CLI still picks the right one for each.
    for image in [&image32, &image64] {
        let mut r = t.restart(image);
        r.wait_first_count(LINE_TIMEOUT);
        r.assert_no_bad();
    }
}

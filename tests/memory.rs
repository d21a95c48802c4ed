//! Memory of every shape through checkpoint, SIGKILL and restart (tests/progs/memory.c
//! checks its contents at every count): dense data rewritten as it runs, pages written
//! far apart in a large `MAP_NORESERVE` reservation, pages of the kernel's zero page,
//! pages cleared to zeros, data under `PROT_NONE`, `MADV_DONTFORK` and `MADV_WIPEONFORK`
//! memory, a shared page; twice in a row, so that the second checkpoint is of a
//! restarted process. The first restart maps the image's memory: a later checkpoint must
//! leave the file it is mapped from as it was. Restarts with `--eager` read everything.
//! For x86_64 and i386 programs.

pub mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: u64 = 200;

fn file_hash(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes.chunks(8).fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ c.iter().fold(0u64, |a, &b| a << 8 | b as u64)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Whether process `pid` has memory mapped from `image` (by inode: the name may have
/// been replaced since).
fn maps_image(pid: i32, image: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(image).unwrap().ino().to_string();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines().any(|l| l.split_whitespace().nth(4) == Some(ino.as_str()))
}

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
    // The restarted process's memory comes from the image file itself.
    let kept = t.path("first.mtcp");
    std::fs::hard_link(&first.image, &kept).unwrap();
    assert!(
        maps_image(first.restarted.program_pid(), &kept),
        "the restarted process maps none of its memory from the image"
    );
    let before = file_hash(&kept);
    // Its next checkpoint replaces the image's name with a new file, never the file.
    let second = cycle(&t, first.restarted);
    assert_eq!(
        file_hash(&kept),
        before,
        "a later checkpoint changed the image a process is mapped from"
    );
    std::fs::remove_file(&kept).unwrap();
    let mut r = second.restarted;
    expect_done(&mut r, LIMIT, Duration::from_secs(30));
}

per_width!(memory_shapes, memory_shapes_32 => shapes());

/// `mtcp restart --eager` reads every page into place: nothing is mapped from the image.
fn eager(bits: Bits) {
    let t = Test::new(&bits.name("memory_eager"));
    let prog = t.compile("memory", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &[&LIMIT.to_string()]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let before = p.last_count().unwrap();
    let image = checkpoint(p.pid());
    p.kill9();
    p.assert_no_bad();
    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(["restart", "--eager"]).arg(&image).current_dir(&t.dir);
    let mut r = Proc::spawn(cmd, "restart --eager");
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before,
        "restarted at count {first}, checkpointed after {before}"
    );
    assert!(
        !maps_image(r.program_pid(), &image),
        "--eager mapped memory from the image"
    );
    expect_done(&mut r, LIMIT, Duration::from_secs(30));
}

per_width!(memory_eager, memory_eager_32 => eager());

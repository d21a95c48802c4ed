//! Deleted files still open (tmpfile(), O_TMPFILE, an unlinked log) come back with their
//! contents, offsets and sharing, still unlinked; one above MTCP_DELETED_LIMIT fails
//! the checkpoint and leaves the previous image alone. FIFOs opened by path come back
//! without blocking, with their flags and the bytes waiting in them; inotify watches
//! come back under their old numbers.

pub mod common;

use common::*;
use std::time::Duration;

/// The /proc/PID/fd links of `pid` that end in " (deleted)".
fn deleted_links(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| l.ends_with(" (deleted)"))
                .collect()
        })
        .unwrap_or_default()
}

fn deleted_files(bits: Bits) {
    let t = Test::new(&bits.name("delfiles"));
    let prog = t.compile("delfiles", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["150"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let before = deleted_links(p.pid()).len();
    // tmpfile, its dup, the O_TMPFILE file, the log and its second open.
    assert_eq!(before, 5, "expected 5 deleted files open\n{}", p.describe());
    let c = cycle(&t, p);

    let json = inspect_json(&c.image);
    let deleted: Vec<&serde_json::Value> = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "deleted")
        .collect();
    assert_eq!(
        deleted.len(),
        5,
        "inspect shows {} deleted files: {json}",
        deleted.len()
    );
    let saved = deleted.iter().filter(|f| f["state"]["saved_bytes"].is_u64()).count();
    let shared = deleted.iter().filter(|f| f["state"]["same_as"].is_u64()).count();
    assert_eq!((saved, shared), (3, 2), "3 files saved, 2 records sharing them: {json}");
    assert!(
        inspect_text(&c.image).contains("bytes saved"),
        "the text view does not show a deleted file's saved bytes"
    );

    // And again, from the restarted process.
    let mut r = c.restarted;
    assert_eq!(
        deleted_links(r.program_pid()).len(),
        5,
        "the files are not unlinked after restart"
    );
    let c2 = cycle(&t, r);
    r = c2.restarted;
    assert_eq!(
        deleted_links(r.program_pid()).len(),
        5,
        "the files are not unlinked after the second restart"
    );
    expect_done(&mut r, 150, Duration::from_secs(30));
}

per_width!(
    /// tmpfile(), O_TMPFILE and a deleted log keep their contents (checksummed by the
    /// program), offsets, sharing (a dup, a second open) and stay unlinked, through two
    /// restarts.
    deleted_files_come_back_unlinked, deleted_files_come_back_unlinked_32 => deleted_files()
);

fn over_the_limit(bits: Bits) {
    let t = Test::new(&bits.name("dellimit"));
    let prog = t.compile("delfiles", Variant::Dynamic, bits, &[]);
    let mut p = t.launch_with(&["--deleted-limit", "512K"], &prog, &["100000", "30"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    let good = std::fs::read(&image).unwrap();
    p.wait_for_line("`grown`", LINE_TIMEOUT, |l| l == "grown");
    let out = try_checkpoint(p.pid());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a checkpoint with a deleted file over the limit succeeded:\n{}",
        describe_output(&out)
    );
    assert!(
        err.contains("MTCP_DELETED_LIMIT") && err.contains("524288") && err.contains("(deleted)"),
        "the failure does not name the file and the limit:\n{}",
        describe_output(&out)
    );
    assert!(std::fs::read(&image).unwrap() == good, "the previous image changed");
    // The program goes on.
    let n = p.last_count().unwrap();
    p.wait_for_count(n + 3, LINE_TIMEOUT);
    p.assert_no_bad();
    p.kill9();
}

per_width!(
    /// A deleted file larger than MTCP_DELETED_LIMIT fails the checkpoint with a message
    /// naming it and the limit; the previous image stays as it was.
    deleted_file_over_the_limit_fails_the_checkpoint,
    deleted_file_over_the_limit_fails_the_checkpoint_32 => over_the_limit()
);

fn fifos(bits: Bits) {
    let t = Test::new(&bits.name("fifos"));
    let prog = t.compile("fifos", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["80", "40"]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let mut c = cycle(&t, p);
    assert!(c.first < 40, "the checkpoint must come before the held message is read");
    let json = inspect_json(&c.image);
    let fifos: Vec<&serde_json::Value> = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "fifo")
        .collect();
    assert_eq!(fifos.len(), 2, "inspect shows {} FIFOs: {json}", fifos.len());
    let r = &mut c.restarted;
    let held = r.wait_for_line("`held ...`", Duration::from_secs(20), |l| l.starts_with("held "));
    assert_eq!(
        held,
        "held kept-in-the-fifo",
        "the bytes in the FIFO changed\n{}",
        r.describe()
    );
    expect_done(r, 80, Duration::from_secs(20));
}

per_width!(
    /// A FIFO opened O_RDWR keeps its bytes and a FIFO opened O_RDONLY|O_NONBLOCK with no
    /// writer comes back without the restart blocking, both with their flags.
    fifos_come_back_with_their_bytes_and_flags, fifos_come_back_with_their_bytes_and_flags_32 => fifos()
);

fn inotify(bits: Bits) {
    let t = Test::new(&bits.name("inotify"));
    let prog = t.compile("inotify", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["150"]);
    let wds = p.wait_for_line("`wds ...`", LINE_TIMEOUT, |l| l.starts_with("wds "));
    assert_eq!(wds, "wds 2 3", "the program's watches were not numbered as expected");
    p.wait_for_count(3, LINE_TIMEOUT);
    let c = cycle(&t, p);

    let json = inspect_json(&c.image);
    let rec = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "inotify")
        .unwrap_or_else(|| panic!("no inotify record: {json}"));
    let watches = rec["state"]["watches"].as_array().unwrap();
    let wds: Vec<u64> = watches.iter().map(|w| w["wd"].as_u64().unwrap()).collect();
    assert_eq!(wds, [2, 3], "{rec}");
    assert!(
        watches[0]["path"].as_str().is_some_and(|p| p.ends_with("/watched")),
        "wd 2's path was not found: {rec}"
    );

    let mut r = c.restarted;
    std::fs::write(t.path("watched/probe-after"), b"").unwrap();
    std::fs::write(t.path("other/victim"), b"").unwrap();
    std::fs::remove_file(t.path("other/victim")).unwrap();
    r.wait_for_line("an IN_CREATE event on wd 2", Duration::from_secs(10), |l| {
        l == "event wd 2 mask 100 name probe-after"
    });
    r.wait_for_line("an IN_DELETE event on wd 3", Duration::from_secs(10), |l| {
        l == "event wd 3 mask 200 name victim"
    });
    let n = r.last_count().unwrap();
    r.wait_for_count(n + 3, LINE_TIMEOUT);
    r.assert_no_bad();
    assert!(
        !r.lines().iter().any(|l| l.starts_with("event wd 1 ")),
        "the placeholder watch showed through\n{}",
        r.describe()
    );
    r.kill9();
}

per_width!(
    /// An inotify watcher on two directories (wd 1 removed before): after a restart,
    /// creating and deleting files there give events with the same wd numbers, and the
    /// descriptor keeps O_NONBLOCK and FD_CLOEXEC.
    inotify_watches_keep_their_numbers, inotify_watches_keep_their_numbers_32 => inotify()
);

fn over_the_image_total(bits: Bits) {
    let t = Test::new(&bits.name("deltotal"));
    let prog = t.compile("bigdeleted", Variant::Dynamic, bits, &[]);
    // More than a restart's scratch memory takes (96 MiB, 24 MiB for i386), each file
    // within MTCP_DELETED_LIMIT.
    let mib = if bits == Bits::B64 { "100" } else { "30" };
    let mut p = t.launch_with(&["--deleted-limit", "200M"], &prog, &[mib]);
    p.wait_for_count(2, LINE_TIMEOUT);
    let out = try_checkpoint(p.pid());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("an image can carry") && err.contains("(deleted)"),
        "deleted files beyond what a restart can take back did not fail the checkpoint clearly:\n{}",
        describe_output(&out)
    );
    assert!(images_in(&t.dir).is_empty(), "an image was left behind");
    let n = p.last_count().unwrap();
    p.wait_for_count(n + 2, LINE_TIMEOUT);
    p.assert_no_bad();
    p.kill9();
}

per_width!(
    /// Deleted files that together exceed what mtcp_restart can read back fail the
    /// checkpoint with a message, rather than write an image no restart can take.
    deleted_files_beyond_an_image_fail_the_checkpoint,
    deleted_files_beyond_an_image_fail_the_checkpoint_32 => over_the_image_total()
);

/// A deleted file also mapped shared: the restart says the mapping and the file no
/// longer share writes, and the file's contents are intact.
#[test]
fn deleted_file_mapped_shared_is_named() {
    let t = Test::new("delshared");
    let prog = t.compile_c("bigdeleted", Variant::Dynamic, &[]);
    let mut p = t.launch(&prog, &["2", "shared"]);
    p.wait_for_count(2, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    let mut r = t.restart(&image);
    let n = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(n + 3, LINE_TIMEOUT);
    r.assert_no_bad();
    assert!(
        r.stderr_lines().iter().any(|l| l.contains("was also mapped shared")),
        "the restart did not name the shared mapping\n{}",
        r.describe()
    );
    r.kill9();
}

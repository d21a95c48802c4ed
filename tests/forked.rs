//! Forked checkpoints: the writer that holds the snapshot must be invisible to the
//! program (tests/progs/forked.c reaps with `waitpid(-1, __WALL)` and `wait3`, counts
//! its SIGCHLDs and checks its memory and a shared page every count): it is not the
//! program's child, holds none of its files (an flock the program releases is free at
//! once), and the image restarts. Requests that overlap a writer are each answered; a
//! program that adopts orphans (a subreaper) gets its image written in place; the
//! blocking mode (`mtcp launch --blocking`) still works. For x86_64 and i386 programs.

pub mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Processes named `mtcp-writer` that run `prog` (a fork keeps the program's
/// command line).
fn writers_of(prog: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let arg0 = cmdline.split(|&c| c == 0).next().unwrap_or(b"");
        if comm.trim() == "mtcp-writer" && arg0 == prog.as_os_str().as_encoded_bytes() {
            found.push(pid);
        }
    }
    found
}

/// The children of every thread of `pid`.
fn children(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        all.extend(text.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
    }
    all
}

fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("PPid:"))?;
    line[5..].trim().parse().ok()
}

fn own_child(p: &Proc) -> i32 {
    let start = p.lines().into_iter().find(|l| l.starts_with("start ")).unwrap();
    start.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn writer_is_invisible(bits: Bits) {
    let t = Test::new(&bits.name("forked_writer_is_invisible"));
    let prog = t.compile("forked", Variant::Dynamic, bits, &[]);
    let lock = t.path("lockfile");
    let mut p = t.launch(&prog, &[lock.to_str().unwrap(), "256"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let child = own_child(&p);
    let before = p.last_count().unwrap();
    // The plain signal, so that the writer can be watched while it works.
    assert!(send_signal(p.pid(), SIGUSR2));
    let deadline = Instant::now() + Duration::from_secs(20);
    let writer = loop {
        if let Some(&w) = writers_of(&prog).first() {
            break Some(w);
        }
        if Instant::now() > deadline || t.images().len() == 1 {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut seen_working = false;
    if let Some(w) = writer {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{w}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .map(|l| l.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(ppid) = parent_of(w) {
            seen_working = true;
            assert_ne!(ppid, p.pid(), "the writer {w} is a child of the program");
            let lock_name = lock.display().to_string();
            let program_files: Vec<&String> = fds
                .iter()
                .filter(|f| **f == lock_name || f.starts_with("pipe:") || f.starts_with("socket:"))
                .collect();
            assert!(
                program_files.is_empty(),
                "the writer {w} holds files of the program: {program_files:?} (all: {fds:?})"
            );
        }
        // The intermediate process that made the writer may take a moment to be reaped
        // (while the program's threads are still parked).
        let deadline = Instant::now() + Duration::from_secs(2);
        while children(p.pid()) != vec![child] && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            children(p.pid()),
            vec![child],
            "the program's children while its writer works"
        );
        // The program lets its lock go; nobody else may still hold it.
        assert!(send_signal(p.pid(), SIGUSR1));
        p.wait_for_line("`unlocked`", LINE_TIMEOUT, |l| l == "unlocked");
        let free = Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap();
        seen_working &= parent_of(w).is_some();
        assert!(free.success(), "the lock the program released is still held");
    }
    eprintln!(
        "[{}] writer {:?} {} while it was checked",
        t.name,
        writer,
        if seen_working {
            "was still working"
        } else {
            "had finished"
        }
    );
    // The image is complete once the writer is gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writers_of(&prog).is_empty() || t.images().is_empty() {
        assert!(Instant::now() < deadline, "the writer did not finish within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let image = t.images().pop().unwrap();
    let at_kill = p.wait_for_count(p.last_count().unwrap() + 3, LINE_TIMEOUT);
    assert_eq!(
        children(p.pid()),
        vec![child],
        "the program's children after the checkpoint"
    );
    p.kill9();
    p.assert_no_bad();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "restarted at count {first}, the checkpoint was asked for after count {before}"
    );
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
}

per_width!(forked_writer_is_invisible, forked_writer_is_invisible_32 => writer_is_invisible());

/// Two `mtcp checkpoint` at once: a writer is busy when the second request comes; both
/// are answered, and the image restarts.
fn overlapping_requests(bits: Bits) {
    let t = Test::new(&bits.name("forked_overlapping_requests"));
    let prog = t.compile("forked", Variant::Dynamic, bits, &[]);
    let lock = t.path("lockfile");
    let mut p = t.launch(&prog, &[lock.to_str().unwrap(), "128"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let pid = p.pid();
    let asks: Vec<_> = (0..3).map(|_| std::thread::spawn(move || checkpoint(pid))).collect();
    let images: Vec<_> = asks.into_iter().map(|a| a.join().unwrap()).collect();
    assert!(
        images.iter().all(|i| i.is_file()),
        "every request names an image: {images:?}"
    );
    cycle(&t, p);
}

per_width!(forked_overlapping_requests, forked_overlapping_requests_32 => overlapping_requests());

/// A subreaper would get the orphaned writer back as its child (and reap it with its
/// `waitpid(-1, __WALL)`): its checkpoints are written in place.
fn subreaper(bits: Bits) {
    let t = Test::new(&bits.name("forked_subreaper"));
    let prog = t.compile("forked", Variant::Dynamic, bits, &[]);
    let lock = t.path("lockfile");
    let mut p = t.launch(&prog, &[lock.to_str().unwrap(), "64", "subreaper"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let child = own_child(&p);
    let c = cycle(&t, p);
    drop(c);
    let _ = child;
}

per_width!(forked_subreaper, forked_subreaper_32 => subreaper());

/// `mtcp launch --blocking`: the image is written while the program is stopped, and no
/// writer process is made.
fn blocking(bits: Bits) {
    let t = Test::new(&bits.name("forked_blocking"));
    let prog = t.compile("forked", Variant::Dynamic, bits, &[]);
    let lock = t.path("lockfile");
    let mut p = t.launch_with(&["--blocking"], &prog, &[lock.to_str().unwrap(), "256"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    assert!(send_signal(p.pid(), SIGUSR2));
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.images().is_empty() {
        assert!(writers_of(&prog).is_empty(), "a writer process in blocking mode");
        assert!(Instant::now() < deadline, "no image within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    cycle(&t, p);
}

per_width!(forked_blocking, forked_blocking_32 => blocking());

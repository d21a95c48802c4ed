//! Checkpoint and restart figures: time and image size for processes of a few sizes,
//! each compared (as a ratio, measured in the same run) with writing and reading the
//! same number of bytes as a plain file. Run with `cargo bench`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mtcp")).parent().unwrap().to_path_buf()
}

struct Scenario {
    name: &'static str,
    mib: usize,
    stride: usize,
    threads: usize,
}

/// Waits for a line starting with "beat" on the child's stdout, with a deadline.
fn wait_beat(child: &mut Child, limit: Duration) -> Duration {
    let start = Instant::now();
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(l) if l.starts_with("beat") => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    rx.recv_timeout(limit).expect("the program did not come up in time");
    start.elapsed()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = std::env::temp_dir().join(format!("mtcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("memhog");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/memhog.c");
    let ok = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&prog)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(ok.success(), "gcc failed");
    let mtcp = bin_dir().join("mtcp");

    let scenarios = [
        Scenario {
            name: "64 MiB dense",
            mib: 64,
            stride: 1,
            threads: 0,
        },
        Scenario {
            name: "256 MiB dense",
            mib: 256,
            stride: 1,
            threads: 0,
        },
        Scenario {
            name: "1 GiB dense",
            mib: 1024,
            stride: 1,
            threads: 0,
        },
        Scenario {
            name: "1 GiB, 1/16 touched",
            mib: 1024,
            stride: 16,
            threads: 0,
        },
        Scenario {
            name: "64 MiB, 64 threads",
            mib: 64,
            stride: 1,
            threads: 64,
        },
    ];
    println!();
    println!(
        "{:<22} {:>9} {:>10} {:>11} {:>7} {:>11} {:>11} {:>7}",
        "scenario", "image MiB", "ckpt ms", "write+fsync", "ratio", "restart ms", "read image", "ratio"
    );
    for s in &scenarios {
        let mut child = Command::new(&mtcp)
            .args(["launch", "--dir"])
            .arg(&dir)
            .arg("--")
            .arg(&prog)
            .args([s.mib.to_string(), s.stride.to_string(), s.threads.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mtcp launch");
        wait_beat(&mut child, Duration::from_secs(60));
        let t = Instant::now();
        let out = Command::new(&mtcp)
            .arg("checkpoint")
            .arg(child.id().to_string())
            .output()
            .expect("mtcp checkpoint");
        let ckpt = t.elapsed();
        assert!(
            out.status.success(),
            "checkpoint failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim());
        kill(&mut child);
        let size = std::fs::metadata(&image).unwrap().len();

        // The same bytes written as a plain file, with the same durability.
        let plain = dir.join("plain");
        // Incompressible bytes, like the program's.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let chunk: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let t = Instant::now();
        {
            let mut f = std::fs::File::create(&plain).unwrap();
            let mut left = size as usize;
            while left > 0 {
                let n = left.min(chunk.len());
                f.write_all(&chunk[..n]).unwrap();
                left -= n;
            }
            f.sync_all().unwrap();
        }
        let write = t.elapsed();
        std::fs::remove_file(&plain).unwrap();

        let t = Instant::now();
        let mut restarted = Command::new(&mtcp)
            .arg("restart")
            .arg(&image)
            .stdout(Stdio::piped())
            .spawn()
            .expect("mtcp restart");
        wait_beat(&mut restarted, Duration::from_secs(60));
        let restart = t.elapsed();
        kill(&mut restarted);

        let t = Instant::now();
        let bytes = std::fs::read(&image).unwrap();
        let read = t.elapsed();
        assert_eq!(bytes.len() as u64, size);
        std::fs::remove_file(&image).unwrap();

        println!(
            "{:<22} {:>9.1} {:>10.1} {:>11.1} {:>7.2} {:>11.1} {:>11.1} {:>7.2}",
            s.name,
            size as f64 / (1 << 20) as f64,
            ms(ckpt),
            ms(write),
            ms(ckpt) / ms(write),
            ms(restart),
            ms(read),
            ms(restart) / ms(read)
        );
    }
    println!("\nckpt: `mtcp checkpoint` wall time; write+fsync: the same bytes as a plain file.");
    println!("restart: `mtcp restart` until the program's first line; read image: reading the image file.");
    stopping_threads(&mtcp, &prog, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What reaching every thread through the ptrace helper (so that no call fails with
/// EINTR) costs against plain signals (MTCP_PTRACE=0), for a 1 MiB process with many
/// idle threads: the mean of 10 checkpoints each, and their ratio.
fn stopping_threads(mtcp: &Path, prog: &Path, dir: &Path) {
    println!();
    println!(
        "{:<22} {:>12} {:>12} {:>7}",
        "threads", "ptrace ms", "signals ms", "ratio"
    );
    for threads in [8usize, 128, 512] {
        let mut mean = [0.0f64; 2];
        for (k, ptrace) in ["1", "0"].iter().enumerate() {
            let mut child = Command::new(mtcp)
                .args(["launch", "--dir"])
                .arg(dir)
                .arg("--")
                .arg(prog)
                .args(["1".to_string(), "1".to_string(), threads.to_string()])
                .env("MTCP_PTRACE", ptrace)
                .stdout(Stdio::piped())
                .spawn()
                .expect("mtcp launch");
            wait_beat(&mut child, Duration::from_secs(60));
            let rounds = 10;
            let t = Instant::now();
            for _ in 0..rounds {
                let out = Command::new(mtcp)
                    .arg("checkpoint")
                    .arg(child.id().to_string())
                    .output()
                    .expect("mtcp checkpoint");
                assert!(
                    out.status.success(),
                    "checkpoint failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            mean[k] = ms(t.elapsed()) / rounds as f64;
            kill(&mut child);
        }
        println!(
            "{:<22} {:>12.1} {:>12.1} {:>7.2}",
            threads,
            mean[0],
            mean[1],
            mean[0] / mean[1]
        );
    }
    println!("\nptrace/signals: mean `mtcp checkpoint` wall time, threads reached by the helper or by tgkill.");
}

//! Checkpoint and restart figures for the scenarios of the performance targets, each
//! run several times, interleaved (round 1 of every scenario, then round 2, ...), with
//! the machine's limits for the same bytes measured in the same rounds, next to each
//! scenario, and every figure also given as a ratio to its limit. Nothing here is a
//! pass/fail check: the tables are the result.
//!
//! `cargo bench --bench checkpoint`; `MTCP_BENCH_ROUNDS=N` (default 5) sets the rounds,
//! `MTCP_BENCH_ONLY=WORD` keeps the scenarios whose name contains WORD.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use mtcp_core::sys;

const SIGKILL: u32 = 9;
const SIGUSR1: u32 = 10;
const SIGURG: u32 = 23;
const MIB: f64 = (1u64 << 20) as f64;
/// Pages rewritten between the checkpoints of the incremental series (1% each time).
const INCREMENTS: usize = 4;

/// A way of running the program and taking its checkpoints.
struct Variant {
    label: &'static str,
    /// Added to `mtcp launch`'s environment.
    env: &'static [(&'static str, &'static str)],
    /// Given to `mtcp restart`.
    restart: &'static [&'static str],
}

const DEFAULT: Variant = Variant {
    label: "",
    env: &[],
    restart: &[],
};
/// The image written while the program is stopped, not by a forked writer.
const BLOCKING: Variant = Variant {
    label: "blocking",
    env: &[("MTCP_BLOCKING", "1")],
    restart: &[],
};
/// Restart reading every page instead of mapping the image.
const EAGER: Variant = Variant {
    label: "restart --eager",
    env: &[],
    restart: &["--eager"],
};

struct Scenario {
    name: &'static str,
    /// The subject's arguments; `None` runs the Python subject.
    args: Option<&'static [&'static str]>,
    /// The bytes the program wrote (0: only what its runtime and libraries need).
    data: u64,
    /// Checkpoints after the first, each after 1% of the pages were rewritten.
    incremental: bool,
    variants: &'static [Variant],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tiny counter",
        args: Some(&["counter"]),
        data: 0,
        incremental: false,
        variants: &[DEFAULT, BLOCKING],
    },
    Scenario {
        name: "8 busy threads",
        args: Some(&["threads", "8", "busy"]),
        data: 0,
        incremental: false,
        variants: &[DEFAULT],
    },
    Scenario {
        name: "64 idle threads",
        args: Some(&["threads", "64", "idle"]),
        data: 0,
        incremental: false,
        // Threads reached by the ptrace helper (no EINTR) or by plain signals.
        variants: &[
            DEFAULT,
            Variant {
                label: "MTCP_PTRACE=0",
                env: &[("MTCP_PTRACE", "0")],
                restart: &[],
            },
        ],
    },
    Scenario {
        name: "python3",
        args: None,
        data: 0,
        incremental: false,
        variants: &[DEFAULT],
    },
    Scenario {
        name: "1 GiB dense",
        args: Some(&["dense", "1024"]),
        data: 1 << 30,
        incremental: false,
        variants: &[DEFAULT, BLOCKING, EAGER],
    },
    Scenario {
        name: "4 GiB, 64 MiB scattered",
        args: Some(&["scattered", "4096", "16384"]),
        data: 64 << 20,
        incremental: false,
        variants: &[DEFAULT, EAGER],
    },
    Scenario {
        name: "1 TiB noreserve, 1 MiB",
        args: Some(&["scattered", "1048576", "256", "noreserve"]),
        data: 1 << 20,
        incremental: false,
        variants: &[DEFAULT],
    },
    Scenario {
        name: "1 GiB, 1% rewritten",
        args: Some(&["dense", "1024"]),
        data: 1 << 30,
        incremental: true,
        variants: &[DEFAULT],
    },
];

/// What one checkpoint measured.
#[derive(Clone, Copy, Default)]
struct Checkpoint {
    wall: f64,
    pause: f64,
    image: u64,
}

/// One round of one scenario and variant.
#[derive(Default)]
struct Sample {
    full: Checkpoint,
    /// The incremental series: the checkpoints after the first.
    later: Vec<Checkpoint>,
    restart: f64,
    limits: Limits,
}

/// The machine's times for the bytes of one image, in ms.
#[derive(Clone, Copy, Default)]
struct Limits {
    memcpy: f64,
    write: f64,
    write_fsync: f64,
    dd: f64,
    read_cached: f64,
    read_fresh: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::INFINITY, f64::min)
}

/// A process whose stdout lines arrive on a channel; its process group dies with it.
struct Subject {
    child: Child,
    lines: Receiver<String>,
}

impl Subject {
    fn spawn(mut cmd: Command) -> Subject {
        let mut child = cmd
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {}", cmd, e));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Subject { child, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line that starts with `prefix`, and when it came.
    fn expect(&self, prefix: &str, limit: Duration) -> (String, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return (l, Instant::now()),
                Ok(_) => {}
                Err(_) => panic!("no `{}` line from process {} within {:?}", prefix, self.pid(), limit),
            }
        }
    }

    /// The longest pause the program saw since the last call, in ms.
    fn pause(&self) -> f64 {
        while self.lines.try_recv().is_ok() {}
        sys::kill(self.pid(), SIGUSR1).unwrap();
        let (line, _) = self.expect("gap ", Duration::from_secs(20));
        line[4..].trim().parse::<f64>().unwrap() / 1000.0
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        let _ = sys::kill((-(self.pid() as i32)) as u32, SIGKILL);
        let _ = self.child.wait();
    }
}

struct Bench {
    mtcp: PathBuf,
    subject: PathBuf,
    python: PathBuf,
    dir: PathBuf,
    /// Two buffers as large as the largest image, written once so that they are backed.
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Bench {
    fn launch(&self, s: &Scenario, v: &Variant) -> Subject {
        let mut cmd = Command::new(&self.mtcp);
        cmd.args(["launch", "--dir"]).arg(&self.dir).arg("--");
        match s.args {
            Some(args) => cmd.arg(&self.subject).args(args),
            None => cmd.arg("python3").arg(&self.python),
        };
        for (k, val) in v.env {
            cmd.env(k, val);
        }
        let p = Subject::spawn(cmd);
        p.expect("beat", Duration::from_secs(120));
        p
    }

    fn checkpoint(&self, p: &Subject) -> (Checkpoint, PathBuf) {
        p.pause();
        let t = Instant::now();
        let out = Command::new(&self.mtcp)
            .args(["checkpoint", "--timeout", "300"])
            .arg(p.pid().to_string())
            .output()
            .expect("mtcp checkpoint");
        let wall = ms(t.elapsed());
        assert!(
            out.status.success(),
            "checkpoint failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let image = PathBuf::from(text.lines().last().unwrap().trim());
        let pause = p.pause();
        let bytes = std::fs::metadata(&image).unwrap().len();
        (
            Checkpoint {
                wall,
                pause,
                image: bytes,
            },
            image,
        )
    }

    fn restart(&self, image: &Path, v: &Variant) -> f64 {
        let mut cmd = Command::new(&self.mtcp);
        cmd.arg("restart").args(v.restart).arg(image);
        let t = Instant::now();
        let p = Subject::spawn(cmd);
        let (_, at) = p.expect("", Duration::from_secs(120));
        ms(at - t)
    }

    fn run(&mut self, s: &Scenario, v: &Variant) -> Sample {
        let p = self.launch(s, v);
        let (full, image) = self.checkpoint(&p);
        let mut later = Vec::new();
        if s.incremental {
            for _ in 0..INCREMENTS {
                sys::kill(p.pid(), SIGURG).unwrap();
                p.expect("rewrote", Duration::from_secs(60));
                later.push(self.checkpoint(&p).0);
            }
        }
        drop(p);
        let restart = self.restart(&image, v);
        let limits = self.limits(&image, full.image as usize);
        std::fs::remove_file(&image).unwrap();
        Sample {
            full,
            later,
            restart,
            limits,
        }
    }

    /// The machine's times for `n` bytes: memcpy, writing a file (with and without
    /// fsync, and with dd), reading `image` (cached, as it was just written; at most `n`
    /// bytes of it) into memory in use and into fresh memory.
    fn limits(&mut self, image: &Path, n: usize) -> Limits {
        let t = Instant::now();
        self.dst[..n].copy_from_slice(&self.src[..n]);
        std::hint::black_box(&self.dst);
        let memcpy = ms(t.elapsed());

        let plain = self.dir.join("plain");
        let write = |fsync: bool| {
            let t = Instant::now();
            let mut f = File::create(&plain).unwrap();
            f.write_all(&self.src[..n]).unwrap();
            if fsync {
                f.sync_all().unwrap();
            }
            drop(f);
            let d = ms(t.elapsed());
            std::fs::remove_file(&plain).unwrap();
            d
        };
        let write_plain = write(false);
        let write_fsync = write(true);

        let t = Instant::now();
        let ok = Command::new("dd")
            .args([
                "if=/dev/zero",
                "bs=1M",
                "iflag=count_bytes",
                "conv=fsync",
                "status=none",
            ])
            .arg(format!("count={}", n))
            .arg(format!("of={}", plain.display()))
            .status()
            .expect("dd");
        let dd = ms(t.elapsed());
        assert!(ok.success());
        std::fs::remove_file(&plain).unwrap();

        // The image read back: the last one of a series may be smaller than the first.
        let n = n.min(std::fs::metadata(image).unwrap().len() as usize);
        let t = Instant::now();
        File::open(image).unwrap().read_exact(&mut self.dst[..n]).unwrap();
        let read_cached = ms(t.elapsed());
        let t = Instant::now();
        // calloc'ed memory of this size comes fresh from mmap: the read faults it in.
        let mut fresh = vec![0u8; n];
        File::open(image).unwrap().read_exact(&mut fresh).unwrap();
        let read_fresh = ms(t.elapsed());
        drop(fresh);
        Limits {
            memcpy,
            write: write_plain,
            write_fsync,
            dd,
            read_cached,
            read_fresh,
        }
    }
}

fn build_subject(dir: &Path) -> PathBuf {
    let prog = dir.join("subject");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/subject.c");
    let ok = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&prog)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(ok.success(), "gcc failed");
    prog
}

/// Descriptors this process inherited (cargo's jobserver pipe, say) must not reach the
/// programs it checkpoints.
fn close_inherited_on_exec() {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            if fd > 2 {
                let _ = sys::fcntl(fd, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
            }
        }
    }
}

fn main() {
    close_inherited_on_exec();
    let dir = std::env::temp_dir().join(format!("mtcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rounds: usize = std::env::var("MTCP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("MTCP_BENCH_ONLY").unwrap_or_default();
    let largest = 1usize << 30 | 64 << 20;
    let mut bench = Bench {
        mtcp: Path::new(env!("CARGO_BIN_EXE_mtcp")).to_path_buf(),
        subject: build_subject(&dir),
        python: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/subject.py"),
        dir: dir.clone(),
        src: (0..largest)
            .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u8 ^ (i >> 12) as u8)
            .collect(),
        dst: vec![1u8; largest],
    };
    let runs: Vec<(&Scenario, &Variant)> = SCENARIOS
        .iter()
        .filter(|s| s.name.contains(&only))
        .flat_map(|s| s.variants.iter().map(move |v| (s, v)))
        .collect();
    let mut samples: Vec<Vec<Sample>> = runs.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (s, v)) in runs.iter().enumerate() {
            eprint!(
                "\rround {}/{}: {:<40}",
                round + 1,
                rounds,
                format!("{} {}", s.name, v.label)
            );
            samples[i].push(bench.run(s, v));
        }
    }
    eprintln!();
    let _ = std::fs::remove_dir_all(&dir);
    report(&runs, &samples, rounds);
}

fn name(s: &Scenario, v: &Variant) -> String {
    if v.label.is_empty() {
        s.name.to_string()
    } else {
        format!("{} [{}]", s.name, v.label)
    }
}

fn report(runs: &[(&Scenario, &Variant)], samples: &[Vec<Sample>], rounds: usize) {
    let col = |f: &dyn Fn(&Sample) -> f64, i: usize| -> Vec<f64> { samples[i].iter().map(f).collect() };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!();
    println!(
        "mtcp checkpoint benchmark: {} rounds, interleaved; kernel {}, {} CPUs. Times in ms, min/median.",
        rounds,
        kernel.trim(),
        cpus
    );
    println!();
    println!(
        "{:<34} {:>9} {:>6} {:>17} {:>8} {:>6} {:>15} {:>8} {:>7}",
        "checkpoint", "image MiB", "×data", "wall", "dd", "×dd", "pause", "memcpy", "×memcpy"
    );
    for (i, (s, v)) in runs.iter().enumerate() {
        let mut wall = col(&|x| x.full.wall, i);
        let mut pause = col(&|x| x.full.pause, i);
        let mut image = col(&|x| x.full.image as f64 / MIB, i);
        let mut dd = col(&|x| x.limits.dd, i);
        let mut memcpy = col(&|x| x.limits.memcpy, i);
        let (wmin, wmed, pmin, pmed) = (min(&wall), median(&mut wall), min(&pause), median(&mut pause));
        let (ddm, mcm, im) = (median(&mut dd), median(&mut memcpy), median(&mut image));
        let of_data = if s.data > 0 {
            format!("{:.2}", im * MIB / s.data as f64)
        } else {
            "-".to_string()
        };
        println!(
            "{:<34} {:>9.2} {:>6} {:>8.1}/{:>8.1} {:>8.1} {:>6.2} {:>7.2}/{:>7.2} {:>8.2} {:>7.2}",
            name(s, v),
            im,
            of_data,
            wmin,
            wmed,
            ddm,
            wmed / ddm,
            pmin,
            pmed,
            mcm,
            pmed / mcm
        );
    }
    println!(
        "×data: the image against the bytes the program wrote; wall: `mtcp checkpoint` until it \
         printed the path of the complete, durable image;\ndd: dd writing and fsyncing as many bytes;\npause: the longest the program's own watcher thread \
         waited between two 200 us naps during the checkpoint; memcpy: copying as many bytes in memory."
    );
    println!();
    println!(
        "{:<34} {:>17} {:>11} {:>8} {:>10} {:>8}",
        "restart", "to first output", "read cached", "×cached", "read fresh", "×fresh"
    );
    for (i, (s, v)) in runs.iter().enumerate() {
        let mut restart = col(&|x| x.restart, i);
        let mut cached = col(&|x| x.limits.read_cached, i);
        let mut fresh = col(&|x| x.limits.read_fresh, i);
        let (rmin, rmed) = (min(&restart), median(&mut restart));
        let (cm, fm) = (median(&mut cached), median(&mut fresh));
        println!(
            "{:<34} {:>8.1}/{:>8.1} {:>11.1} {:>8.2} {:>10.1} {:>8.2}",
            name(s, v),
            rmin,
            rmed,
            cm,
            rmed / cm,
            fm,
            rmed / fm
        );
    }
    println!(
        "to first output: `mtcp restart` until the program's first line; read cached / fresh: reading \
         the image file (in the page cache) into memory in use / into fresh memory."
    );
    println!();
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>12} {:>8} {:>11} {:>10}",
        "machine limits (medians)", "MiB", "memcpy", "write", "write+fsync", "dd", "read cached", "read fresh"
    );
    for (i, (s, v)) in runs.iter().enumerate() {
        let m = |f: &dyn Fn(&Limits) -> f64| median(&mut col(&|x| f(&x.limits), i));
        println!(
            "{:<34} {:>9.2} {:>8.2} {:>8.1} {:>12.1} {:>8.1} {:>11.1} {:>10.1}",
            name(s, v),
            median(&mut col(&|x| x.full.image as f64 / MIB, i)),
            m(&|l| l.memcpy),
            m(&|l| l.write),
            m(&|l| l.write_fsync),
            m(&|l| l.dd),
            m(&|l| l.read_cached),
            m(&|l| l.read_fresh)
        );
    }
    println!("the same bytes as each scenario's image, measured next to it in every round.");
    let series: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].0.incremental).collect();
    if series.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<34} {:>17} {:>9} {:>17} {:>9} {:>7} {:>7}",
        "incremental series", "full wall", "full MiB", "later wall", "later MiB", "×time", "×size"
    );
    for i in series {
        let (s, v) = runs[i];
        let mut fw = col(&|x| x.full.wall, i);
        let mut fs = col(&|x| x.full.image as f64 / MIB, i);
        let mut lw: Vec<f64> = samples[i].iter().flat_map(|x| x.later.iter().map(|c| c.wall)).collect();
        let mut ls: Vec<f64> = samples[i]
            .iter()
            .flat_map(|x| x.later.iter().map(|c| c.image as f64 / MIB))
            .collect();
        let (fwmin, fwmed, fsm) = (min(&fw), median(&mut fw), median(&mut fs));
        let (lwmin, lwmed, lsm) = (min(&lw), median(&mut lw), median(&mut ls));
        println!(
            "{:<34} {:>8.1}/{:>8.1} {:>9.2} {:>8.1}/{:>8.1} {:>9.2} {:>7.3} {:>7.3}",
            name(s, v),
            fwmin,
            fwmed,
            fsm,
            lwmin,
            lwmed,
            lsm,
            lwmed / fwmed,
            lsm / fsm
        );
        let mut lp: Vec<f64> = samples[i]
            .iter()
            .flat_map(|x| x.later.iter().map(|c| c.pause))
            .collect();
        println!(
            "{:<34} later checkpoints' pause {:.2}/{:.2} ms",
            "",
            min(&lp),
            median(&mut lp)
        );
    }
    println!(
        "later: the {} checkpoints after the first, each after 1% of the pages were rewritten; \
         ×: their median against the full checkpoint's.",
        INCREMENTS
    );
}

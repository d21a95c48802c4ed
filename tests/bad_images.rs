//! Bad input to `mtcp restart` and to `mtcp_restart` directly: each must fail with a
//! non-zero exit code (never a signal) and exactly one line on stderr naming the problem.
//! Also `mtcp inspect` of a good image and of the damaged ones. Each test runs for an
//! x86_64 image and, as `*_32`, for an i386 one (its own mtcp_restart being the i686
//! build); images of the wrong architecture: i386.rs.

pub mod common;

use mtcp_core::{image, xxh64};

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A real image of the counter of width `bits`, taken while it runs (the counter is then
/// killed).
fn good_image(t: &Test, bits: Bits) -> PathBuf {
    let prog = t.compile("counter", Variant::Dynamic, bits, &[]);
    image_of(t, &prog)
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The file offset of the first saved run of the first region that has one.
fn first_run_offset(bytes: &[u8]) -> u64 {
    let header = image::parse_header(&bytes[..image::HEADER_SIZE], bytes.len() as u64).expect("good image header");
    let meta_bytes = &bytes[header.meta_offset as usize..(header.meta_offset + header.meta_size) as usize];
    let meta = image::Meta::parse(&header, meta_bytes).expect("good image metadata");
    for i in 0..meta.region_count {
        let r = meta.region(i);
        if r.run_count > 0 {
            return meta.run(r.run_first as usize).file_offset;
        }
    }
    panic!("the image has no saved pages at all");
}

/// The image with one run's page_index one higher (where its region has room), and the
/// metadata and header checksums recomputed.
fn move_a_run(bytes: &[u8]) -> Vec<u8> {
    let header = image::parse_header(&bytes[..image::HEADER_SIZE], bytes.len() as u64).unwrap();
    let meta_at = header.meta_offset as usize;
    let meta_bytes = &bytes[meta_at..meta_at + header.meta_size as usize];
    let meta = image::Meta::parse(&header, meta_bytes).unwrap();
    let page = header.page_size as u64;
    let run_at = |k: usize| meta_at + meta.index.run_offset as usize + k * std::mem::size_of::<image::Run>();
    for i in 0..meta.region_count {
        let r = meta.region(i);
        for j in 0..r.run_count as usize {
            let k = r.run_first as usize + j;
            let run = meta.run(k);
            let limit = if j + 1 < r.run_count as usize {
                meta.run(k + 1).page_index
            } else {
                r.len() / page
            };
            if run.page_index + run.pages < limit {
                let mut out = bytes.to_vec();
                let at = run_at(k);
                out[at..at + 8].copy_from_slice(&(run.page_index + 1).to_le_bytes());
                let sum = xxh64::xxh64(&out[meta_at..meta_at + header.meta_size as usize], 0);
                out[40..48].copy_from_slice(&sum.to_le_bytes());
                let sum = xxh64::xxh64(&out[..248], 0);
                out[248..256].copy_from_slice(&sum.to_le_bytes());
                return out;
            }
        }
    }
    panic!("no run of the image has room to move");
}

struct Case {
    name: &'static str,
    path: PathBuf,
    /// The one stderr line must contain one of these (case-insensitive).
    keywords: &'static [&'static str],
    /// Extra environment for `mtcp restart`.
    env: Vec<(&'static str, PathBuf)>,
}

fn make_cases(t: &Test, good: &Path, bits: Bits) -> Vec<Case> {
    let bytes = fs::read(good).unwrap();
    assert!(bytes.len() > 8192);
    assert_eq!(&bytes[..8], b"MTCPIMG\0", "image magic");
    let bad = t.subdir("bad");
    let write = |name: &str, data: &[u8]| -> PathBuf {
        let p = bad.join(name);
        fs::write(&p, data).unwrap();
        p
    };
    let mut cases = Vec::new();

    cases.push(Case {
        name: "missing file",
        path: bad.join("does-not-exist.mtcp"),
        keywords: &["no such file", "enoent", "not found", "does not exist"],
        env: vec![],
    });
    cases.push(Case {
        name: "empty file",
        path: write("empty.mtcp", b""),
        keywords: &["too short", "not an mtcp image", "empty"],
        env: vec![],
    });
    cases.push(Case {
        name: "/etc/passwd",
        path: write("passwd.mtcp", &fs::read("/etc/passwd").unwrap()),
        keywords: &["not an mtcp image", "too short to be an mtcp image"],
        env: vec![],
    });
    let mut elf = fs::read("/bin/true").unwrap();
    elf.resize(elf.len().max(16384), 0);
    cases.push(Case {
        name: "an ELF file",
        path: write("true.mtcp", &elf),
        keywords: &["not an mtcp image"],
        env: vec![],
    });
    cases.push(Case {
        name: "a directory",
        path: t.subdir("dir.mtcp"),
        keywords: &["not a regular file", "directory"],
        env: vec![],
    });
    cases.push(Case {
        name: "truncated to half",
        path: write("truncated.mtcp", &bytes[..bytes.len() / 2]),
        keywords: &["truncated"],
        env: vec![],
    });
    cases.push(Case {
        name: "truncated to its header",
        path: write("header-only.mtcp", &bytes[..4096]),
        keywords: &["truncated"],
        env: vec![],
    });

    let mut header_flip = bytes.clone();
    header_flip[100] ^= 0x40; // inside reserved header bytes, covered by the header checksum
    cases.push(Case {
        name: "flipped header byte",
        path: write("header-flip.mtcp", &header_flip),
        keywords: &["corrupt"],
        env: vec![],
    });

    let meta_offset = read_u64(&bytes, 24) as usize;
    assert_eq!(meta_offset, 4096, "metadata starts after the one-page header");
    let mut meta_flip = bytes.clone();
    meta_flip[4096 + 100] ^= 0x01;
    cases.push(Case {
        name: "flipped metadata byte",
        path: write("meta-flip.mtcp", &meta_flip),
        keywords: &["corrupt"],
        env: vec![],
    });

    let data_offset = read_u64(&bytes, 48);
    let run = first_run_offset(&bytes);
    assert!(run >= data_offset);
    let mut data_flip = bytes.clone();
    data_flip[run as usize + 1234] ^= 0x10;
    cases.push(Case {
        name: "flipped region data byte",
        path: write("data-flip.mtcp", &data_flip),
        keywords: &["corrupt"],
        env: vec![],
    });

    // An x86_64 image that claims to be an i386 one, with no i386 build to restart it.
    // (The reverse would send i386 metadata to the x86_64 mtcp_restart; real images of the
    // other architecture given to each mtcp_restart: i386.rs.)
    if bits == Bits::B64 {
        let mut i386 = bytes.clone();
        i386[12..16].copy_from_slice(&3u32.to_le_bytes());
        let sum = xxh64::xxh64(&i386[..248], 0);
        i386[248..256].copy_from_slice(&sum.to_le_bytes());
        image::parse_header(&i386[..image::HEADER_SIZE], i386.len() as u64).expect("re-sealed i386 header parses");
        cases.push(Case {
            name: "header says i386",
            path: write("i386.mtcp", &i386),
            keywords: &["i386", "i686"],
            // Keep the outcome independent of whether an i386 build happens to exist.
            env: vec![("MTCP_LIB32_DIR", t.path("no-lib32"))],
        });
    }

    // A run moved one page further inside its region, the metadata and header checksums
    // made right again: the data would land at the wrong addresses.
    let moved = move_a_run(&bytes);
    cases.push(Case {
        name: "run moved inside its region",
        path: write("moved-run.mtcp", &moved),
        keywords: &["corrupt"],
        env: vec![],
    });

    let mut reserved = bytes.clone();
    reserved[240] = 1; // the last reserved u64 of the header, which must be zero
    let sum = xxh64::xxh64(&reserved[..248], 0);
    reserved[248..256].copy_from_slice(&sum.to_le_bytes());
    cases.push(Case {
        name: "reserved header field set",
        path: write("reserved.mtcp", &reserved),
        keywords: &["reserved"],
        env: vec![],
    });

    // A FIFO nobody writes to: opening it for reading would block for ever.
    let fifo = bad.join("fifo.mtcp");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    cases.push(Case {
        name: "a FIFO",
        path: fifo,
        keywords: &["not a regular file"],
        env: vec![],
    });

    let mut version = bytes.clone();
    version[8..12].copy_from_slice(&7u32.to_le_bytes());
    let sum = xxh64::xxh64(&version[..248], 0);
    version[248..256].copy_from_slice(&sum.to_le_bytes());
    cases.push(Case {
        name: "unknown format version",
        path: write("version.mtcp", &version),
        keywords: &["version"],
        env: vec![],
    });
    cases
}

/// Checks one failed run; returns a problem description, or None if it failed properly.
fn judge(what: &str, case: &Case, out: &Output) -> Option<String> {
    let what = format!("{what} {} ({})", case.path.display(), case.name);
    one_line_failure(&what, out, false, case.keywords)
}

fn refused(bits: Bits) {
    let t = Test::new(&bits.name("bad_images"));
    let good = good_image(&t, bits);
    let cases = make_cases(&t, &good, bits);
    let mut problems = Vec::new();
    for case in &cases {
        // The CLI.
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("restart").arg(&case.path).current_dir(&t.dir);
        for (k, v) in &case.env {
            cmd.env(k, v);
        }
        let out = run_output(cmd, Duration::from_secs(30));
        problems.extend(judge("mtcp restart", case, &out));
        // mtcp_restart itself, the one of the image's width.
        let out = run_restart_program(bits.mtcp_restart(), &case.path, &t.dir);
        problems.extend(judge(&format!("{} mtcp_restart", bits.arch()), case, &out));
    }
    assert!(
        problems.is_empty(),
        "{} bad-image runs misbehaved:\n\n{}",
        problems.len(),
        problems.join("\n")
    );
}

per_width!(bad_images_are_refused, bad_images_are_refused_32 => refused());

fn inspect_damage(bits: Bits) {
    let t = Test::new(&bits.name("inspect_bad"));
    let good = good_image(&t, bits);
    let cases = make_cases(&t, &good, bits);
    let mut problems = Vec::new();
    // inspect reads images of either architecture: an i386 header alone is no damage.
    for case in cases.iter().filter(|c| c.name != "header says i386") {
        let out = mtcp(&["inspect", case.path.to_str().unwrap()], Duration::from_secs(30));
        if out.status.success() || out.status.code().is_none() {
            problems.push(format!(
                "mtcp inspect {} ({}): expected a non-zero exit\n{}",
                case.path.display(),
                case.name,
                describe_output(&out)
            ));
        }
        if case.name == "flipped region data byte" && out.status.code() != Some(1) {
            problems.push(format!(
                "mtcp inspect of an image with bad region data must exit 1\n{}",
                describe_output(&out)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

per_width!(inspect_reports_damage, inspect_reports_damage_32 => inspect_damage());

fn inspect_good(bits: Bits) {
    let t = Test::new(&bits.name("inspect_good"));
    let good = good_image(&t, bits);
    let text = inspect_text(&good);
    let arch_line = text
        .lines()
        .find(|l| l.starts_with("arch"))
        .unwrap_or_else(|| panic!("no `arch` line:\n{text}"));
    assert!(
        arch_line.contains(bits.arch()),
        "`mtcp inspect` does not say {}: {arch_line:?}\n{text}",
        bits.arch()
    );
    let other = bits.other().arch();
    assert!(
        !text.contains(other),
        "`mtcp inspect` of an {} image mentions {other}:\n{text}",
        bits.arch()
    );
    let words = ["regions", "checksums", "[heap]", "[stack]", "counter"];
    for word in words.into_iter().chain([bits.arch(), bits.ld_so()]) {
        assert!(text.contains(word), "`mtcp inspect` output lacks {word:?}:\n{text}");
    }
    let checksum_line = text.lines().find(|l| l.contains("checksums")).unwrap();
    assert!(
        checksum_line.contains("ok"),
        "checksums not reported ok: {checksum_line}\n{text}"
    );

    let doc = inspect_json(&good);
    let regions = doc
        .get("regions")
        .and_then(|r| r.as_array())
        .unwrap_or_else(|| panic!("no \"regions\" array in {doc:?}"));
    assert!(regions.len() >= 5, "only {} regions", regions.len());
    for r in regions {
        assert_eq!(
            r.get("checksum_ok").and_then(|v| v.as_bool()),
            Some(true),
            "region not ok: {r:?}"
        );
        if bits == Bits::B32 {
            let end = r.get("end").and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
            assert!(end <= 1 << 32, "a region of an i386 image ends above 4 GiB: {r:?}");
        }
    }
    assert_eq!(doc.get("checksums_ok").and_then(|v| v.as_bool()), Some(true));
    let paths: Vec<&str> = regions
        .iter()
        .filter_map(|r| r.get("path").and_then(|p| p.as_str()))
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/counter")),
        "the executable is not among the regions: {paths:?}"
    );
    let lib = bits.libmtcp_so().canonicalize().unwrap();
    assert!(
        paths.iter().any(|p| p.contains("libmtcp.so") && Path::new(p) == lib),
        "the preloaded {} runtime {} is not among the regions: {paths:?}",
        bits.arch(),
        lib.display()
    );
    assert_eq!(doc.get("arch").and_then(|a| a.as_str()), Some(bits.arch()), "{doc:?}");
    let threads = doc.get("threads").and_then(|t| t.as_array()).expect("threads array");
    assert_eq!(threads.len(), 1);
}

per_width!(inspect_good_image, inspect_good_image_32 => inspect_good());

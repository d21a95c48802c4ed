//! Image files: finding them, taking one with `mtcp checkpoint`, reading one with `mtcp inspect`, damaging one record.

use mtcp_core::{image, xxh64};

use super::bins::bins;
use super::run::{describe_output, mtcp, run_output};
use super::test_dir::Test;
use super::{CHECKPOINT_TIMEOUT, LINE_TIMEOUT};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The image header's architecture word (offset 12): `Bits::em`, 62 or 3.
pub fn image_arch(image: &Path) -> u32 {
    let b = fs::read(image).unwrap();
    u32::from_le_bytes(b[12..16].try_into().unwrap())
}

/// The `ckpt_*.mtcp` files in `dir`.
pub fn images_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    n.starts_with("ckpt_") && n.ends_with(".mtcp")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The image `ckpt_<anything>_<vpid>.mtcp` in `dir`, if there is one.
pub fn image_for(dir: &Path, vpid: i32) -> Option<PathBuf> {
    let suffix = format!("_{vpid}.mtcp");
    images_in(dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().ends_with(&suffix))
}

/// `mtcp checkpoint --timeout 20 PID`, which must succeed and print the image path last.
pub fn checkpoint(pid: i32) -> PathBuf {
    checkpoint_with(&bins().mtcp, pid)
}

/// `mtcp checkpoint --timeout 20 PID`, whatever its outcome.
pub fn try_checkpoint(pid: i32) -> Output {
    try_checkpoint_with(&bins().mtcp, pid)
}

fn try_checkpoint_with(mtcp: &Path, pid: i32) -> Output {
    let mut cmd = Command::new(mtcp);
    cmd.args(["checkpoint", "--timeout", "20", &pid.to_string()]);
    run_output(cmd, CHECKPOINT_TIMEOUT)
}

/// `checkpoint` with the `mtcp` at `mtcp` (an installed one, say).
pub fn checkpoint_with(mtcp: &Path, pid: i32) -> PathBuf {
    let out = try_checkpoint_with(mtcp, pid);
    assert!(
        out.status.success(),
        "mtcp checkpoint {pid} failed:\n{}",
        describe_output(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("mtcp checkpoint {pid} printed nothing:\n{}", describe_output(&out)));
    let path = PathBuf::from(last.trim());
    assert!(
        path.is_absolute() && path.is_file(),
        "mtcp checkpoint {pid}: last line {last:?} is not the path of an existing image:\n{}",
        describe_output(&out)
    );
    path
}

/// An image of `prog`: launched with its default arguments, checkpointed after 3 counts
/// with `mtcp checkpoint`, then killed.
pub fn image_of(t: &Test, prog: &Path) -> PathBuf {
    let mut p = t.launch(prog, &[]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    image
}

/// `mtcp inspect --json IMAGE`, which must succeed; returns the parsed document.
pub fn inspect_json(image: &Path) -> serde_json::Value {
    let out = mtcp(&["inspect", "--json", image.to_str().unwrap()], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "mtcp inspect --json {} failed:\n{}",
        image.display(),
        describe_output(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("mtcp inspect --json output is not JSON ({e}):\n{text}"))
}

/// `mtcp inspect IMAGE` (text), which must succeed; returns stdout.
pub fn inspect_text(image: &Path) -> String {
    let out = mtcp(&["inspect", image.to_str().unwrap()], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "mtcp inspect {} failed:\n{}",
        image.display(),
        describe_output(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image with the `data` length of the first record of `kind` one byte shorter, and
/// the checksums made right again: only the record's own size is wrong.
pub fn shorten_fd_record(bytes: &[u8], kind: u32) -> Vec<u8> {
    let header = image::parse_header(&bytes[..image::HEADER_SIZE], bytes.len() as u64).unwrap();
    let meta_at = header.meta_offset as usize;
    let meta_len = header.meta_size as usize;
    let meta = image::Meta::parse(&header, &bytes[meta_at..meta_at + meta_len]).unwrap();
    let i = (0..meta.fd_count())
        .find(|&i| meta.fd(i).kind == kind)
        .unwrap_or_else(|| panic!("no fd of kind {kind} in the image"));
    let rec = meta.fd(i);
    let at = meta_at
        + meta.index.fd_offset as usize
        + i * std::mem::size_of::<image::FdRecord>()
        + std::mem::offset_of!(image::FdRecord, data)
        + 4; // StrRef.len
    let mut out = bytes.to_vec();
    out[at..at + 4].copy_from_slice(&(rec.data.len - 1).to_le_bytes());
    let sum = xxh64::xxh64(&out[meta_at..meta_at + meta_len], 0);
    out[40..48].copy_from_slice(&sum.to_le_bytes());
    let sum = xxh64::xxh64(&out[..248], 0);
    out[248..256].copy_from_slice(&sum.to_le_bytes());
    out
}

//! `mtcp clean`: removes what checkpoints killed halfway left behind: temporary images
//! whose writer is gone, and status and progress files of processes that are gone.

use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mtcp_core::progress::progress_file_owner;
use mtcp_core::protocol::{status_file_owner, temp_image_writer, temp_status_writer, ProcName};

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::{fail, io_msg, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "clean",
    synopsis: "[--dry-run] DIR",
    summary: "remove temporary images and status files of processes that are gone",
    about: "\
Removes from image directory DIR the temporary images (.<image>.<pid>.<random>.tmp) of
checkpoints whose writer is gone, and from your status directory the status and
progress files of processes that are gone. Files of other users, and of processes still running, stay.
Each file is listed as it is removed.",
    options: &[Opt {
        name: "--dry-run",
        value: Value::None,
        help: "only list what would be removed",
    }],
    notes: "",
    operands: Operands::One("DIR"),
    run: main,
};

fn main(args: Args) -> Result<u8> {
    let dry_run = args.flag("--dry-run");
    let dir = PathBuf::from(&args.operands[0]);
    let me = std::fs::metadata("/proc/self")
        .or_else(|e| fail(format!("cannot read /proc/self: {}", io_msg(&e))))?
        .uid();
    let mut found = leftovers(&dir, me, temp_image_writer)?;
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    let status_dir = PathBuf::from(crate::checkpoint::status_dir(me, &environ).to_string());
    let status_pid = |name: &[u8]| {
        status_file_owner(name)
            .or_else(|| temp_status_writer(name))
            .or_else(|| progress_file_owner(name))
    };
    match std::fs::symlink_metadata(&status_dir) {
        // Only a status directory that is ours alone is ours to tidy.
        Ok(md) if md.is_dir() && md.uid() == me && md.mode() & 0o022 == 0 => {
            found.extend(leftovers(&status_dir, me, status_pid)?)
        }
        _ => {}
    }
    for (path, size) in &found {
        if dry_run {
            println!("would remove {} ({} bytes)", path.display(), size);
        } else {
            match std::fs::remove_file(path) {
                Ok(()) => println!("removed {} ({} bytes)", path.display(), size),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return fail(format!("cannot remove {}: {}", path.display(), io_msg(&e))),
            }
        }
    }
    Ok(0)
}

/// The regular files of `uid` in `dir` whose name `writer` maps to a process that is gone.
fn leftovers(dir: &Path, uid: u32, writer: impl Fn(&[u8]) -> Option<ProcName>) -> Result<Vec<(PathBuf, u64)>> {
    let entries = std::fs::read_dir(dir).or_else(|e| fail(format!("cannot read {}: {}", dir.display(), io_msg(&e))))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(owner) = writer(entry.file_name().as_bytes()) else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        match entry.path().symlink_metadata() {
            Ok(md) if md.is_file() && md.uid() == uid => found.push((entry.path(), md.len())),
            _ => {}
        }
    }
    found.sort();
    Ok(found)
}

/// Whether the process a file name names runs: looked up here for our own pid namespace;
/// for another, among the processes of that namespace we can see (the last pid on their
/// `NSpid:` line is the one they see themselves).
fn alive(owner: ProcName) -> bool {
    let pidns_of = |proc: &Path| std::fs::metadata(proc.join("ns/pid")).ok().map(|m| m.ino());
    let own = ProcName::new(0, pidns_of(Path::new("/proc/self"))).pidns;
    if owner.pidns == own {
        return Path::new(&format!("/proc/{}", owner.pid)).exists();
    }
    let Ok(all) = std::fs::read_dir("/proc") else {
        return true; // no way to tell: keep it
    };
    all.flatten()
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .filter(|e| pidns_of(&e.path()) == Some(owner.pidns))
        .any(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|p| p.parse::<u32>().ok())
                == Some(owner.pid)
        })
}

//! `mtcp clean`: removes what checkpoints killed halfway left behind: temporary images
//! whose writer is gone, and status and progress files of processes that are gone.

use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mtcp_core::protocol::temp_image_writer;

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
        let pid = name
            .strip_suffix(b".status")
            .or_else(|| name.strip_suffix(mtcp_core::progress::PROGRESS_SUFFIX.as_bytes()))?;
        std::str::from_utf8(pid).ok()?.parse::<u32>().ok()
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
fn leftovers(dir: &Path, uid: u32, writer: impl Fn(&[u8]) -> Option<u32>) -> Result<Vec<(PathBuf, u64)>> {
    let entries = std::fs::read_dir(dir).or_else(|e| fail(format!("cannot read {}: {}", dir.display(), io_msg(&e))))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = writer(entry.file_name().as_bytes()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
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

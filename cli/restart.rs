//! `mtcp restart`: picks the `mtcp_restart` of the image's architecture and execs it in place.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::artifacts::{self, Arch};
use crate::image;
use crate::progress::{self, Report};
use crate::{fail, io_msg, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "restart",
    synopsis: "[--verbose] [--new-ids] [--same-pid] [--eager] [--progress] [--quiet] [--json] IMAGE",
    summary: "bring a process back from an image, with its ids, on this terminal",
    about: "\
Brings the process saved in IMAGE back on this terminal, with the process and thread
ids it had: chosen directly where you may (root), otherwise inside a new user and pid
namespace made for it. This command's process then stays as the pid you know: signals
sent to it reach the program, it stops when the program stops, and it exits as the
program exits; `mtcp checkpoint` of this pid checkpoints the program. Where no
namespace can be made, it says why and restores with new ids, in place of itself.
On a terminal, a line on stderr shows how far a long restore has come (bytes of
memory read of the image's, and the rate), and is cleared before the program goes on.",
    options: &[
        Opt {
            name: "--verbose",
            value: Value::None,
            help: "report each restore step on stderr",
        },
        Opt {
            name: "--new-ids",
            value: Value::None,
            help: "new process and thread ids, in place of this process (no namespace)",
        },
        Opt {
            name: "--same-pid",
            value: Value::None,
            help: "the original ids (the default; kept for older scripts)",
        },
        Opt {
            name: "--eager",
            value: Value::None,
            help: "read all memory into place; by default large runs of memory are
mapped from the image file (which must then not be changed in place while the
program runs; replacing or deleting it is fine)",
        },
        progress::PROGRESS,
        progress::QUIET,
        progress::json("show progress, and then that the restore is done, as JSON objects on stderr"),
    ],
    notes: "\
With --json, stderr gets progress objects ({\"type\":\"progress\",\"operation\":\"restart\",
\"done\":N,\"total\":N,\"seconds\":S,\"bytes_per_second\":N}, the last one with done equal
to total) and, just before the program goes on, {\"type\":\"restart\",\"ok\":true,
\"image\":PATH,\"bytes\":N,\"seconds\":S,\"bytes_per_second\":N}. A failure is one line on
stderr and exit 1, as always. stdout is the program's.",
    operands: Operands::One("IMAGE"),
    run: main,
};

fn main(args: Args) -> Result<u8> {
    let report = Report::from_args("restart", &args)?;
    // Passed on to mtcp_restart, which has the same flags; progress as it should show it.
    let mut flags: Vec<String> = args
        .names()
        .into_iter()
        .filter(|n| ["--verbose", "--new-ids", "--same-pid", "--eager"].contains(n))
        .map(String::from)
        .collect();
    flags.extend(report.restart_flag());
    let image_path = PathBuf::from(&args.operands[0]);
    let mut cmd = command(&image_path, &flags)?;
    let err = cmd.exec();
    let program = PathBuf::from(cmd.get_program());
    fail(format!("cannot execute {}: {}", program.display(), io_msg(&err)))
}

/// The `mtcp_restart` command (of the image's architecture) that brings `image_path`
/// back with `flags`; `mtcp restart` execs it in place, `mtcp run` spawns it.
pub fn command(image_path: &Path, flags: &[String]) -> Result<Command> {
    // Only the header is checked here; mtcp_restart checks everything else.
    let (_, header) = mtcp_api::read_header(image_path).map_err(crate::inspect::failure)?;
    let program = restart_program(header.arch, image_path)?;
    // mtcp_restart must not take an image named "-x" for an option.
    let image_arg = if image_path.as_os_str().as_bytes().starts_with(b"-") {
        Path::new(".").join(image_path)
    } else {
        image_path.to_path_buf()
    };
    let mut cmd = Command::new(&program);
    cmd.args(flags).arg(&image_arg);
    Ok(cmd)
}

/// The mtcp_restart binary for an image of `arch`.
fn restart_program(arch: u32, image_path: &Path) -> Result<PathBuf> {
    let arch = match arch {
        image::ARCH_X86_64 => Arch::X86_64,
        image::ARCH_I386 => Arch::I386,
        other => {
            return fail(format!(
                "{}: image is for an unknown architecture (ELF machine {})",
                image_path.display(),
                other
            ))
        }
    };
    artifacts::find(arch, "mtcp_restart", |program| {
        format!(
            "{} is an {} image and needs {}, which does not exist",
            image_path.display(),
            arch.name(),
            program.display()
        )
    })
}

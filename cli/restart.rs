//! `mtcp restart`: picks the `mtcp_restart` of the image's architecture and execs it in place.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image;
use crate::{fail, io_msg, usage, Arg, Args, Result};

const HELP: &str = "\
usage: mtcp restart [--verbose] [--same-pid] IMAGE

Brings the process saved in IMAGE back, in place of this one: it keeps this pid
(unless --same-pid) and this terminal.

options:
  --verbose       report each restore step on stderr
  --same-pid      give the process back its original pid (fails if it is taken)
  -h, --help      show this help
";

pub fn main(mut args: Args) -> Result<u8> {
    let mut flags: Vec<&str> = Vec::new();
    let mut image_arg: Option<OsString> = None;
    let mut only_positional = false;
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(name, v) if !only_positional => {
                let flag = match name.as_str() {
                    "-h" | "--help" => {
                        print!("{}", HELP);
                        return Ok(0);
                    }
                    "--verbose" => "--verbose",
                    "--same-pid" => "--same-pid",
                    _ => return args.unknown(&name),
                };
                if v.is_some() {
                    return usage(format!("restart: option {} takes no value", name));
                }
                if !flags.contains(&flag) {
                    flags.push(flag);
                }
            }
            Arg::DashDash => only_positional = true,
            Arg::Opt(name, _) => return usage(format!("restart: unexpected argument '{}'", name)),
            Arg::Positional(p) => {
                if image_arg.is_some() {
                    return usage(format!("restart: unexpected argument '{}'", p.to_string_lossy()));
                }
                image_arg = Some(p);
            }
        }
    }
    let image_path = match image_arg {
        Some(p) => PathBuf::from(p),
        None => return usage("restart: no IMAGE given (usage: mtcp restart [--verbose] [--same-pid] IMAGE)"),
    };

    // Only the header is checked here; mtcp_restart checks everything else.
    let (_, header) = crate::inspect::open_image(&image_path)?;
    let program = restart_program(header.arch, &image_path)?;
    // mtcp_restart must not take an image named "-x" for an option.
    let image_arg = if image_path.as_os_str().as_bytes().starts_with(b"-") {
        Path::new(".").join(&image_path)
    } else {
        image_path
    };
    let err = Command::new(&program).args(&flags).arg(&image_arg).exec();
    fail(format!("cannot execute {}: {}", program.display(), io_msg(&err)))
}

/// The mtcp_restart binary for an image of `arch`.
fn restart_program(arch: u32, image_path: &Path) -> Result<PathBuf> {
    let (program, i386) = match arch {
        image::ARCH_X86_64 => (crate::exe_dir()?.join("mtcp_restart"), false),
        image::ARCH_I386 => (crate::i386_artifact("mtcp_restart")?, true),
        other => {
            return fail(format!(
                "{}: image is for an unknown architecture (ELF machine {})",
                image_path.display(),
                other
            ))
        }
    };
    if !program.is_file() {
        let extra = if i386 {
            " (or set MTCP_LIB32_DIR to the directory holding it)"
        } else {
            ""
        };
        return fail(format!(
            "{} needs {}, which does not exist; build it with `{}`{}",
            image_path.display(),
            program.display(),
            crate::build_hint(i386),
            extra
        ));
    }
    Ok(program)
}

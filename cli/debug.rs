//! `mtcp debug`: gdb attached to a process, from inside the namespaces its restart made
//! for it, where gdb can read the program's files and match its threads.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use mtcp_core::sys;

use crate::args::{Args, Operands, Subcommand};
use crate::{fail, io_msg, usage, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "debug",
    synopsis: "PID [GDB-ARGUMENTS...]",
    summary: "attach gdb to a process, inside the namespaces its restart made",
    about: "\
Runs `gdb -p` on the program behind PID (a process `mtcp restart` gave its old ids: its
supervisor's pid, as the shell knows it, or the program's own). Where the restart put
the program in namespaces of its own, gdb runs inside them, as you, so that it reads
the program's files and shared libraries and sees the thread ids the program sees (a
debugger outside cannot read files through another user's mount namespace). Exits as
gdb does.",
    options: &[],
    notes: "",
    operands: Operands::Program,
    run: main,
};

fn main(args: Args) -> Result<u8> {
    let p = args.operands[0].to_string_lossy();
    let pid = match p.parse::<i32>() {
        Ok(n) if n > 0 && p.bytes().all(|c| c.is_ascii_digit()) => n,
        _ => return usage(format!("debug: invalid PID '{}'", p)),
    };
    let program = crate::checkpoint::restored_program(pid, Instant::now() + Duration::from_secs(10))?;
    let status = std::fs::read_to_string(format!("/proc/{program}/status"))
        .or_else(|e| fail(format!("no process {program}: {}", io_msg(&e))))?;
    let inner = crate::checkpoint::proc_name(program, &status).pid;
    let ns_of = |pid: &str, ns: &str| std::fs::metadata(format!("/proc/{pid}/ns/{ns}")).ok().map(|m| m.ino());
    let mut enter = 0;
    for (name, flag) in [
        ("user", sys::CLONE_NEWUSER),
        ("mnt", sys::CLONE_NEWNS),
        ("pid", sys::CLONE_NEWPID),
    ] {
        if ns_of(&program.to_string(), name) != ns_of("self", name) {
            enter |= flag;
        }
    }
    if enter != 0 {
        let pidfd = sys::pidfd_open(program as u32).or_else(|e| {
            fail(format!(
                "cannot open process {program}: {}",
                mtcp_core::fmt::ErrnoName(e)
            ))
        })?;
        // All of them or none; the pid namespace is the next child's (gdb's).
        sys::setns(&pidfd, enter).or_else(|e| {
            fail(format!(
                "cannot enter the namespaces of process {program}: {}",
                mtcp_core::fmt::ErrnoName(e)
            ))
        })?;
    }
    let status = Command::new("gdb")
        .args(&args.operands[1..])
        .arg("-p")
        .arg(inner.to_string())
        .status()
        .or_else(|e| fail(format!("cannot run gdb: {}", io_msg(&e))))?;
    Ok(status.code().map_or(1, |c| c as u8))
}

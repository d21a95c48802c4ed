//! `mtcp launch`: sets up the runtime's environment (and LD_PRELOAD when needed) and execs the program in place.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::artifacts::{self, Arch};
use crate::elf::{self, Elf};
use crate::{fail, io_msg, usage, Result};

pub const COMMAND: Subcommand = Subcommand {
    name: "launch",
    synopsis: "[--dir D] [--interval S] [--signal SIG] [--deleted-limit N] [--blocking] [--] PROG ARGS...",
    summary: "run PROG with the mtcp runtime",
    about: "Runs PROG with the mtcp runtime, in place of this process (same pid).",
    options: &[
        Opt {
            name: "--dir",
            value: Value::Os("D"),
            help: "directory for images (MTCP_DIR; default: the program's working directory)",
        },
        Opt {
            name: "--interval",
            value: Value::Text("S"),
            help: "checkpoint every S seconds (MTCP_INTERVAL; 0 = only on request)",
        },
        Opt {
            name: "--signal",
            value: Value::Text("SIG"),
            help: "checkpoint signal (MTCP_SIGNAL): a number 1-64 or a name such as
USR2, SIGUSR2 or RTMIN+3 (default USR2; KILL, STOP, 32 and 33 are refused)",
        },
        Opt {
            name: "--deleted-limit",
            value: Value::Text("N"),
            help: "save at most N bytes of each deleted file the program holds open
(MTCP_DELETED_LIMIT; K, M, G allowed; default 64M); a larger one fails the checkpoint",
        },
        Opt {
            name: "--blocking",
            value: Value::None,
            help: "write each image while the program is stopped (MTCP_BLOCKING=1), not
from a forked copy of it while it goes on",
        },
    ],
    notes: "\
A dynamically linked PROG that does not define mtcp_checkpoint gets the runtime
through LD_PRELOAD; a static PROG, or one linked with the runtime, only gets the
environment. For a #! script the interpreter decides.",
    operands: Operands::Program,
    run: main,
};

/// Linux follows at most this many nested #! interpreters.
const MAX_SCRIPT_DEPTH: u32 = 4;

fn main(args: Args) -> Result<u8> {
    let (mut cmd, _) = command("launch", &args)?;
    let err = cmd.exec();
    fail(format!(
        "cannot execute {}: {}",
        args.operands[0].to_string_lossy(),
        io_msg(&err)
    ))
}

/// The command that runs the program of `args` (`--dir`, `--interval`, `--signal`, then
/// PROG ARGS) with the runtime, and the file exec will run; `name` is the subcommand,
/// for messages. `mtcp launch` execs it in place, `mtcp run` spawns it.
pub fn command(name: &str, args: &Args) -> Result<(Command, PathBuf)> {
    let dir = args.value("--dir");
    let interval = args.text("--interval");
    let signal = args.text("--signal");
    let deleted_limit = args.text("--deleted-limit");
    let command = &args.operands;

    let mut env: Vec<(&str, OsString)> = Vec::new();
    if let Some(i) = &interval {
        if parse_interval(i).is_none() {
            return usage(format!(
                "{}: invalid --interval '{}': expected a whole number of seconds",
                name, i
            ));
        }
        env.push(("MTCP_INTERVAL", i.into()));
    }
    if let Some(s) = &signal {
        match crate::signal::parse(&s.to_ascii_uppercase()) {
            // The number, so that the runtime and `mtcp checkpoint` cannot read it differently.
            Some(n) => env.push(("MTCP_SIGNAL", n.to_string().into())),
            None => {
                return usage(format!(
                    "{}: invalid --signal '{}': expected a number 1-64 or a name such as USR2 or RTMIN+3 (not KILL, STOP, 32 or 33)",
                    name, s
                ))
            }
        }
    }
    if let Some(n) = &deleted_limit {
        if mtcp_core::config::parse_deleted_limit(n.as_bytes()).is_none() {
            return usage(format!(
                "{}: invalid --deleted-limit '{}': expected a number of bytes such as 1048576 or 64M",
                name, n
            ));
        }
        env.push(("MTCP_DELETED_LIMIT", n.into()));
    }
    if let Some(d) = &dir {
        env.push(("MTCP_DIR", checked_dir(name, d)?.into_os_string()));
    }
    if args.flag("--blocking") {
        env.push(("MTCP_BLOCKING", "1".into()));
    }

    let prog = &command[0];
    let path = resolve_program(prog)?;
    let mut cmd = Command::new(&path);
    cmd.arg0(prog).args(&command[1..]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    if let Some(lib) = runtime_to_preload(&path, prog)? {
        cmd.env("LD_PRELOAD", ld_preload(&lib, std::env::var_os("LD_PRELOAD")));
    }
    Ok((cmd, path))
}

/// MTCP_INTERVAL as the runtime reads it: decimal digits, at most u32::MAX.
fn parse_interval(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The absolute form of --dir, which must be an existing directory (the runtime refuses
/// anything else, but only once the program has started).
pub fn checked_dir(name: &str, d: &OsStr) -> Result<PathBuf> {
    if d.is_empty() {
        return usage(format!("{}: --dir needs a non-empty directory", name));
    }
    let abs = match std::path::absolute(d) {
        Ok(a) => a,
        Err(e) => return fail(format!("--dir {}: {}", Path::new(d).display(), io_msg(&e))),
    };
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_dir() => Ok(abs),
        Ok(_) => fail(format!("--dir {}: not a directory", abs.display())),
        Err(e) => fail(format!("--dir {}: {}", abs.display(), io_msg(&e))),
    }
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds `name` in PATH like execvp: the first executable regular file.
pub fn search_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    for dir in path.as_bytes().split(|&c| c == b':') {
        // An empty PATH entry means the current directory.
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        if is_executable_file(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// The file that exec will run for PROG: as given if it has a '/', else from PATH.
fn resolve_program(prog: &OsStr) -> Result<PathBuf> {
    let shown = prog.to_string_lossy();
    if prog.as_bytes().contains(&b'/') {
        let p = PathBuf::from(prog);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => fail(format!("{}: is a directory", shown)),
            Ok(_) => Ok(p),
            Err(e) => fail(format!("{}: {}", shown, io_msg(&e))),
        };
    }
    match search_path(prog) {
        Some(p) => Ok(p),
        None => fail(format!("{}: command not found", shown)),
    }
}

/// What the program that finally runs looks like, as far as preloading is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Static, or already linked with the runtime: the environment is enough.
    HasRuntime,
    /// Dynamic without the runtime: preload the library of this class.
    NeedsPreload { class64: bool, machine: u16 },
}

/// Decides by the ELF file that the kernel will load for `path`, following #! lines.
fn classify(path: &Path, depth: u32) -> Result<Kind> {
    let shown = path.display();
    let mut head = Vec::with_capacity(256);
    let opened = File::open(path).and_then(|f| f.take(256).read_to_end(&mut head));
    if let Err(e) = opened {
        return fail(format!(
            "cannot read {} to decide how to load the runtime: {}",
            shown,
            io_msg(&e)
        ));
    }
    if head.starts_with(b"#!") {
        if depth >= MAX_SCRIPT_DEPTH {
            return fail(format!("{}: too many levels of #! interpreters", shown));
        }
        let interp = script_interpreter(&head)
            .ok_or_else(|| crate::Error::Fail(format!("{}: #! line names no interpreter", shown)))?;
        return classify(&interp?, depth + 1);
    }
    if !Elf::is_elf(&head) {
        return fail(format!("{}: not an ELF executable or a #! script", shown));
    }
    let elf = Elf::open(path).map_err(|e| crate::Error::Fail(format!("{}: {}", shown, e)))?;
    match (elf.carries_runtime(), elf.interp.is_some()) {
        (Ok(true), _) => Ok(Kind::HasRuntime),
        (Ok(false), true) => Ok(Kind::NeedsPreload {
            class64: elf.class64,
            machine: elf.machine,
        }),
        // Nothing can be preloaded into a static program: it would run without checkpoints.
        (Ok(false), false) => fail(format!(
            "{} is statically linked without the mtcp runtime; link it with libmtcp.a \
             (gcc -static ... -Wl,--whole-archive libmtcp.a -Wl,--no-whole-archive)",
            shown
        )),
        (Err(e), _) => fail(format!("{}: {}", shown, e)),
    }
}

/// The interpreter of a #! script: the first word, or for `env` the program it runs
/// (found through PATH). None if the line names nothing.
fn script_interpreter(head: &[u8]) -> Option<Result<PathBuf>> {
    let line = &head[2..];
    let line = &line[..line.iter().position(|&c| c == b'\n').unwrap_or(line.len())];
    let mut words = line.split(|&c| c == b' ' || c == b'\t').filter(|w| !w.is_empty());
    let first = Path::new(OsStr::from_bytes(words.next()?));
    if first.file_name() != Some(OsStr::new("env")) {
        return Some(Ok(first.to_path_buf()));
    }
    // Skip env's options (-S, -i, ...) and VAR=value assignments.
    let prog = words.find(|w| !w.starts_with(b"-") && !w.contains(&b'='))?;
    let prog = OsStr::from_bytes(prog);
    if prog.as_bytes().contains(&b'/') {
        return Some(Ok(PathBuf::from(prog)));
    }
    Some(match search_path(prog) {
        Some(p) => Ok(p),
        None => fail(format!(
            "#!{} {}: {} not found in PATH",
            first.display(),
            prog.to_string_lossy(),
            prog.to_string_lossy()
        )),
    })
}

/// The runtime library to preload for `path`, or None if the program needs none.
fn runtime_to_preload(path: &Path, prog: &OsStr) -> Result<Option<PathBuf>> {
    let (class64, machine) = match classify(path, 0)? {
        Kind::HasRuntime => return Ok(None),
        Kind::NeedsPreload { class64, machine } => (class64, machine),
    };
    if let Some(why) = secure_exec_reason(path) {
        // The dynamic loader ignores LD_PRELOAD in secure-execution mode: the program
        // would run without checkpoints, which must never happen silently.
        return fail(format!(
            "{} is {}, so the dynamic loader would ignore the runtime (LD_PRELOAD) and it would run without checkpoints; run it as its owner, or link it with libmtcp.a",
            prog.to_string_lossy(),
            why
        ));
    }
    let arch = match (class64, machine) {
        (true, elf::EM_X86_64) => Arch::X86_64,
        (false, elf::EM_386) => Arch::I386,
        _ => {
            return fail(format!(
                "{} is a {}-bit program for ELF machine {}; mtcp supports x86_64 and i386",
                prog.to_string_lossy(),
                if class64 { 64 } else { 32 },
                machine
            ))
        }
    };
    let lib = artifacts::find(arch, "libmtcp.so", |lib| {
        format!(
            "the {}-bit runtime library {} does not exist",
            if class64 { 64 } else { 32 },
            lib.display()
        )
    })?;
    // A relative MTCP_LIB32_DIR would break as soon as the program changes directory.
    let lib = std::path::absolute(&lib).unwrap_or(lib);
    if lib.as_os_str().as_bytes().iter().any(|&c| c == b':' || c == b' ') {
        return fail(format!(
            "the runtime library path {} contains ':' or ' ', which LD_PRELOAD cannot hold",
            lib.display()
        ));
    }
    Ok(Some(lib))
}

/// Why executing `path` would put the loader in secure-execution mode (AT_SECURE):
/// set-user-ID or set-group-ID to someone other than us, or file capabilities.
fn secure_exec_reason(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).ok()?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let real_id = |key: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    if md.mode() & 0o4000 != 0 && Some(md.uid()) != real_id("Uid:") {
        return Some("set-user-ID");
    }
    // Set-group-ID without group execute permission marks mandatory locking, not an id.
    if md.mode() & 0o2010 == 0o2010 && Some(md.gid()) != real_id("Gid:") {
        return Some("set-group-ID");
    }
    has_file_capabilities(path).then_some("given file capabilities")
}

fn has_file_capabilities(path: &Path) -> bool {
    extern "C" {
        // From the C library std already links.
        fn getxattr(path: *const std::ffi::c_char, name: *const std::ffi::c_char, value: *mut u8, size: usize)
            -> isize;
    }
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0 only asks for the
    // attribute's size.
    unsafe {
        getxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        ) > 0
    }
}

/// LD_PRELOAD with `lib` first and the existing entries (other than `lib`) after it.
fn ld_preload(lib: &Path, existing: Option<OsString>) -> OsString {
    let mut out = lib.as_os_str().to_os_string();
    if let Some(old) = existing {
        for entry in old
            .as_bytes()
            .split(|&c| c == b':' || c == b' ')
            .filter(|e| !e.is_empty())
        {
            if entry != lib.as_os_str().as_bytes() {
                out.push(":");
                out.push(OsStr::from_bytes(entry));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval() {
        assert_eq!(parse_interval("0"), Some(0));
        assert_eq!(parse_interval("60"), Some(60));
        assert_eq!(parse_interval("4294967295"), Some(u32::MAX));
        for bad in ["", "-1", "+1", "1.5", "4294967296", "1s", " 1"] {
            assert_eq!(parse_interval(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn preload_order() {
        let lib = Path::new("/x/libmtcp.so");
        assert_eq!(ld_preload(lib, None), "/x/libmtcp.so");
        assert_eq!(ld_preload(lib, Some("".into())), "/x/libmtcp.so");
        assert_eq!(ld_preload(lib, Some("/a.so /b.so".into())), "/x/libmtcp.so:/a.so:/b.so");
        assert_eq!(
            ld_preload(lib, Some("/a.so:/x/libmtcp.so".into())),
            "/x/libmtcp.so:/a.so"
        );
    }

    #[test]
    fn shebang() {
        let p = |s: &[u8]| script_interpreter(s).map(|r| r.ok());
        assert_eq!(p(b"#!/bin/sh\necho"), Some(Some(PathBuf::from("/bin/sh"))));
        assert_eq!(p(b"#! /bin/bash -e\n"), Some(Some(PathBuf::from("/bin/bash"))));
        assert_eq!(p(b"#!\n"), None);
        assert_eq!(p(b"#!/usr/bin/env\n"), None);
        let sh = p(b"#!/usr/bin/env -S sh -e\n").unwrap().unwrap();
        assert_eq!(sh.file_name(), Some(OsStr::new("sh")));
        assert!(sh.is_absolute() || sh.starts_with("."));
    }

    #[test]
    fn classify_sh_and_script() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let expect = Kind::NeedsPreload {
            class64: cfg!(target_pointer_width = "64"),
            machine: if cfg!(target_arch = "x86_64") {
                elf::EM_X86_64
            } else {
                elf::EM_386
            },
        };
        assert_eq!(classify(&sh, 0).unwrap(), expect);
        let dir = crate::TempDir::new("launch-classify");
        let script = dir.join("s");
        std::fs::write(&script, b"#!/usr/bin/env sh\nexit 0\n").unwrap();
        assert_eq!(classify(&script, 0).unwrap(), expect);
        std::fs::write(&script, format!("#!{}\n", script.display())).unwrap();
        assert!(
            classify(&script, 0).is_err(),
            "a script that is its own interpreter must not loop"
        );
        std::fs::write(&script, b"plain text\n").unwrap();
        assert!(classify(&script, 0).is_err());
    }
}

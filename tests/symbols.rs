//! The runtime never calls libc: libmtcp.so and libmtcp.a of each width (`*_32`: i386)
//! leave no symbol for a libc to provide, but for a short list of weak references that
//! bind to glibc where there is one and to nothing in a static or libc-free program. The
//! check itself is tried on C code that calls getpid() and sets errno.

pub mod common;

use common::*;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Weak references the runtime makes on purpose (arch/*/mod.rs): glibc's rseq area, which
/// a checkpoint records and a restart registers again, and `__errno_location`, through
/// which the signal functions the runtime replaces set the program's errno.
const RUNTIME_WEAK: &[&str] = &["__errno_location", "__rseq_offset", "__rseq_size"];

/// Weak references that gcc's crtbeginS.o and crti.o put into every shared object it links
/// (transactional-memory clone tables, C++ finalization, profiling): not the runtime's
/// code, and bound to nothing without a libc. Allowed in libmtcp.so only.
const CRT_WEAK: &[&str] = &[
    "_ITM_deregisterTMCloneTable",
    "_ITM_registerTMCloneTable",
    "__cxa_finalize",
    "__gmon_start__",
];

/// Defined by the linker itself, never by a library: the base of the GOT, which i386
/// position-independent code addresses. Allowed in libmtcp.a only (in libmtcp.so the
/// linker has defined it).
const LINKER_MADE: &[&str] = &["_GLOBAL_OFFSET_TABLE_"];

/// One symbol as `nm -A -P` lists it.
struct Sym {
    /// `FILE` or `ARCHIVE[MEMBER]`.
    file: String,
    /// As listed, with a symbol version (`getpid@GLIBC_2.2.5`) if it has one.
    name: String,
    /// nm's type letter: `U` undefined, `w`/`v` weak undefined, other capitals (and `u`,
    /// `i`) global definitions, other lower-case letters local ones.
    kind: char,
}

impl Sym {
    /// The name without its symbol version.
    fn base(&self) -> &str {
        self.name.split('@').next().unwrap()
    }

    fn is_undefined(&self) -> bool {
        matches!(self.kind, 'U' | 'w' | 'v')
    }

    fn is_weak_undefined(&self) -> bool {
        matches!(self.kind, 'w' | 'v')
    }

    /// A definition that other objects can bind to.
    fn is_global_definition(&self) -> bool {
        !self.is_undefined()
            && !matches!(self.kind, 'N' | '?')
            && (self.kind.is_ascii_uppercase() || "ui".contains(self.kind))
    }
}

/// `nm -A -P [extra] FILE`, parsed; fails the test on any complaint of nm's.
fn nm(bits: Bits, extra: &[&str], path: &Path) -> Vec<Sym> {
    let mut cmd = Command::new("nm");
    // --target: read every file and archive member as the ELF object it is. Without it
    // nm takes a Rust object that carries LLVM bitcode (.llvmbc) for an LTO object, fails
    // to load that with its LLVM plugin and lists no symbols for it at all.
    let target = match bits {
        Bits::B64 => "--target=elf64-x86-64",
        Bits::B32 => "--target=elf32-i386",
    };
    cmd.args(["-A", "-P", target]).args(extra).arg(path);
    let out = run_output(cmd, Duration::from_secs(60));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "nm {extra:?} {} did not list every symbol cleanly:\n{}",
        path.display(),
        describe_output(&out)
    );
    let text = String::from_utf8(out.stdout).expect("nm output is UTF-8");
    // `FILE: NAME TYPE [VALUE SIZE]`; a symbol name never holds ": ".
    text.lines()
        .map(|line| {
            let parsed = line.rsplit_once(": ").and_then(|(file, rest)| {
                let mut fields = rest.split_whitespace();
                let name = fields.next()?;
                let mut kind = fields.next()?.chars();
                match (kind.next(), kind.next()) {
                    (Some(kind), None) => Some(Sym {
                        file: file.to_string(),
                        name: name.to_string(),
                        kind,
                    }),
                    _ => None,
                }
            });
            parsed.unwrap_or_else(|| panic!("unexpected line from nm {}: {line:?}", path.display()))
        })
        .collect()
}

/// The undefined symbols of shared object `so`, in its symbol table and in its dynamic
/// one (what the dynamic loader binds), that are not weak references in `weak_ok`.
fn shared_object_problems(bits: Bits, so: &Path, weak_ok: &[&str]) -> Vec<String> {
    let mut syms = nm(bits, &[], so);
    syms.extend(nm(bits, &["-D"], so));
    let problems: BTreeSet<String> = syms
        .iter()
        .filter(|s| s.is_undefined() && !(s.is_weak_undefined() && weak_ok.contains(&s.base())))
        .map(|s| format!("{}: {} {}", s.file, s.kind, s.name))
        .collect();
    problems.into_iter().collect()
}

/// The undefined symbols of the members of archive `a` that no member defines, other
/// than weak references in `weak_ok` and the linker's own symbols.
fn archive_problems(bits: Bits, a: &Path, weak_ok: &[&str]) -> Vec<String> {
    let syms = nm(bits, &[], a);
    let members: HashSet<&str> = syms.iter().map(|s| s.file.as_str()).collect();
    assert!(
        members.len() > 1 && members.iter().all(|m| m.ends_with(".o]")),
        "nm did not list {} as an archive of objects: {members:?}",
        a.display()
    );
    let defined: HashSet<&str> = syms
        .iter()
        .filter(|s| s.is_global_definition())
        .map(|s| s.base())
        .collect();
    let problems: BTreeSet<String> = syms
        .iter()
        .filter(|s| s.is_undefined() && !defined.contains(s.base()))
        .filter(|s| !(s.is_weak_undefined() && weak_ok.contains(&s.base())))
        .filter(|s| !(s.kind == 'U' && LINKER_MADE.contains(&s.base())))
        .map(|s| format!("{}: {} {}", s.file, s.kind, s.name))
        .collect();
    problems.into_iter().collect()
}

/// Whether nm sees `name` defined (globally) in `path`: the parsing found real symbols.
fn defines(bits: Bits, path: &Path, name: &str) -> bool {
    nm(bits, &[], path)
        .iter()
        .any(|s| s.is_global_definition() && s.base() == name)
}

fn runtime_symbols(bits: Bits) {
    let _t = Test::new(&bits.name("symbols"));
    let (so, a) = (bits.libmtcp_so(), bits.libmtcp_a());
    for lib in [so, a] {
        assert!(
            defines(bits, lib, "mtcp_checkpoint"),
            "nm does not list mtcp_checkpoint as defined in {}",
            lib.display()
        );
    }
    let mut problems = shared_object_problems(bits, so, &[RUNTIME_WEAK, CRT_WEAK].concat());
    problems.extend(archive_problems(bits, a, RUNTIME_WEAK));
    assert!(
        problems.is_empty(),
        "the {} runtime must not call libc (or anything outside itself), but these symbols are left for the \
         program to provide (allowed: the weak references {RUNTIME_WEAK:?}, and in the shared object gcc's \
         {CRT_WEAK:?}):\n  {}",
        bits.arch(),
        problems.join("\n  ")
    );
}

per_width!(runtime_calls_no_libc, runtime_calls_no_libc_32 => runtime_symbols());

/// C code of the kind the check must refuse: one object calls getpid() and sets errno
/// (a strong reference to __errno_location), makes a weak reference that is not allowed
/// (getppid) and one that is (__rseq_offset), and calls helper(), which a second object
/// defines.
const LIBC_USER: &str = r#"
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern pid_t getppid(void) __attribute__((weak));
int helper(int);
long user(void) {
    errno = 0;
    return getpid() + helper(1) + (long)&__rseq_offset + (long)&getppid;
}
"#;
const HELPER: &str = "int helper(int x) { return x + 1; }\n";

/// Builds LIBC_USER and HELPER for `bits` as an archive and as a shared object.
fn build_libc_user(t: &Test, bits: Bits) -> (PathBuf, PathBuf) {
    let (user_c, helper_c) = (t.path("user.c"), t.path("helper.c"));
    fs::write(&user_c, LIBC_USER).unwrap();
    fs::write(&helper_c, HELPER).unwrap();
    let run = |what: &str, mut cmd: Command| {
        cmd.current_dir(&t.dir);
        let out = run_output(cmd, Duration::from_secs(60));
        assert!(out.status.success(), "{what} failed:\n{}", describe_output(&out));
    };
    for (src, obj) in [(&user_c, "user.o"), (&helper_c, "helper.o")] {
        let mut cmd = Command::new("gcc");
        cmd.args(bits.gcc_args())
            .args(["-O2", "-fPIC", "-c"])
            .arg(src)
            .args(["-o", obj]);
        run("gcc -c", cmd);
    }
    let archive = t.path("libuser.a");
    let mut cmd = Command::new("ar");
    cmd.arg("rcs").arg(&archive).args(["user.o", "helper.o"]);
    run("ar", cmd);
    let so = t.path("libuser.so");
    let mut cmd = Command::new("gcc");
    cmd.args(bits.gcc_args())
        .args(["-shared", "user.o", "helper.o", "-o"])
        .arg(&so);
    run("gcc -shared", cmd);
    (archive, so)
}

/// The check finds a libc call, errno set through libc and a weak reference that is not
/// on the list, in an archive and in a shared object, and lets pass what it should.
fn check_finds_libc_calls(bits: Bits) {
    let t = Test::new(&bits.name("symbols_check"));
    let (archive, so) = build_libc_user(&t, bits);
    let cases = [
        ("archive", archive_problems(bits, &archive, RUNTIME_WEAK)),
        (
            "shared object",
            shared_object_problems(bits, &so, &[RUNTIME_WEAK, CRT_WEAK].concat()),
        ),
    ];
    for (what, problems) in cases {
        let listed = |name: &str| {
            problems
                .iter()
                .any(|p| p.ends_with(&format!(" {name}")) || p.contains(&format!(" {name}@")))
        };
        let kind = |name: &str, kind: char| problems.iter().any(|p| p.contains(&format!(": {kind} {name}")));
        assert!(
            kind("getpid", 'U') && kind("__errno_location", 'U') && kind("getppid", 'w'),
            "the check of a {what} misses getpid (U), __errno_location (U) or getppid (w): {problems:?}"
        );
        assert!(
            !listed("helper") && !listed("__rseq_offset") && !listed("__gmon_start__"),
            "the check of a {what} lists a symbol it should allow: {problems:?}"
        );
    }
}

per_width!(symbol_check_finds_libc_calls, symbol_check_finds_libc_calls_32 => check_finds_libc_calls());

//! The two widths, x86_64 and i386 (`Bits`), `per_width!` to run a scenario for both, and runtime checks.

use super::bins::{bins, bins32};
use std::fs;
use std::path::Path;

/// The width of the programs a test builds, which decides the runtime, the mtcp_restart
/// and the image architecture that go with them. A scenario that runs once per width is a
/// `fn scenario(bits: Bits, ...)` with the entry points `test_name` and `test_name_32`
/// (`per_width!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bits {
    /// x86_64, with the native build (`bins()`).
    B64,
    /// i386, with the i686 build (`bins32()`), which `mtcp` uses for 32-bit programs.
    B32,
}

impl Bits {
    /// The name of a test's directory: `base`, or `base_32` for i386.
    pub fn name(self, base: &str) -> String {
        match self {
            Bits::B64 => base.to_string(),
            Bits::B32 => format!("{base}_32"),
        }
    }

    /// The suffix of the test programs written once per architecture (nolibc.c,
    /// nolibc32.c) and of output files that must not be confused: "" or "32".
    pub fn suffix(self) -> &'static str {
        match self {
            Bits::B64 => "",
            Bits::B32 => "32",
        }
    }

    pub fn other(self) -> Bits {
        match self {
            Bits::B64 => Bits::B32,
            Bits::B32 => Bits::B64,
        }
    }

    pub fn gcc_args(self) -> &'static [&'static str] {
        match self {
            Bits::B64 => &[],
            Bits::B32 => &["-m32"],
        }
    }

    /// `rustc --target`, if not the host's.
    pub fn rust_target(self) -> Option<&'static str> {
        match self {
            Bits::B64 => None,
            Bits::B32 => Some("i686-unknown-linux-gnu"),
        }
    }

    /// The ELF e_machine, which is also the image header's architecture word:
    /// 62 (EM_X86_64) or 3 (EM_386).
    pub fn em(self) -> u32 {
        match self {
            Bits::B64 => 62,
            Bits::B32 => 3,
        }
    }

    /// EI_CLASS of the programs: 2 (ELFCLASS64) or 1 (ELFCLASS32).
    pub fn elf_class(self) -> u8 {
        match self {
            Bits::B64 => 2,
            Bits::B32 => 1,
        }
    }

    /// The architecture as `mtcp inspect` names it.
    pub fn arch(self) -> &'static str {
        match self {
            Bits::B64 => "x86_64",
            Bits::B32 => "i386",
        }
    }

    /// The file name of the dynamic loader.
    pub fn ld_so(self) -> &'static str {
        match self {
            Bits::B64 => "ld-linux-x86-64.so.2",
            Bits::B32 => "ld-linux.so.2",
        }
    }

    pub fn libmtcp_so(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().libmtcp_so,
            Bits::B32 => &bins32().libmtcp_so,
        }
    }

    pub fn libmtcp_a(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().libmtcp_a,
            Bits::B32 => &bins32().libmtcp_a,
        }
    }

    pub fn mtcp_restart(self) -> &'static Path {
        match self {
            Bits::B64 => &bins().mtcp_restart,
            Bits::B32 => &bins32().mtcp_restart,
        }
    }
}

/// The two `#[test]` entry points of a scenario `fn scenario(bits: Bits, args...)`: the
/// first runs it for x86_64, the second for i386; attributes (`///` docs included) go to
/// both.
///
/// ```ignore
/// per_width!(dynamic_c_program, dynamic_c_program_32 => c_program("dynamic_c", Variant::Dynamic));
/// ```
#[macro_export]
macro_rules! per_width {
    ($(#[$attr:meta])* $n64:ident, $n32:ident => $scenario:ident($($arg:expr),* $(,)?)) => {
        $(#[$attr])*
        #[test]
        fn $n64() {
            $scenario($crate::common::Bits::B64 $(, $arg)*);
        }

        $(#[$attr])*
        #[test]
        fn $n32() {
            $scenario($crate::common::Bits::B32 $(, $arg)*);
        }
    };
}

/// The running process `pid` is a program of width `bits` and, if it is `dynamic`, has
/// the runtime of that width mapped (the one `mtcp launch` preloaded), not the other.
pub fn assert_runs_runtime(pid: i32, bits: Bits, dynamic: bool) {
    let exe = fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert!(exe.len() > 5 && &exe[..4] == b"\x7fELF", "cannot read /proc/{pid}/exe");
    assert_eq!(
        exe[4],
        bits.elf_class(),
        "process {pid} is not a {} (EI_CLASS {}) program",
        bits.arch(),
        bits.elf_class()
    );
    if dynamic {
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let lib = bits.libmtcp_so().canonicalize().unwrap();
        assert!(
            maps.contains(lib.to_str().unwrap()),
            "the {} runtime {} is not mapped in the {} process {pid}:\n{maps}",
            bits.arch(),
            lib.display(),
            bits.arch()
        );
        if bits == Bits::B32 {
            let lib64 = Bits::B64.libmtcp_so().canonicalize().unwrap();
            assert!(
                !maps.contains(lib64.to_str().unwrap()),
                "the 64-bit runtime is mapped in a 32-bit process:\n{maps}"
            );
        }
    }
}

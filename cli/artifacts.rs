//! Where the tool finds the runtime and `mtcp_restart` of each architecture: in the cargo
//! build tree it was built in, or in the installed layout under its prefix.
//!
//! The layout is read off this executable's own path (`/proc/self/exe`, so a symbolic link
//! to it changes nothing): `PREFIX/bin/mtcp` is installed and uses
//! `PREFIX/lib/mtcp/{x86_64,i386}/`; anything else is a build tree,
//! `<target>/<profile>/mtcp`, with the x86_64 artifacts beside it and the i386 ones in
//! `<target>/i686-unknown-linux-gnu/<profile>/`. `MTCP_LIB32_DIR` overrides the i386
//! directory in both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{fail, io_msg, Result};

/// The architectures mtcp has a runtime and an `mtcp_restart` for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
}

impl Arch {
    /// The directory name in the installed layout, `PREFIX/lib/mtcp/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }
}

/// How the running `mtcp` is laid out.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// `PREFIX/bin/mtcp`, the artifacts in `PREFIX/lib/mtcp/<arch>/`.
    Installed { prefix: PathBuf },
    /// `<target>/<profile>/mtcp`.
    BuildTree { target: PathBuf, profile: OsString },
}

impl Layout {
    /// The layout of an `mtcp` executable at `exe`.
    fn of(exe: &Path) -> Layout {
        let dir = exe.parent().unwrap_or(Path::new("/"));
        let up = dir.parent().unwrap_or(Path::new("/")).to_path_buf();
        match dir.file_name() {
            Some(n) if n == "bin" => Layout::Installed { prefix: up },
            Some(n) => Layout::BuildTree {
                target: up,
                profile: n.to_os_string(),
            },
            None => Layout::BuildTree {
                target: up,
                profile: "release".into(),
            },
        }
    }

    /// The directory that holds `arch`'s artifacts (`MTCP_LIB32_DIR` aside).
    fn dir(&self, arch: Arch) -> PathBuf {
        match (self, arch) {
            (Layout::Installed { prefix }, a) => prefix.join("lib/mtcp").join(a.name()),
            (Layout::BuildTree { target, profile }, Arch::X86_64) => target.join(profile),
            (Layout::BuildTree { target, profile }, Arch::I386) => target.join("i686-unknown-linux-gnu").join(profile),
        }
    }

    /// What to do about a missing artifact of `arch`.
    fn remedy(&self, arch: Arch) -> String {
        match self {
            Layout::Installed { prefix } => format!(
                "install mtcp{} again with `scripts/install.sh --prefix {}` from its source tree",
                if arch == Arch::I386 { " with its i386 build" } else { "" },
                prefix.display()
            ),
            Layout::BuildTree { profile, .. } => {
                let mut cmd = String::from("cargo build");
                match profile.to_string_lossy().as_ref() {
                    "debug" => {}
                    "release" => cmd.push_str(" --release"),
                    p => {
                        cmd.push_str(" --profile ");
                        cmd.push_str(p);
                    }
                }
                if arch == Arch::I386 {
                    cmd.push_str(" --target i686-unknown-linux-gnu");
                }
                format!("build it with `{cmd}`")
            }
        }
    }
}

/// The path of the running `mtcp`.
fn current_exe() -> Result<PathBuf> {
    match std::env::current_exe() {
        Ok(e) => Ok(e),
        Err(e) => fail(format!("cannot find the mtcp executable: {}", io_msg(&e))),
    }
}

/// The `file` (`libmtcp.so`, `mtcp_restart`) of `arch` that this `mtcp` uses. If it does
/// not exist, the error is `missing(path)` followed by what to do about it.
pub fn find(arch: Arch, file: &str, missing: impl FnOnce(&Path) -> String) -> Result<PathBuf> {
    let layout = Layout::of(&current_exe()?);
    let lib32 = std::env::var_os("MTCP_LIB32_DIR").filter(|d| !d.is_empty());
    let (path, remedy) = match (arch, lib32) {
        (Arch::I386, Some(d)) => (
            Path::new(&d).join(file),
            format!(
                "MTCP_LIB32_DIR names {}: point it to the i386 build, or unset it",
                Path::new(&d).display()
            ),
        ),
        (Arch::I386, None) => (
            layout.dir(arch).join(file),
            format!(
                "{} (or set MTCP_LIB32_DIR to the directory holding it)",
                layout.remedy(arch)
            ),
        ),
        (Arch::X86_64, _) => (layout.dir(arch).join(file), layout.remedy(arch)),
    };
    if path.is_file() {
        Ok(path)
    } else {
        fail(format!("{}; {}", missing(&path), remedy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_layout() {
        let l = Layout::of(Path::new("/opt/mtcp/bin/mtcp"));
        assert_eq!(
            l,
            Layout::Installed {
                prefix: "/opt/mtcp".into()
            }
        );
        assert_eq!(l.dir(Arch::X86_64), Path::new("/opt/mtcp/lib/mtcp/x86_64"));
        assert_eq!(l.dir(Arch::I386), Path::new("/opt/mtcp/lib/mtcp/i386"));
        assert!(l.remedy(Arch::I386).contains("scripts/install.sh --prefix /opt/mtcp"));
    }

    #[test]
    fn build_tree_layout() {
        let l = Layout::of(Path::new("/src/mtcp/target/release/mtcp"));
        assert_eq!(l.dir(Arch::X86_64), Path::new("/src/mtcp/target/release"));
        assert_eq!(
            l.dir(Arch::I386),
            Path::new("/src/mtcp/target/i686-unknown-linux-gnu/release")
        );
        assert_eq!(
            l.remedy(Arch::I386),
            "build it with `cargo build --release --target i686-unknown-linux-gnu`"
        );
        let d = Layout::of(Path::new("/src/mtcp/target/debug/mtcp"));
        assert_eq!(d.remedy(Arch::X86_64), "build it with `cargo build`");
        let p = Layout::of(Path::new("/t/fast/mtcp"));
        assert_eq!(p.remedy(Arch::X86_64), "build it with `cargo build --profile fast`");
    }
}

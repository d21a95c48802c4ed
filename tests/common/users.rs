//! Running mtcp as an ordinary user: `nobody`, with no capabilities (setpriv), from a copy
//! of the built artifacts that every user may run, in a test directory that user owns.
//! The suite runs as root (CI does), so this is how it shows what users without
//! privileges get.

use super::bins::{bins, bins32};
use super::images::checkpoint_with;
use super::proc::Proc;
use super::test_dir::Test;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const NOBODY: u32 = 65534;

/// `nobody` and the public copy of mtcp it runs.
pub struct Unprivileged {
    /// The copied `mtcp`, in a build-tree layout (`pub/release/mtcp`, the i386 artifacts
    /// in `pub/i686-unknown-linux-gnu/release/`), so it finds both widths' artifacts.
    pub mtcp: PathBuf,
    dir: PathBuf,
}

impl Unprivileged {
    /// Copies the artifacts into `t`'s directory and hands the directory (and what is
    /// in it) to `nobody`. Compile the test's programs first: gcc runs as root.
    pub fn new(t: &Test) -> Unprivileged {
        let b = bins();
        let b32 = bins32();
        let public = t.path("pub");
        let release = public.join("release");
        let release32 = public.join("i686-unknown-linux-gnu/release");
        fs::create_dir_all(&release).unwrap();
        fs::create_dir_all(&release32).unwrap();
        let copy = |from: &Path, to: &Path| {
            fs::copy(from, to.join(from.file_name().unwrap()))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        };
        copy(&b.mtcp, &release);
        copy(&b.mtcp_restart, &release);
        copy(&b.libmtcp_so, &release);
        copy(&b32.mtcp_restart, &release32);
        copy(&b32.libmtcp_so, &release32);
        chown_tree(&t.dir, NOBODY);
        fs::set_permissions(&t.dir, fs::Permissions::from_mode(0o755)).unwrap();
        Unprivileged {
            mtcp: release.join("mtcp"),
            dir: t.dir.clone(),
        }
    }

    /// `cmd` run as nobody, without any capability, in the test directory.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(program)
        .current_dir(&self.dir)
        .env("HOME", &self.dir);
        cmd
    }

    /// `mtcp ARGS` as nobody.
    pub fn mtcp(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(&self.mtcp);
        cmd.args(args);
        cmd
    }

    /// `mtcp launch --dir <test dir> -- prog args` as nobody.
    pub fn launch(&self, prog: &Path, args: &[&str]) -> Proc {
        let mut cmd = self.mtcp(&["launch", "--dir", self.dir.to_str().unwrap(), "--"]);
        cmd.arg(prog).args(args);
        Proc::spawn(cmd, &format!("launch {} (as nobody)", prog.display()))
    }

    /// `mtcp restart OPTS IMAGE` as nobody.
    pub fn restart(&self, opts: &[&str], image: &Path) -> Proc {
        let mut cmd = self.mtcp(&["restart"]);
        cmd.args(opts).arg(image);
        Proc::spawn(cmd, &format!("restart {} (as nobody)", image.display()))
    }

    /// `mtcp checkpoint PID` as nobody; the image's path.
    pub fn checkpoint(&self, pid: i32) -> PathBuf {
        // setpriv execs in place: the wrapper is the command itself.
        let wrapper = self.dir.join("pub/release/as-nobody.sh");
        if !wrapper.exists() {
            fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all -- {} \"$@\"\n",
                    self.mtcp.display()
                ),
            )
            .unwrap();
            fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        }
        checkpoint_with(&wrapper, pid)
    }
}

fn chown_tree(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {} (these tests need root): {e}", p.display()));
    if p.is_dir() && !p.is_symlink() {
        for e in fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

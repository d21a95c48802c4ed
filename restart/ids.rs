//! Step 3, ids: the restored process and its threads get the ids they had at checkpoint
//! time wherever that can be done. Where this user may choose ids (root,
//! CAP_CHECKPOINT_RESTORE) the process is forked with its old pid here; otherwise, or
//! while the old ids are taken, it is forked into new namespaces made for it: a user
//! namespace (for an unprivileged user, mapping only the user's own uid and gid, to
//! themselves), a pid namespace in which it may choose every id, and a mount namespace
//! with a /proc of that pid namespace. Either way this process stays behind as the pid
//! the shell knows (`supervise`). Only where neither works does the restart go on with
//! new ids, saying why in one line.
#![deny(unsafe_code)]

use core::fmt::Write;

use mtcp_core::eprint_line;
use mtcp_core::fmt::{ErrnoName, FmtBuf, Lossy};
use mtcp_core::image::{Meta, PROCESS_NAMESPACE_READY};
use mtcp_core::sys::{self, Fd};
use mtcp_core::Errno;

/// How the ids came out; in the restored process (the supervisor never returns).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// The process has its old pid; its threads are to get their old tids.
    Same {
        /// In namespaces made for it (its pid seen from outside differs).
        namespace: bool,
        /// In a user namespace of its own: it holds capabilities there that the runtime
        /// must drop before the program runs.
        user_namespace: bool,
    },
    /// New ids: asked for, or nothing else was possible.
    New,
}

/// Gives the process its old ids, or says why not. `new_ids`: the user asked for new
/// ids (no namespace). Call before the map step, while single-threaded: it forks, and
/// in the parent it never returns (it supervises the restored process).
pub fn restore_ids(meta: &Meta, new_ids: bool, verbose: bool) -> Ids {
    if new_ids {
        return Ids::New;
    }
    let old = meta.process().pid as u32;
    let privileged = sys::effective_capabilities()
        .is_ok_and(|c| c & (1 << sys::CAP_CHECKPOINT_RESTORE | 1 << sys::CAP_SYS_ADMIN) != 0);
    if privileged {
        if ids_free(meta) {
            match sys::fork_with_pid(old) {
                Ok(0) => {
                    stay_with_supervisor(false);
                    if verbose {
                        eprint_line!("mtcp_restart: ids: pid {} and every tid as at checkpoint time", old);
                    }
                    return Ids::Same {
                        namespace: false,
                        user_namespace: false,
                    };
                }
                Ok(child) => crate::supervise::supervise(child),
                // Taken meanwhile, or this pid namespace is not ours to choose ids in.
                Err(_) => {}
            }
        } else if verbose {
            eprint_line!("mtcp_restart: ids: the old ids are taken here; using a pid namespace");
        }
    }
    if meta.process().flags & PROCESS_NAMESPACE_READY == 0 {
        // The runtime in the image predates namespace restarts: it would neither drop the
        // capabilities a user namespace gives nor know the ids it got.
        return fall_back(format_args!("the image's runtime is too old for a namespace restart"));
    }
    if old == 1 {
        return fall_back(format_args!("pid 1 is the new namespace's own init"));
    }
    match into_namespaces(old, !privileged) {
        Ok(()) => {
            if verbose {
                eprint_line!(
                    "mtcp_restart: ids: pid {} and every tid as at checkpoint time, in a new {}pid namespace",
                    old,
                    if privileged { "" } else { "user and " }
                );
            }
            Ids::Same {
                namespace: true,
                user_namespace: !privileged,
            }
        }
        Err(why) => fall_back(format_args!("{}", Lossy(why.as_bytes()))),
    }
}

fn fall_back(why: core::fmt::Arguments) -> Ids {
    eprint_line!(
        "mtcp_restart: cannot give back the original process and thread ids ({}); restoring with new ids",
        why
    );
    Ids::New
}

/// Whether every id of the image is free here, waiting a moment for ids a process that
/// was just killed still holds while it exits.
fn ids_free(meta: &Meta) -> bool {
    let deadline = sys::monotonic_ns() + 1_000_000_000;
    (0..meta.thread_count).all(|i| {
        let tid = meta.thread(i).tid as u32;
        while sys::id_in_use(tid) {
            if sys::monotonic_ns() > deadline {
                return false;
            }
            pause_ms(10);
        }
        true
    })
}

fn pause_ms(ms: u64) {
    let never = core::sync::atomic::AtomicU32::new(0);
    sys::futex_wait_timeout(&never, 0, ms * 1_000_000);
}

/// The restored process dies with its supervisor, as the program would have died with
/// the pid the shell knows: a `kill -9` of it must not leave the program running. In a
/// namespace the namespace's end sees to that (its init dies with the supervisor).
fn stay_with_supervisor(namespace: bool) {
    if namespace {
        return;
    }
    let supervisor = sys::getppid();
    let _ = sys::die_with_parent(sys::SIGKILL);
    if sys::getppid() != supervisor {
        sys::exit_group(1);
    }
}

type Why = FmtBuf<160>;

fn why(what: &str, e: Errno) -> Why {
    let mut w = Why::new();
    let _ = write!(w, "{}: {}", what, ErrnoName(e));
    if let Some(hint) = hint(e) {
        let _ = write!(w, ", {}", hint);
    }
    w
}

fn hint(e: Errno) -> Option<&'static str> {
    match e {
        Errno::ENOSPC => Some("a namespace limit such as user.max_user_namespaces is reached"),
        Errno::EPERM => Some("namespaces are not permitted here (a seccomp filter, a container, or a sysctl)"),
        Errno::EUSERS => Some("user namespaces are nested too deeply"),
        Errno::ENOSYS | Errno::EINVAL => Some("this kernel cannot do it"),
        _ => None,
    }
}

/// Forks into new namespaces with the old pid. The first process of the new pid
/// namespace (its init, a reaper of orphans that dies with this process) mounts a /proc
/// of that namespace; this process joins the namespaces, forks the restored process with
/// the old pid, and stays behind as its supervisor. Returns in the restored process;
/// every failure before the join leaves this process as it was.
fn into_namespaces(old: u32, user_namespace: bool) -> Result<(), Why> {
    let flags = sys::CLONE_NEWPID | sys::CLONE_NEWNS | if user_namespace { sys::CLONE_NEWUSER } else { 0 };
    let (go_read, go_write) = sys::pipe().map_err(|e| why("pipe", e))?;
    let (ready_read, ready_write) = sys::pipe().map_err(|e| why("pipe", e))?;
    let init = match sys::fork_into_namespaces(flags) {
        Ok(0) => {
            drop(go_write);
            drop(ready_read);
            namespace_init(go_read, ready_write)
        }
        Ok(pid) => pid,
        Err(e) => return Err(why("cannot create namespaces", e)),
    };
    drop(go_read);
    drop(ready_write);
    let abandon = |w: Why| {
        let _ = sys::kill(init, sys::SIGKILL as u32);
        let _ = sys::wait_status(init);
        Err(w)
    };
    if user_namespace {
        if let Err(e) = map_own_ids(init) {
            return abandon(why("cannot map this user's ids into the user namespace", e));
        }
    }
    if let Err(e) = sys::write_all(go_write.raw(), b"g") {
        return abandon(why("the namespace's init is gone", e));
    }
    let mut answer = [0u8; 1 + 4];
    match sys::read_into(ready_read.raw(), &mut answer) {
        Ok(n) if n >= 1 && answer[0] == b'r' => {}
        Ok(5) if answer[0] == b'e' => {
            let errno = Errno::new(i32::from_le_bytes([answer[1], answer[2], answer[3], answer[4]]));
            return abandon(why("cannot mount /proc in the new namespaces", errno));
        }
        _ => return abandon(why("the namespace's init is gone", Errno::ESRCH)),
    }
    // /proc and the cwd change with the mount namespace: the same tree, but look again.
    let mut cwd = [0u8; 4096];
    let cwd_len = sys::getcwd(&mut cwd).map(|c| c.len()).unwrap_or(0);
    let pidfd = match sys::pidfd_open(init) {
        Ok(fd) => fd,
        Err(e) => return abandon(why("pidfd_open", e)),
    };
    if let Err(e) = sys::setns(&pidfd, flags) {
        return abandon(why("cannot join the new namespaces", e));
    }
    drop(pidfd);
    if cwd_len > 0 {
        if let Ok(c) = sys::CPath::new(&cwd[..cwd_len]) {
            let _ = sys::chdir(&c);
        }
    }
    // No way back from here: this process is in the new namespaces.
    match sys::fork_with_pid(old) {
        Ok(0) => Ok(()),
        Ok(child) => crate::supervise::supervise(child),
        Err(e) => die!("cannot create pid {} in the new pid namespace: {}", old, ErrnoName(e)),
    }
}

/// One line each for /proc/PID/{setgroups,uid_map,gid_map}: the user's own ids, mapped
/// to themselves, so that the program sees the uid and gid it had. (An unprivileged user
/// may map only their own effective ids, and only with setgroups denied.)
fn map_own_ids(pid: u32) -> Result<(), Errno> {
    let write = |file: &str, text: &[u8]| -> Result<(), Errno> {
        let mut path = FmtBuf::<64>::new();
        let _ = write!(path, "/proc/{}/{}", pid, file);
        let fd = sys::open(path.as_bytes(), sys::O_WRONLY | sys::O_CLOEXEC, 0)?;
        sys::write_all(fd.raw(), text)
    };
    let mut line = FmtBuf::<32>::new();
    write("setgroups", b"deny")?;
    let uid = sys::geteuid();
    let _ = writeln!(line, "{} {} 1", uid, uid);
    write("uid_map", line.as_bytes())?;
    line = FmtBuf::new();
    let gid = sys::getegid();
    let _ = writeln!(line, "{} {} 1", gid, gid);
    write("gid_map", line.as_bytes())
}

/// The new pid namespace's init: waits for the go-ahead (the id maps are written), cuts
/// the new mount namespace's propagation to the host, mounts the namespace's /proc, says so, then reaps orphans until its parent, the supervisor,
/// ends, which ends it and with it every process left in the namespace.
fn namespace_init(go: Fd, ready: Fd) -> ! {
    let _ = sys::die_with_parent(sys::SIGKILL);
    // Nothing of the restart's is ours to hold: its descriptors would keep pipes open.
    let last = go.raw().max(ready.raw());
    for fd in (0..last).filter(|&fd| fd != go.raw() && fd != ready.raw()) {
        drop(Fd::adopt(fd));
    }
    let _ = sys::close_from(last as u32 + 1);
    let mut byte = [0u8; 1];
    if !matches!(sys::read_into(go.raw(), &mut byte), Ok(1)) {
        sys::exit_group(1);
    }
    match sys::make_mounts_slave().and_then(|()| sys::mount_proc()) {
        Ok(()) => {
            let _ = sys::write_all(ready.raw(), b"r");
        }
        Err(e) => {
            let mut msg = [b'e', 0, 0, 0, 0];
            msg[1..].copy_from_slice(&e.into_raw().to_le_bytes());
            let _ = sys::write_all(ready.raw(), &msg);
            sys::exit_group(1);
        }
    }
    drop(go);
    drop(ready);
    // It needed them for the mount only.
    let _ = sys::drop_capabilities();
    // Signals from inside the namespace cannot reach its init; SIGCHLD stays blocked so
    // that it queues and wakes the wait below.
    let _ = sys::rt_sigprocmask(sys::SIG_SETMASK, Some(!0u64));
    let mut info: sys::SigInfo = [0; 128];
    loop {
        while let Ok(Some(_)) = sys::wait_child(-1, sys::WNOHANG | sys::WALL) {}
        let _ = sys::wait_signal(1 << (17 - 1), &mut info);
    }
}

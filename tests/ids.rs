//! Process and thread ids across restarts, for a user without privileges (`nobody`, no
//! capabilities): `mtcp restart` gives the program its old pid and tids in a user and
//! pid namespace made for it, stays behind as the pid the shell knows (signals go
//! through it, its exit status is the program's), and the program goes on as if nothing
//! happened to its ids: glibc's loader lock held by a thread inside dlopen, held
//! recursive and error-checking mutexes and a write-locked rwlock, a CPU-clock id, cached
//! getpid()/gettid(), C++ exceptions in flight. Three checkpoint/restart cycles in a row,
//! each checkpoint taken by the pid the shell sees. Where no namespace can be made, the
//! restart says why and goes on with new ids, with the held locks handed to the new
//! thread ids.

pub mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The pids on the `NSpid:` line of /proc/PID/status, outermost first.
fn nspids(pid: i32) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// The values of `key N` lines.
fn values(p: &Proc, key: &str) -> Vec<u64> {
    p.lines()
        .iter()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .collect()
}

/// Checkpoints `p` (by its pid: the shell's) as nobody, kills it, restarts the image as
/// nobody and checks that the program picks up where the checkpoint was taken, with its
/// old pid (inside a pid namespace: seen from outside, it is another), saying nothing.
fn cycle_as_nobody(u: &Unprivileged, mut p: Proc, pid: u32, round: u32) -> Proc {
    let before = p.last_count().expect("a count before the checkpoint");
    let image = u.checkpoint(p.pid());
    let after = p.last_count().unwrap();
    p.wait_for_count(after + 2, LINE_TIMEOUT);
    p.kill9();
    p.assert_no_bad();
    let at_kill = p.last_count().unwrap();
    let mut r = u.restart(&[], &image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(
        first > before && first <= at_kill + 1,
        "round {round}: restarted at count {first}; checkpoint between {before} and {after}, killed at {at_kill}\n{}",
        r.describe()
    );
    r.wait_for_count(first + 10, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    let program = r.program_pid();
    let ids = nspids(program);
    assert!(
        ids.len() == 2 && ids[1] == pid && program != r.pid(),
        "round {round}: the program (pid {program}, NSpid {ids:?}) should be pid {pid} inside a pid namespace, \
         a child of `mtcp restart` (pid {})\n{}",
        r.pid(),
        r.describe()
    );
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(
        noise.is_empty(),
        "round {round}: the restart said {noise:?}\n{}",
        r.describe()
    );
    r
}

/// idstate (dlopen loop, held locks, CPU clock, cached ids) through three cycles as
/// nobody; then the holder thread unlocks everything and main takes each lock itself.
fn ids_and_locks(bits: Bits, variant: Variant) {
    let t = Test::new(&bits.name(&format!("ids_locks_{variant:?}")));
    let plugin = t.compile_as("plugin", "plugin.so", Variant::Shared, bits, &[]);
    let prog = t.compile("idstate", variant, bits, &["-pthread"]);
    let release = t.path("release");
    let u = Unprivileged::new(&t);
    let mut p = u.launch(&prog, &[plugin.to_str().unwrap(), release.to_str().unwrap()]);
    p.wait_for_count(5, LINE_TIMEOUT);
    let pid = p.pid() as u32;
    assert_eq!(values(&p, "start"), vec![pid as u64], "{}", p.describe());
    for round in 1..=3 {
        let loads = values(&p, "loads").last().copied().unwrap_or(0);
        p = cycle_as_nobody(&u, p, pid, round);
        // The loader thread goes on loading libraries.
        let n = p.last_count().unwrap();
        p.wait_for_count(n + 21, LINE_TIMEOUT);
        let now = values(&p, "loads").last().copied().unwrap_or(0);
        assert!(
            now > loads,
            "round {round}: dlopen made no progress ({loads} then {now})\n{}",
            p.describe()
        );
    }
    fs::write(&release, "").unwrap();
    p.wait_for_line("`released`", LINE_TIMEOUT, |l| l == "released");
    let n = p.last_count().unwrap();
    p.wait_for_count(n + 5, LINE_TIMEOUT);
    p.assert_no_bad();
    p.kill9();
}

per_width!(
    /// A dynamic idstate, as nobody.
    ids_and_locks_dynamic, ids_and_locks_dynamic_32 => ids_and_locks(Variant::Dynamic)
);
per_width!(
    /// A static idstate (libmtcp.a), as nobody.
    ids_and_locks_static, ids_and_locks_static_32 => ids_and_locks(Variant::Static)
);

/// Six threads throwing and catching C++ exceptions all the time, through three cycles
/// as nobody: each thread goes on catching.
fn exceptions(bits: Bits, variant: Variant) {
    let t = Test::new(&bits.name(&format!("ids_exceptions_{variant:?}")));
    let prog = t.compile("throwing", variant, bits, &["-pthread"]);
    let u = Unprivileged::new(&t);
    let mut p = u.launch(&prog, &[]);
    p.wait_for_count(12, LINE_TIMEOUT);
    let pid = p.pid() as u32;
    for round in 1..=3 {
        p = cycle_as_nobody(&u, p, pid, round);
        let caught = values(&p, "catches").last().copied().unwrap_or(0);
        let n = p.last_count().unwrap();
        p.wait_for_count(n + 21, LINE_TIMEOUT);
        let now = values(&p, "catches").last().copied().unwrap_or(0);
        assert!(
            now > caught,
            "round {round}: no more exceptions caught\n{}",
            p.describe()
        );
    }
    p.assert_no_bad();
    p.kill9();
}

per_width!(
    /// A dynamic C++ program, as nobody.
    exceptions_dynamic, exceptions_dynamic_32 => exceptions(Variant::Dynamic)
);
per_width!(
    /// A static C++ program (libmtcp.a), as nobody.
    exceptions_static, exceptions_static_32 => exceptions(Variant::Static)
);

/// The restarted program's supervisor passes on the signals sent to it (once each, as
/// the program counts them) and ends as the program ends: with its exit code, or killed
/// by the same signal; `mtcp checkpoint` of the supervisor's pid checkpoints the program.
fn supervisor(bits: Bits) {
    let t = Test::new(&bits.name("ids_supervisor"));
    let plugin = t.compile_as("plugin", "plugin.so", Variant::Shared, bits, &[]);
    let prog = t.compile("idstate", Variant::Dynamic, bits, &["-pthread"]);
    let release = t.path("release");
    let u = Unprivileged::new(&t);
    let args = [plugin.to_str().unwrap(), release.to_str().unwrap(), "60"];
    let mut p = u.launch(&prog, &args);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = u.checkpoint(p.pid());
    p.kill9();

    // Exit code: the program ends by itself (count 60, then exit 23).
    let mut r = u.restart(&[], &image);
    r.wait_first_count(LINE_TIMEOUT);
    for n in 1..=3 {
        assert!(send_signal(r.pid(), SIGUSR1));
        r.wait_for_line("`usr1 N`", LINE_TIMEOUT, |l| l == format!("usr1 {n}"));
    }
    let n = r.last_count().unwrap();
    r.wait_for_count(n + 3, LINE_TIMEOUT);
    assert_eq!(values(&r, "usr1"), vec![1, 2, 3], "each SIGUSR1 once\n{}", r.describe());
    let st = r.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(23), "the program's exit code\n{}", r.describe());
    r.assert_no_bad();

    // Killed by a signal: the supervisor dies of it too.
    let mut r = u.restart(&[], &image);
    r.wait_first_count(LINE_TIMEOUT);
    assert!(send_signal(r.pid(), 15));
    let st = r.wait_exit(Duration::from_secs(20));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(15), "killed by SIGTERM\n{}", r.describe());

    // SIGKILL of the supervisor ends the program too.
    let mut r = u.restart(&[], &image);
    r.wait_first_count(LINE_TIMEOUT);
    let program = r.program_pid();
    assert!(send_signal(r.pid(), SIGKILL));
    let _ = r.wait_exit(Duration::from_secs(20));
    let gone = poll(Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{program}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "the program {program} outlived its supervisor");
}

per_width!(
    /// Signals, exit codes and the end of the supervisor, as nobody.
    supervisor_passes_signals_and_ends_as_the_program, supervisor_passes_signals_and_ends_as_the_program_32 => supervisor()
);

/// Where no namespace can be made (a user namespace whose user.max_user_namespaces is
/// 0), the restart says why in one line and goes on with new ids: the locks held at
/// checkpoint time are handed to the new thread ids (their unlocks succeed), the loader
/// goes on, and the runtime says what stays stale.
fn fallback(bits: Bits) {
    let t = Test::new(&bits.name("ids_fallback"));
    let plugin = t.compile_as("plugin", "plugin.so", Variant::Shared, bits, &[]);
    let prog = t.compile("idstate", Variant::Dynamic, bits, &["-pthread"]);
    let jail = t.compile_as("no_userns", "no_userns", Variant::Dynamic, Bits::B64, &[]);
    let release = t.path("release");
    let u = Unprivileged::new(&t);
    let args = [plugin.to_str().unwrap(), release.to_str().unwrap(), "100000", "new-ids"];
    let mut p = u.launch(&prog, &args);
    p.wait_for_count(5, LINE_TIMEOUT);
    let image = u.checkpoint(p.pid());
    p.kill9();
    let mut cmd = Command::new(&jail);
    cmd.arg(&u.mtcp).arg("restart").arg(&image).current_dir(&t.dir);
    let mut r = Proc::spawn(cmd, "restart where no namespace can be made");
    let first = r.wait_first_count(LINE_TIMEOUT);
    let said = r.stderr_lines();
    assert!(
        said.iter()
            .any(|l| l.contains("cannot give back the original process and thread ids")
                && l.contains("max_user_namespaces")),
        "no line saying why the ids are new\n{}",
        r.describe()
    );
    assert!(
        said.iter()
            .any(|l| l.contains("new ids:") && l.contains("handed to the new thread ids") && l.contains("stale")),
        "no line saying what was repaired and what stays stale\n{}",
        r.describe()
    );
    assert_eq!(
        r.program_pid(),
        r.pid(),
        "with new ids the program runs in place of mtcp restart"
    );
    r.wait_for_count(first + 10, LINE_TIMEOUT);
    // A checkpoint of the program restored with new ids works too.
    let again = checkpoint(r.pid());
    assert!(again.is_file());
    fs::write(&release, "").unwrap();
    r.wait_for_line("`released`", LINE_TIMEOUT, |l| l == "released");
    let n = r.last_count().unwrap();
    let loads = values(&r, "loads").last().copied().unwrap_or(0);
    r.wait_for_count(n + 21, LINE_TIMEOUT);
    assert!(
        values(&r, "loads").last().copied().unwrap_or(0) > loads,
        "the loader stopped\n{}",
        r.describe()
    );
    r.assert_no_bad();
    r.kill9();
}

per_width!(
    /// New ids where no namespace can be made, as nobody.
    fallback_to_new_ids_where_no_namespace_can_be_made, fallback_to_new_ids_where_no_namespace_can_be_made_32 => fallback()
);

/// `mtcp debug PID` (PID as the shell knows it) runs gdb inside the program's namespaces,
/// as nobody: gdb reads the program's symbols and libc's, lists its four threads, and
/// the program goes on once gdb detaches. strace follows it from outside.
#[test]
fn debuggers_reach_a_program_in_its_namespaces() {
    let t = Test::new("ids_debug");
    let bits = Bits::B64;
    let plugin = t.compile_as("plugin", "plugin.so", Variant::Shared, bits, &[]);
    let prog = t.compile("idstate", Variant::Dynamic, bits, &["-pthread"]);
    let release = t.path("release");
    let u = Unprivileged::new(&t);
    let mut p = u.launch(&prog, &[plugin.to_str().unwrap(), release.to_str().unwrap()]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = u.checkpoint(p.pid());
    p.kill9();
    let mut r = u.restart(&[], &image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    let pid = r.pid().to_string();
    let gdb = u.mtcp(&[
        "debug",
        &pid,
        "-nx",
        "-batch",
        "-ex",
        "info threads",
        "-ex",
        "thread apply all bt",
    ]);
    let out = run_output(gdb, Duration::from_secs(90));
    let text = String::from_utf8_lossy(&out.stdout);
    let threads = text
        .lines()
        .filter(|l| {
            let row = l.trim_start().trim_start_matches('*').trim_start();
            row.starts_with(|c: char| c.is_ascii_digit()) && row.contains("Thread 0x")
        })
        .count();
    assert!(
        out.status.success()
            && threads == 4
            && text.contains(" in holder ")
            && text.contains(" in main ")
            && text.contains("nanosleep"),
        "mtcp debug {pid}: expected 4 threads with the program's and libc's symbols\n{}",
        describe_output(&out)
    );
    let mut strace = Command::new("strace");
    strace.args([
        "-f",
        "-e",
        "trace=nanosleep,clock_nanosleep",
        "-p",
        &r.program_pid().to_string(),
    ]);
    let mut tracer = Proc::spawn(strace, "strace -p");
    let traced = poll(LINE_TIMEOUT, || {
        tracer
            .stderr_lines()
            .iter()
            .any(|l| l.contains("nanosleep("))
            .then_some(())
    });
    assert!(traced.is_some(), "strace -p saw no nanosleep\n{}", tracer.describe());
    tracer.kill9();
    r.wait_for_count(first + 20, LINE_TIMEOUT);
    r.assert_no_bad();
    r.assert_consecutive();
    r.kill9();
}

//! POSIX timers (timer_create) survive a restart, and a restart of a restarted process:
//! the same ids, clocks (a thread's CPU clock follows the thread), notifications (a
//! SIGEV_THREAD_ID timer still reaches its thread), time left and intervals.

pub mod common;

use common::*;
use std::time::Duration;

/// One `timers` line of the program.
#[derive(Clone, Copy, Debug)]
struct Timers {
    periodic: u64,
    thread: u64,
    oneshot_ms: i64,
    disarmed: bool,
    cpu_interval_s: u64,
    cpu_clock_ok: bool,
}

fn parse_timers(line: &str) -> Option<Timers> {
    let v: Vec<i64> = line
        .strip_prefix("timers ")?
        .split(' ')
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [p, t, o, d, c, k] => Some(Timers {
            periodic: p as u64,
            thread: t as u64,
            oneshot_ms: o,
            disarmed: d == 1,
            cpu_interval_s: c as u64,
            cpu_clock_ok: k == 1,
        }),
        _ => None,
    }
}

fn timers_lines(p: &Proc) -> Vec<Timers> {
    p.lines().iter().filter_map(|l| parse_timers(l)).collect()
}

fn last_timers(p: &Proc) -> Timers {
    *timers_lines(p)
        .last()
        .unwrap_or_else(|| panic!("no `timers` line\n{}", p.describe()))
}

/// The numbers after `key ` on the program's first such line.
fn numbers(p: &mut Proc, key: &str) -> Vec<i64> {
    let line = p.wait_for_line(&format!("`{key} ...`"), LINE_TIMEOUT, |l| l.starts_with(key));
    line.split(' ').skip(1).map(|f| f.parse().unwrap()).collect()
}

/// The timer ids the kernel lists for `pid`, sorted.
fn kernel_ids(pid: i32) -> Vec<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/timers")).unwrap_or_default();
    let mut ids: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ID: ")?.parse().ok())
        .collect();
    ids.sort();
    ids
}

/// The image's timer table matches what the program made.
fn check_image(image: &std::path::Path, ids: &[i64], worker_tid: i64) {
    let json = inspect_json(image);
    let timers = json["timers"].as_array().expect("a timers table");
    let got: Vec<i64> = timers.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(got, want, "the image's timer ids: {json}");
    let by_id = |id: i64| timers.iter().find(|t| t["id"].as_i64() == Some(id)).unwrap();
    let (periodic, thread, oneshot, disarmed, cpu) = (
        by_id(ids[0]),
        by_id(ids[1]),
        by_id(ids[2]),
        by_id(ids[3]),
        by_id(ids[4]),
    );
    assert_eq!(periodic["notify"], "signal");
    assert_eq!(periodic["value"], 0x1111);
    assert_eq!(periodic["interval_ns"], 20_000_000);
    assert_eq!(thread["notify"], "thread-id");
    assert_eq!(thread["target"], worker_tid, "the thread timer's target: {thread}");
    assert_eq!(oneshot["clock_name"], "realtime");
    assert_eq!(oneshot["interval_ns"], 0);
    let left = oneshot["value_ns"].as_u64().unwrap();
    assert!(
        left > 900_000_000_000 && left <= 1_000_000_000_000,
        "one-shot left: {oneshot}"
    );
    assert_eq!(disarmed["notify"], "none");
    assert_eq!(disarmed["value_ns"], 0, "the disarmed timer: {disarmed}");
    assert_eq!(
        cpu["clock_name"],
        format!("thread-cpu({worker_tid})/sched"),
        "the CPU-clock timer: {cpu}"
    );
}

/// The restarted process's timers go on as they were at checkpoint time (`before` is
/// the program's last line before the checkpoint).
fn check_restarted(r: &mut Proc, before: Timers, ids: &[i64]) {
    let first = *timers_lines(r).first().expect("a `timers` line after the restart");
    let n = r.last_count().unwrap();
    r.wait_for_count(n + 10, LINE_TIMEOUT);
    let last = last_timers(r);
    assert!(
        last.periodic > first.periodic && last.thread > first.thread,
        "the periodic and thread timers stopped firing after the restart ({first:?} then {last:?})\n{}",
        r.describe()
    );
    assert!(
        first.oneshot_ms <= before.oneshot_ms + 50 && first.oneshot_ms >= before.oneshot_ms - 30_000,
        "the one-shot timer's time left went from {} ms to {} ms",
        before.oneshot_ms,
        first.oneshot_ms
    );
    for t in timers_lines(r) {
        assert!(t.disarmed, "the disarmed timer was armed\n{}", r.describe());
        assert_eq!(
            t.cpu_interval_s,
            500,
            "the CPU-clock timer's interval\n{}",
            r.describe()
        );
        assert!(
            t.cpu_clock_ok,
            "the CPU-clock timer is not on the worker's new CPU clock\n{}",
            r.describe()
        );
    }
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(kernel_ids(r.program_pid()), want, "the restarted process's timer ids");
    r.assert_no_bad();
}

fn timers_survive(bits: Bits) {
    let t = Test::new(&bits.name("posix_timers"));
    let prog = t.compile("posix_timers", Variant::Dynamic, bits, &["-pthread"]);
    let mut p = t.launch(&prog, &["100000"]);
    let ids = numbers(&mut p, "ids");
    let worker = numbers(&mut p, "tid")[0];
    p.wait_for_count(5, LINE_TIMEOUT);
    let before = last_timers(&p);
    let c = cycle(&t, p);
    check_image(&c.image, &ids, worker);
    let mut r = c.restarted;
    check_restarted(&mut r, before, &ids);

    // Again, from the restarted process: its worker has another tid now.
    let before = last_timers(&r);
    let image = c.image.clone();
    let modified = std::fs::metadata(&image).unwrap().modified().unwrap();
    let c2 = cycle(&t, r);
    assert_eq!(c2.image, image);
    assert!(std::fs::metadata(&image).unwrap().modified().unwrap() > modified);
    let json = inspect_json(&c2.image);
    let new_worker = json["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"].as_i64() == Some(ids[1]))
        .unwrap()["target"]
        .as_i64()
        .unwrap();
    check_image(&c2.image, &ids, new_worker);
    let mut r2 = c2.restarted;
    check_restarted(&mut r2, before, &ids);
}

per_width!(posix_timers_survive_restarts, posix_timers_survive_restarts_32 => timers_survive());

/// A CLOCK_THREAD_CPUTIME_ID timer of a multi-threaded process: the kernel does not say
/// which thread's CPU time it measures, so the restart refuses it with one line before it
/// changes anything.
#[test]
fn unnamed_thread_clock_is_refused() {
    let t = Test::new("posix_timers_refused");
    let prog = t.compile_c("posix_timers", Variant::Dynamic, &["-pthread"]);
    let mut p = t.launch(&prog, &["100000", "--own-thread-clock"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    let out = run_restart_program(Bits::B64.mtcp_restart(), &image, &t.dir);
    if let Some(problem) = one_line_failure("restart", &out, true, &["clock_thread_cputime_id"]) {
        panic!("{problem}");
    }
}

/// With periodic checkpoints (`--interval`), the runtime uses no POSIX timer of its own
/// (a thread of its own, `mtcp-interval`, asks for them): the program's timers are the
/// only ones, before and after a restart, they come back with their ids, and the
/// restarted process goes on checkpointing.
#[test]
fn runtime_interval_timer_stays_apart() {
    let t = Test::new("posix_timers_interval");
    let prog = t.compile_c("posix_timers", Variant::Dynamic, &["-pthread"]);
    let mut p = t.launch_with(&["--interval", "1"], &prog, &["100000"]);
    let ids = numbers(&mut p, "ids");
    let worker = numbers(&mut p, "tid")[0];
    let pid = p.pid();
    assert_eq!(kernel_ids(pid).len(), ids.len(), "the runtime made a timer of its own");
    // The interval thread names itself once it runs, which a busy machine may delay.
    let named = poll(Duration::from_secs(5), || {
        thread_names(pid).iter().any(|n| n == "mtcp-interval").then_some(())
    });
    assert!(named.is_some(), "no mtcp-interval thread: {:?}", thread_names(pid));
    let image = poll(Duration::from_secs(6), || image_for(&t.dir, pid))
        .unwrap_or_else(|| panic!("no image within 6 s with --interval 1\n{}", p.describe()));
    // Let the write end (the image appears by rename, whole).
    p.wait_for_count(p.last_count().unwrap() + 2, LINE_TIMEOUT);
    let before = last_timers(&p);
    p.kill9();
    p.assert_no_bad();
    check_image(&image, &ids, worker);
    let written = std::fs::metadata(&image).unwrap().modified().unwrap();
    let mut r = t.restart(&image);
    r.wait_first_count(LINE_TIMEOUT);
    let restarted_ids = kernel_ids(r.program_pid());
    assert_eq!(restarted_ids.len(), ids.len(), "{restarted_ids:?}");
    assert!(
        thread_names(r.program_pid()).iter().any(|n| n == "mtcp-interval"),
        "the interval thread did not come back: {:?}",
        thread_names(r.program_pid())
    );
    assert!(
        ids.iter().all(|id| restarted_ids.contains(id)),
        "the program's timer ids {ids:?} are not all back: {restarted_ids:?}"
    );
    poll(Duration::from_secs(6), || {
        (std::fs::metadata(&image).unwrap().modified().unwrap() > written).then_some(())
    })
    .unwrap_or_else(|| panic!("the restarted process stopped checkpointing\n{}", r.describe()));
    let first = *timers_lines(&r).first().unwrap();
    // The image is from some time before the kill: the one-shot had more time left then.
    assert!(
        first.oneshot_ms > before.oneshot_ms - 30_000 && first.oneshot_ms <= 1_000_000,
        "{first:?} after {before:?}"
    );
    let n = r.last_count().unwrap();
    r.wait_for_count(n + 5, LINE_TIMEOUT);
    let last = last_timers(&r);
    assert!(
        last.periodic > first.periodic && last.thread > first.thread,
        "the timers stopped firing ({first:?} then {last:?})\n{}",
        r.describe()
    );
    r.assert_no_bad();
}

/// The names (comm) of a process's threads.
fn thread_names(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

//! Progress of long work: what `mtcp checkpoint`, `mtcp restart` and `mtcp run` show on a terminal (one line redrawn in place, then cleared), that a pipe gets nothing unless `--progress` asks (then plain lines), `--quiet`, and `--json`'s objects with the fields the help documents.

pub mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// MiB of memory of the big program: above the 64 MiB from which a meter shows at once,
/// so that the test does not depend on how fast the machine writes.
const BIG_MIB: &str = "256";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn mtcp_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().mtcp);
    cmd.args(args);
    cmd
}

/// A running bigcounter of BIG_MIB MiB.
fn big(t: &Test, bits: Bits) -> Proc {
    let prog = t.compile("bigcounter", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &[BIG_MIB]);
    p.wait_for_count(2, Duration::from_secs(60));
    p
}

/// Every line of `text` as a JSON object; panics naming the line that is not one.
fn json_lines(text: &str, context: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{context}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

/// Checks progress objects of `operation`: the documented fields, done never past total
/// nor going back, total the same throughout, the last one done; returns the total.
fn check_progress_objects(objects: &[&Value], operation: &str, context: &str) -> u64 {
    assert!(!objects.is_empty(), "no progress objects\n{context}");
    let total = objects[0]["total"].as_u64().unwrap();
    let mut done = 0;
    for o in objects {
        assert_eq!(o["type"], "progress", "{context}");
        assert_eq!(o["operation"], operation, "{context}");
        let d = o["done"].as_u64().unwrap_or_else(|| panic!("no done in {o}"));
        assert!(d >= done && d <= total, "{o}\n{context}");
        assert_eq!(o["total"].as_u64(), Some(total), "{context}");
        assert!(
            o["seconds"].as_f64().is_some() && o["bytes_per_second"].as_u64().is_some(),
            "{o}"
        );
        done = d;
    }
    assert_eq!(done, total, "the last progress object is not the end\n{context}");
    total
}

/// A progress line for people: `mtcp: OP X UNIT of Y UNIT (N%), R UNIT/s`.
fn is_progress_line(l: &str, operation: &str) -> bool {
    let Some(rest) = l.strip_prefix(&format!("mtcp: {operation} ")) else {
        return false;
    };
    let w: Vec<&str> = rest.split(' ').collect();
    w.len() == 8
        && w[2] == "of"
        && w[5].starts_with('(')
        && w[5].ends_with("%),")
        && w[7].ends_with("/s")
        && [w[0], w[3], w[6]].iter().all(|n| n.parse::<f64>().is_ok())
}

/// What a terminal shows of `text` once every `\r` has sent the cursor back: the final
/// text of each line, without the erase-to-end-of-line codes.
fn as_seen(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let last = line.rsplit('\r').next().unwrap_or("");
            last.replace("\x1b[K", "")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn output_text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn checkpoint_progress_on_a_terminal_but_not_on_a_pipe() {
    let t = Test::new("progress_checkpoint");
    let mut p = big(&t, Bits::B64);
    let pid = p.pid().to_string();

    // A pipe: the path and nothing else.
    let out = run_output(mtcp_command(&["checkpoint", &pid]), RUN_TIMEOUT);
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(stderr, "", "progress on a pipe that did not ask for it");
    let image = PathBuf::from(stdout.trim_end());
    assert!(image.is_file() && stdout.lines().count() == 1, "{stdout:?}");

    // --progress on a pipe: whole lines, no terminal codes, the last at 100%.
    let out = run_output(mtcp_command(&["checkpoint", "--progress", &pid]), RUN_TIMEOUT);
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(stdout.trim_end(), image.to_str().unwrap());
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "{stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no progress with --progress");
    assert!(lines.iter().all(|l| is_progress_line(l, "checkpoint")), "{stderr}");
    assert!(lines.last().unwrap().contains("(100%)"), "{stderr}");

    // A terminal: one line redrawn in place and cleared before the path is printed.
    let pty = Pty::open(24, 80);
    let mut c = pty.spawn_all(mtcp_command(&["checkpoint", &pid]), "checkpoint on a terminal");
    c.wait_for_line("the image path", RUN_TIMEOUT, |l| l.contains(".mtcp"));
    let st = c.wait_exit(RUN_TIMEOUT);
    assert!(st.success(), "{}", c.describe());
    let text = c.lines().join("\n");
    assert!(
        text.contains("\rmtcp: checkpoint ") && text.contains("\x1b[K"),
        "no progress line: {text:?}"
    );
    let seen = as_seen(&text);
    assert_eq!(seen, [image.to_str().unwrap()], "the line was not cleared: {text:?}");
    let frames: Vec<&str> = text.split('\r').filter(|f| f.starts_with("mtcp:")).collect();
    assert!(
        frames
            .iter()
            .all(|f| is_progress_line(f.trim_end_matches("\x1b[K"), "checkpoint")),
        "{frames:?}"
    );

    // --quiet on a terminal (a new one: the first one's reader is still on the other): the
    // path alone.
    let pty = Pty::open(24, 80);
    let mut c = pty.spawn_all(mtcp_command(&["checkpoint", "--quiet", &pid]), "quiet checkpoint");
    c.wait_for_line("the image path", RUN_TIMEOUT, |l| l.contains(".mtcp"));
    c.wait_exit(RUN_TIMEOUT);
    assert_eq!(c.lines(), [format!("{}\r", image.display())], "{}", c.describe());
    p.assert_no_bad();
    p.kill9();
}

#[test]
fn checkpoint_json_is_one_object_with_the_documented_fields() {
    let t = Test::new("progress_checkpoint_json");
    let mut p = big(&t, Bits::B64);
    let pid = p.pid().to_string();
    let out = run_output(mtcp_command(&["checkpoint", "--json", &pid]), RUN_TIMEOUT);
    let (stdout, stderr) = output_text(&out);
    let context = describe_output(&out);
    assert!(out.status.success(), "{context}");
    let result = json_lines(&stdout, &context);
    assert_eq!(result.len(), 1, "{context}");
    let r = &result[0];
    assert_eq!(
        (&r["type"], &r["ok"]),
        (&Value::from("checkpoint"), &Value::from(true)),
        "{r}"
    );
    assert_eq!(r["pid"].as_i64(), Some(p.pid() as i64));
    let image = PathBuf::from(r["image"].as_str().unwrap());
    let size = std::fs::metadata(&image).unwrap().len();
    assert_eq!(r["bytes"].as_u64(), Some(size), "bytes is not the image's size: {r}");
    assert!(r["seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["bytes_per_second"].as_u64().unwrap() > 0, "{r}");
    // Progress as JSON objects on stderr, ending at the image's size.
    let objects = json_lines(&stderr, &context);
    let total = check_progress_objects(&objects.iter().collect::<Vec<_>>(), "checkpoint", &context);
    assert_eq!(total, size);

    // --quiet --json: the object, and nothing on stderr.
    let out = run_output(mtcp_command(&["checkpoint", "--json", "--quiet", &pid]), RUN_TIMEOUT);
    let (stdout, stderr) = output_text(&out);
    assert!(out.status.success() && stderr.is_empty(), "{}", describe_output(&out));
    assert_eq!(json_lines(&stdout, "")[0]["ok"], true);

    // A failure is an object too, beside the one-line error.
    let mut sleeper = Command::new("sleep");
    sleeper.arg("60");
    let mut s = Proc::spawn(sleeper, "sleep");
    let out = run_output(
        mtcp_command(&["checkpoint", "--json", &s.pid().to_string()]),
        RUN_TIMEOUT,
    );
    if let Some(problem) = one_line_failure(
        "checkpoint --json of a process without the runtime",
        &out,
        true,
        &["runtime"],
    ) {
        panic!("{problem}");
    }
    let (stdout, stderr) = output_text(&out);
    let r = &json_lines(&stdout, &stderr)[0];
    assert_eq!(
        (&r["type"], &r["ok"]),
        (&Value::from("checkpoint"), &Value::from(false)),
        "{r}"
    );
    assert_eq!(r["pid"].as_i64(), Some(s.pid() as i64));
    assert!(stderr.contains(r["error"].as_str().unwrap()), "{r} {stderr}");
    s.kill9();
    p.kill9();
}

/// On a terminal the restore's line shows and is gone before the program's first line;
/// on a pipe there is none; with --json, progress objects and then the `restart` object.
fn restart_progress(bits: Bits) {
    let t = Test::new(&bits.name("progress_restart"));
    let mut p = big(&t, bits);
    let image = checkpoint(p.pid());
    p.kill9();
    let restart = |opts: &[&str]| {
        let mut cmd = Command::new(&bins().mtcp);
        cmd.arg("restart").args(opts).arg(&image).current_dir(&t.dir);
        cmd
    };

    let pty = Pty::open(24, 80);
    let mut r = pty.spawn_all(restart(&[]), "restart on a terminal");
    r.wait_for_line("a count", RUN_TIMEOUT, |l| l.contains("count "));
    let text = r.lines().join("\n");
    let before_count = &text[..text.find("count ").unwrap()];
    assert!(before_count.contains("\rmtcp: restart "), "no progress line: {text:?}");
    assert!(
        before_count.ends_with("\r\x1b[K") || as_seen(before_count).iter().all(|l| !l.contains("mtcp: restart")),
        "the line was not cleared before the program went on: {before_count:?}"
    );
    r.assert_no_bad();
    r.kill9();

    let mut r = t.restart(&image);
    r.wait_first_count(RUN_TIMEOUT);
    assert!(
        !r.stderr_lines().iter().any(|l| l.contains("mtcp: restart")),
        "progress on a pipe: {}",
        r.describe()
    );
    r.kill9();

    let mut r = Proc::spawn(restart(&["--json"]), "restart --json");
    let first = r.wait_first_count(RUN_TIMEOUT);
    r.wait_for_count(first + 2, LINE_TIMEOUT);
    let stderr = r.stderr_lines();
    let context = r.describe();
    let objects = json_lines(
        &stderr
            .iter()
            .filter(|l| l.starts_with('{'))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        &context,
    );
    let (progress, results): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| o["type"] == "progress");
    let total = check_progress_objects(&progress, "restart", &context);
    assert_eq!(results.len(), 1, "{context}");
    let done = results[0];
    assert_eq!(
        (&done["type"], &done["ok"]),
        (&Value::from("restart"), &Value::from(true)),
        "{done}"
    );
    assert_eq!(
        Path::new(done["image"].as_str().unwrap()),
        image.canonicalize().unwrap()
    );
    assert_eq!(done["bytes"].as_u64(), Some(total));
    assert!(done["seconds"].as_f64().is_some() && done["bytes_per_second"].as_u64().is_some());
    let last = objects.last().unwrap();
    assert_eq!(
        last["type"], "restart",
        "the restart object is not the last word\n{context}"
    );
    r.assert_no_bad();
    r.kill9();
}

per_width!(restart_progress_on_a_terminal_and_as_json, restart_progress_on_a_terminal_and_as_json_32 => restart_progress());

/// `mtcp run --json`: its notes as `run` events (start, checkpointed, resume, exit) with
/// their fields, besides the progress objects of its checkpoint and restart; `--quiet`:
/// nothing on stderr in the same cycle.
#[test]
fn run_json_events_and_quiet() {
    let t = Test::new("progress_run");
    let prog = t.compile_c("counter", Variant::Dynamic, &[]);
    for quiet in [false, true] {
        let d = t.path(if quiet { "quiet" } else { "json" });
        let opts: &[&str] = if quiet { &["--quiet"] } else { &["--json"] };
        let run = |label: &str| {
            let mut cmd = Command::new(&bins().mtcp);
            cmd.arg("run")
                .arg("--dir")
                .arg(&d)
                .args(opts)
                .arg("--")
                .arg(&prog)
                .arg("60");
            cmd.current_dir(&t.dir);
            Proc::spawn(cmd, label)
        };
        let mut first = run("first run");
        first.wait_for_count(5, LINE_TIMEOUT);
        assert!(send_signal(first.pid(), 15));
        assert_eq!(first.wait_exit(RUN_TIMEOUT).code(), Some(85), "{}", first.describe());
        let mut second = run("second run");
        expect_done(&mut second, 60, RUN_TIMEOUT);
        assert_eq!(second.wait_exit(RUN_TIMEOUT).code(), Some(0), "{}", second.describe());
        if quiet {
            for p in [&first, &second] {
                assert!(p.stderr_lines().is_empty(), "--quiet printed\n{}", p.describe());
            }
            continue;
        }
        let events = |p: &Proc| json_lines(&p.stderr_lines().join("\n"), &p.describe());
        let runs =
            |objects: &[Value]| -> Vec<Value> { objects.iter().filter(|o| o["type"] == "run").cloned().collect() };
        let one = events(&first);
        let run_events = runs(&one);
        assert_eq!(run_events.len(), 2, "{}", first.describe());
        assert_eq!(run_events[0]["event"], "start");
        assert!(run_events[0]["pid"].as_u64().is_some());
        assert_eq!(run_events[1]["event"], "checkpointed");
        assert_eq!(run_events[1]["status"], 85);
        let image = run_events[1]["image"].as_str().unwrap().to_string();
        assert!(Path::new(&image).is_file());
        let progress: Vec<&Value> = one.iter().filter(|o| o["type"] == "progress").collect();
        check_progress_objects(&progress, "checkpoint", &first.describe());

        let two = events(&second);
        let run_events = runs(&two);
        assert_eq!(run_events.len(), 2, "{}", second.describe());
        assert_eq!(run_events[0]["event"], "resume");
        assert_eq!(run_events[0]["image"], image.as_str());
        assert_eq!(run_events[1]["event"], "exit");
        assert_eq!(run_events[1]["status"], 0);
        let progress: Vec<&Value> = two.iter().filter(|o| o["type"] == "progress").collect();
        check_progress_objects(&progress, "restart", &second.describe());
        assert_eq!(two.iter().filter(|o| o["type"] == "restart").count(), 1);
    }
}

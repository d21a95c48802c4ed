//! POSIX message queues come back at their numbers with their flags and attributes: a
//! named queue reopened by name (its messages waited in the mqueue filesystem), queues
//! unlinked while open made again with their messages, in order, with their priorities;
//! and every notification registration (SIGEV_SIGNAL with its value, glibc's
//! SIGEV_THREAD, SIGEV_NONE) registered again, firing after the restart. The process
//! that goes on after a checkpoint keeps all of it too.

pub mod common;

use common::*;
use serde_json::Value;
use std::ffi::CString;
use std::time::Duration;

extern "C" {
    fn mq_unlink(name: *const std::ffi::c_char) -> i32;
}

/// Removes the named queues the program makes, whatever became of it.
struct Names(String);

impl Drop for Names {
    fn drop(&mut self) {
        for q in ["a", "b"] {
            let name = CString::new(format!("{}-{q}", self.0)).unwrap();
            // SAFETY: name is a NUL-terminated string that lives across the call.
            unsafe { mq_unlink(name.as_ptr()) };
        }
    }
}

/// The image's queue records, by descriptor number.
fn queues(json: &Value) -> Vec<(u64, Value)> {
    json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "mqueue")
        .map(|f| (f["fd"].as_u64().unwrap(), f["state"].clone()))
        .collect()
}

/// Priorities and sizes of a record's saved messages.
fn saved(state: &Value) -> Vec<(u64, u64)> {
    state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["prio"].as_u64().unwrap(), m["bytes"].as_u64().unwrap()))
        .collect()
}

fn check_image(image: &std::path::Path) {
    let json = inspect_json(image);
    let q = queues(&json);
    let fds: Vec<u64> = q.iter().map(|(fd, _)| *fd).collect();
    assert_eq!(fds.len(), 6, "six queue descriptors (A, B, C, D, E, D2): {json}");
    let state = |i: usize| &q[i].1;
    let (a, b, c, d, e, d2) = (state(0), state(1), state(2), state(3), state(4), state(5));
    assert!(
        a["unlinked"] == false && a["curmsgs"] == 4 && a["maxmsg"] == 6 && a["msgsize"] == 40 && a["notify"] == "none",
        "A: {a}"
    );
    assert!(
        b["notify"] == "signal" && b["signal"] == 10 && b["value"] == 0x5eed && b["curmsgs"] == 0,
        "B: SIGUSR1 with value 0x5eed: {b}"
    );
    assert!(
        c["unlinked"] == true
            && c["notify"] == "thread"
            && c["socket"].is_u64()
            && c["messages_saved"] == true
            && saved(c) == [(7, 0), (3, 5), (3, 5), (1, 100)],
        "C: unlinked, a thread registration, 4 messages saved in receive order: {c}"
    );
    let socket = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fd"] == c["socket"])
        .unwrap_or_else(|| panic!("no record of C's netlink socket: {json}"));
    assert_eq!(socket["state"]["family"], "netlink", "{socket}");
    assert!(
        d["notify"] == "registered (SIGEV_NONE)" && d["messages_saved"] == true && saved(d) == [(4, 3), (2, 3)],
        "D: {d}"
    );
    assert!(
        e["same_as"] == fds[3] && e["same_open_file"] == false,
        "E: another open file of D: {e}"
    );
    assert!(
        d2["same_as"] == fds[3] && d2["same_open_file"] == true,
        "D2: a dup of D: {d2}"
    );
    let text = inspect_text(image);
    assert!(
        text.contains("notify signal 10 value 0x5eed") && text.contains("4 saved [prio:bytes 7:0 3:5 3:5 1:100]"),
        "the text view does not show the queues' state:\n{text}"
    );
}

fn message_queues(bits: Bits) {
    let t = Test::new(&bits.name("mqueue"));
    let prog = t.compile("mqueue", Variant::Dynamic, bits, &["-pthread", "-lrt"]);
    let prefix = format!("/mtcp-test-{}-{}", std::process::id(), bits.suffix());
    let _names = Names(prefix.clone());
    let mut p = t.launch(&prog, &["100000", &prefix]);
    p.wait_for_count(5, LINE_TIMEOUT);
    // Checkpoints the process goes on from: it checks its queues every 50 ms, so a
    // registration not made again or a message not put back shows as BAD.
    for _ in 0..2 {
        let image = checkpoint(p.pid());
        let n = p.last_count().unwrap();
        p.wait_for_count(n + 3, LINE_TIMEOUT);
        check_image(&image);
    }
    p.assert_no_bad();
    let c = cycle(&t, p);
    check_image(&c.image);
    let c = cycle(&t, c.restarted);
    let mut r = c.restarted;
    std::fs::write(t.path("verify"), b"").unwrap();
    r.wait_for_line("`done`", LINE_TIMEOUT, |l| l == "done");
    let status = r.wait_exit(Duration::from_secs(10));
    r.assert_no_bad();
    let lines = r.lines();
    for want in ["B notified value 0x5eed", "C notified param thread-param", "verified"] {
        assert!(lines.iter().any(|l| l == want), "no `{want}` line\n{}", r.describe());
    }
    assert!(status.success(), "{}", r.describe());
}

/// A queue record one byte short is refused, by mtcp_restart and by inspect, with one
/// line and before anything changes.
fn malformed_records(bits: Bits) {
    let t = Test::new(&bits.name("mqbad"));
    let prog = t.compile("mqueue", Variant::Dynamic, bits, &["-pthread", "-lrt"]);
    let prefix = format!("/mtcp-test-{}-bad{}", std::process::id(), bits.suffix());
    let _names = Names(prefix.clone());
    let mut p = t.launch(&prog, &["100000", &prefix]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let good = checkpoint(p.pid());
    p.kill9();
    let bad = t.path("bad.mtcp");
    std::fs::write(
        &bad,
        shorten_fd_record(&std::fs::read(&good).unwrap(), mtcp_core::image::FD_MQUEUE),
    )
    .unwrap();
    let mut problems = Vec::new();
    let out = run_restart_program(bits.mtcp_restart(), &bad, &t.dir);
    problems.extend(one_line_failure(
        "mtcp_restart, queue record short",
        &out,
        true,
        &["message queue"],
    ));
    let out = mtcp(&["inspect", bad.to_str().unwrap()], Duration::from_secs(30));
    problems.extend(one_line_failure(
        "inspect, queue record short",
        &out,
        false,
        &["message queue"],
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

per_width!(
    malformed_queue_records_are_refused, malformed_queue_records_are_refused_32 => malformed_records()
);

per_width!(
    /// Named and unlinked queues, their messages and all three kinds of registration,
    /// through two checkpoints the process goes on from and two restarts; then every
    /// message is read back in order and every registration fires.
    message_queues_come_back, message_queues_come_back_32 => message_queues()
);

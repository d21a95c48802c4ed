//! `mtcp inspect` shows every kind of descriptor an image records with the state it
//! saved, in text and in JSON; the process holding them all is restarted and goes on.

pub mod common;

use common::*;
use serde_json::Value;

/// The kind, the JSON state and the text line of each descriptor in the image.
fn descriptors(image: &std::path::Path) -> Vec<(String, Value, String)> {
    let json = inspect_json(image);
    let text = inspect_text(image);
    json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let fd = f["fd"].as_u64().unwrap();
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("fd {fd} ")))
                .unwrap_or_else(|| panic!("fd {fd} is not in the text view:\n{text}"))
                .to_string();
            (f["kind"].as_str().unwrap().to_string(), f.clone(), line)
        })
        .collect()
}

fn every_kind(bits: Bits) {
    let t = Test::new(&bits.name("allkinds"));
    let prog = t.compile("allkinds", Variant::Dynamic, bits, &["-lrt"]);
    let mut p = t.launch(&prog, &[t.dir.to_str().unwrap(), "1000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let c = cycle(&t, p);
    let fds = descriptors(&c.image);
    // What each kind must show: a JSON state field and the text it puts in the line.
    let wanted: [(&str, &str, &str); 14] = [
        ("file", "size", "size 5, changed"),
        ("pipe", "", "5 bytes buffered"),
        ("eventfd", "count", "count 7"),
        ("timerfd", "interval", "every 0.030000000 s"),
        ("timerfd", "ticks", "every 0.000000000 s, 1 unread"),
        ("timerfd", "ticks", "every 10.000000000 s, 1 unread"),
        ("signalfd", "mask", "signals 0x200"),
        ("epoll", "watches", "data 0x2a"),
        ("socket", "state", "inet stream listening on 127.0.0.1:"),
        ("deleted", "saved_bytes", "11 bytes saved"),
        ("fifo", "buffered", "3 bytes buffered"),
        ("inotify", "watches", "wd 1 mask 0x300"),
        ("mqueue", "messages", "1 saved [prio:bytes 3:6]"),
        ("dir", "", ""),
    ];
    for (kind, field, text) in wanted {
        let found = fds.iter().find(|(k, f, line)| {
            k == kind
                && (field.is_empty() || !f["state"][field].is_null() || !f[field].is_null())
                && line.contains(text)
        });
        assert!(
            found.is_some(),
            "no {kind} descriptor showing `{field}` in JSON and `{text}` in text: {:#?}",
            fds.iter().filter(|(k, _, _)| k == kind).collect::<Vec<_>>()
        );
    }
    assert!(
        fds.iter().any(|(k, _, l)| k == "chardev" && l.contains("/dev/null")),
        "{fds:#?}"
    );
    // Every expiration of the timer that fires every 30 ms, which nothing reads: as
    // many as went by before the checkpoint (not only the first).
    let ticks = fds
        .iter()
        .find(|(_, f, l)| f["kind"] == "timerfd" && l.contains("every 0.030000000 s"))
        .map(|(_, f, _)| f["state"]["ticks"].as_u64().unwrap())
        .unwrap();
    assert!(
        ticks >= 3,
        "the 30 ms timer shows {ticks} unread expirations after {} counts",
        c.before
    );
    // And the process holding them goes on after a second restart, its two timers that
    // had fired once still holding exactly that one expiration.
    let mut c = cycle(&t, c.restarted);
    std::fs::write(t.path("read-timers"), b"").unwrap();
    let timers = c
        .restarted
        .wait_for_line("`timers A B`", LINE_TIMEOUT, |l| l.starts_with("timers "));
    assert_eq!(timers, "timers 1 1", "{}", c.restarted.describe());
    c.restarted.assert_no_bad();
}

per_width!(
    /// A regular file, a directory, a device, a pipe, an eventfd, a timerfd, a signalfd,
    /// an epoll instance, a listener, a deleted file, a FIFO, an inotify instance and a
    /// message queue, each shown with what the image saved of it.
    inspect_shows_every_descriptor_kind, inspect_shows_every_descriptor_kind_32 => every_kind()
);

//! The Rust API (`api/`, the crate mtcp-api) end to end: its example program checkpoints itself, reads and verifies its own image with the crate's reader, is killed and restarted, learns that it was restarted, and ends with the result of an uninterrupted run (which, without mtcp, the same binary computes too).

pub mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const STEPS: &str = "60";
const CHECKPOINT_AT: u64 = 20;

/// The example, which `cargo test` builds with the workspace.
fn example() -> PathBuf {
    let p = bins().mtcp.parent().unwrap().join("examples/resumable");
    assert!(
        p.is_file(),
        "{} does not exist: build it with `cargo build --release -p mtcp-api --example resumable` \
         (`cargo test --release` builds it)",
        p.display()
    );
    p
}

/// `step N HASH` lines, in order.
fn steps(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (n, h) = l.strip_prefix("step ")?.split_once(' ')?;
            Some((n.parse().ok()?, h.to_string()))
        })
        .collect()
}

#[test]
fn the_example_checkpoints_itself_and_knows_it_was_restarted() {
    let t = Test::new("api_example");
    let prog = example();
    let at = CHECKPOINT_AT.to_string();

    // Without mtcp: no runtime, and the result to compare with.
    let mut cmd = Command::new(&prog);
    cmd.args([STEPS, &at]);
    let plain = run_output(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(plain.status.success(), "{}", describe_output(&plain));
    let lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines[0], "restarts 0");
    assert!(lines.contains(&"no runtime".to_string()), "{text}");
    let reference = steps(&lines);
    let result = lines.last().unwrap().clone();
    assert!(result.starts_with("result "), "{text}");

    let mut p = t.launch(&prog, &[STEPS, &at]);
    p.wait_for_line("restarts 0", LINE_TIMEOUT, |l| l == "restarts 0");
    let written = p.wait_for_line("`checkpointed PATH`", LINE_TIMEOUT, |l| {
        l.starts_with("checkpointed ") || l.starts_with("BAD")
    });
    let image = PathBuf::from(
        written
            .strip_prefix("checkpointed ")
            .unwrap_or_else(|| panic!("{}", p.describe())),
    );
    assert!(image.is_file() && image.starts_with(&t.dir), "{}", image.display());
    // Its own image, read back by the crate: its first pid, one thread, all verified.
    let verified = p.wait_for_line("`image ... verified`", LINE_TIMEOUT, |l| {
        l.starts_with("image ") || l.starts_with("BAD")
    });
    let words: Vec<&str> = verified.split(' ').collect();
    assert_eq!(words.len(), 5, "{verified}");
    assert_eq!(words[1], p.pid().to_string(), "{verified}");
    assert_eq!(words[2], "1", "{verified}");
    assert_eq!(words[4], "verified", "{verified}");
    // The tool's reader agrees.
    let json = inspect_json(&image);
    assert_eq!(json["process"]["vpid"], p.pid());
    assert_eq!(json["regions"].as_array().unwrap().len().to_string(), words[3]);
    p.wait_for_line("step 25", LINE_TIMEOUT, |l| l.starts_with("step 25 "));
    p.kill9();

    let mut r = t.restart(&image);
    let back = r.wait_for_line("`restarted PATH restarts N`", LINE_TIMEOUT, |l| {
        l.starts_with("restarted ") || l.starts_with("BAD")
    });
    assert_eq!(
        back,
        format!("restarted {} restarts 1", image.display()),
        "{}",
        r.describe()
    );
    expect_line(&mut r, &result);
    assert_eq!(r.wait_exit(Duration::from_secs(30)).code(), Some(0), "{}", r.describe());
    let after = steps(&r.lines());
    assert_eq!(after.first().map(|s| s.0), Some(CHECKPOINT_AT + 1), "{}", r.describe());
    let before = steps(&p.lines());
    for (n, hash) in before.iter().chain(&after) {
        assert_eq!(
            Some(hash),
            reference.get(*n as usize - 1).map(|s| &s.1),
            "step {n} differs from the run without mtcp"
        );
    }
    r.assert_no_bad();
}

fn expect_line(p: &mut Proc, line: &str) {
    p.wait_for_line(line, Duration::from_secs(30), |l| l == line);
}

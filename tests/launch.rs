//! `mtcp launch` decides how a program gets the runtime from its ELF file.

pub mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn static_program_without_the_runtime_is_refused() {
    let t = Test::new("launch_plain_static");
    let prog = t.path("plain");
    let src = bins().root.join("tests/progs/counter.c");
    let mut cc = Command::new("gcc");
    cc.args(["-O2", "-static"]).arg(&src).arg("-o").arg(&prog);
    assert!(run_output(cc, Duration::from_secs(60)).status.success(), "gcc failed");
    let out = mtcp(&["launch", "--", prog.to_str().unwrap(), "3"], Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a static program without the runtime must not run:\n{}",
        describe_output(&out)
    );
    assert!(
        err.contains("statically linked without the mtcp runtime"),
        "unclear error:\n{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "the program ran:\n{}",
        describe_output(&out)
    );
}

#[test]
fn stripped_static_program_with_the_runtime_is_recognised() {
    let t = Test::new("launch_stripped");
    let prog = t.compile_c("counter", Variant::Static, &[]);
    let st = Command::new("strip").arg(&prog).status().expect("strip");
    assert!(st.success());
    let mut p = t.launch(&prog, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    // The runtime's ELF note also tells `mtcp checkpoint` that the process carries it.
    cycle(&t, p);
}

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

/// A program the loader runs in secure-execution mode (set-user-ID or set-group-ID to
/// someone else, or given file capabilities) ignores LD_PRELOAD: it would run without checkpoints, so `mtcp launch`
/// refuses it with one line and does not run it. Set-user-ID to ourselves is no such
/// case and launches as usual. (Needs root, to give the file away.)
#[test]
fn setuid_program_is_refused_not_run_without_checkpoints() {
    let t = Test::new("launch_setuid");
    let built = t.compile_c("counter", Variant::Dynamic, &[]);
    let give = |name: &str, owner: &str, mode: &str| {
        let p = t.path(name);
        std::fs::copy(&built, &p).unwrap();
        let chown = Command::new("chown").arg(owner).arg(&p).status().expect("chown");
        assert!(chown.success(), "chown {owner} {} (this test needs root)", p.display());
        let chmod = Command::new("chmod").arg(mode).arg(&p).status().expect("chmod");
        assert!(chmod.success());
        p
    };
    let capable = give("with_caps", "0:0", "0755");
    let setcap = Command::new("setcap").arg("cap_net_raw+ep").arg(&capable).status();
    assert!(
        setcap.is_ok_and(|s| s.success()),
        "setcap cap_net_raw+ep {} (needs Debian's libcap2-bin, which .ci/run installs)",
        capable.display()
    );
    for (prog, why) in [
        (give("suid_nobody", "65534:0", "4755"), "set-user-ID"),
        (give("sgid_nogroup", "0:65534", "2755"), "set-group-ID"),
        (capable, "file capabilities"),
    ] {
        let out = mtcp(&["launch", "--", prog.to_str().unwrap(), "3"], Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{why} program must not run without checkpoints:\n{}",
            describe_output(&out)
        );
        assert!(err.contains(why) && err.contains("LD_PRELOAD"), "unclear error:\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line:\n{err}");
        assert!(out.stdout.is_empty(), "the program ran:\n{}", describe_output(&out));
    }
    let mine = give("suid_root", "0:0", "4755");
    let mut p = t.launch(&mine, &["100000"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    cycle(&t, p);
}

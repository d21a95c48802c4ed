//! Shell completion and man pages, made from the tables `--help` is made from: bash and fish complete every option `--help` shows (asked as a user's shell would ask), zsh's script is valid and names them all, and every man page renders without warnings and shows every option.

pub mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn stdout_of(args: &[&str]) -> String {
    let out = mtcp(args, TIMEOUT);
    assert!(out.status.success(), "mtcp {args:?}\n{}", describe_output(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `mtcp --help` lists.
fn commands() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let list = help.split("commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    let names: Vec<String> = list
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(names.len() >= 7 && names.contains(&"run".to_string()), "{help}");
    names
}

/// Every option a help text shows (`  --dir D  ...`, `  -h, --help  ...`).
fn options_in_help(help: &str) -> BTreeSet<String> {
    let section = help
        .split("options:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no options in {help}"));
    let mut found = BTreeSet::new();
    for line in section.lines().take_while(|l| !l.is_empty()) {
        let Some(left) = line.strip_prefix("  ").filter(|l| l.starts_with('-')) else {
            continue;
        };
        for name in left.split("  ").next().unwrap().split(", ") {
            found.insert(name.split(' ').next().unwrap().to_string());
        }
    }
    assert!(found.contains("--help"), "{help}");
    found
}

/// (command or "" for mtcp itself, the options its --help shows)
fn every_help() -> Vec<(String, BTreeSet<String>)> {
    let mut all = vec![(String::new(), options_in_help(&stdout_of(&["--help"])))];
    for c in commands() {
        let help = stdout_of(&[&c, "--help"]);
        all.push((c, options_in_help(&help)));
    }
    all
}

fn script(t: &Test, shell: &str) -> std::path::PathBuf {
    let path = t.path(&format!("completion.{shell}"));
    std::fs::write(&path, stdout_of(&["completion", shell])).unwrap();
    path
}

fn missing(wanted: &BTreeSet<String>, offered: &BTreeSet<String>) -> Vec<String> {
    wanted.difference(offered).cloned().collect()
}

#[test]
fn bash_completes_every_option_and_command() {
    let t = Test::new("completion_bash");
    let file = script(&t, "bash");
    let ask = |words: &[&str]| -> BTreeSet<String> {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _mtcp; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let mut cmd = Command::new("bash");
        cmd.args(["--norc", "-c", &program]);
        let out = run_output(cmd, TIMEOUT);
        assert!(out.status.success(), "{}", describe_output(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let commands: BTreeSet<String> = commands().into_iter().collect();
    assert!(
        missing(&commands, &ask(&["mtcp", ""])).is_empty(),
        "{:?}",
        ask(&["mtcp", ""])
    );
    for (c, options) in every_help() {
        let offered = if c.is_empty() {
            ask(&["mtcp", "-"])
        } else {
            ask(&["mtcp", &c, "-"])
        };
        assert!(
            missing(&options, &offered).is_empty(),
            "bash does not complete {:?} for `mtcp {c}` (it offers {offered:?})",
            missing(&options, &offered)
        );
    }
    // Values and operands: a signal after --signal-on, a command for man, a shell.
    assert!(ask(&["mtcp", "run", "--signal-on", "US"]).contains("USR1"));
    assert!(ask(&["mtcp", "man", "ru"]).contains("run"));
    assert!(ask(&["mtcp", "completion", "f"]).contains("fish"));
    // Past the program, its own arguments: no mtcp options.
    assert!(!ask(&["mtcp", "run", "--", "/bin/true", "--"]).contains("--dir"));
}

#[test]
fn fish_completes_every_option_and_command() {
    let t = Test::new("completion_fish");
    let file = script(&t, "fish");
    let ask = |line: &str| -> BTreeSet<String> {
        let mut cmd = Command::new("fish");
        cmd.args([
            "--no-config",
            "-c",
            &format!("source '{}'; complete -C '{}'", file.display(), line),
        ]);
        let out = run_output(cmd, TIMEOUT);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "fish is needed (.ci/run installs it)\n{}",
            describe_output(&out)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    let commands: BTreeSet<String> = commands().into_iter().collect();
    assert!(missing(&commands, &ask("mtcp ")).is_empty(), "{:?}", ask("mtcp "));
    for (c, options) in every_help() {
        let line = if c.is_empty() {
            "mtcp -".to_string()
        } else {
            format!("mtcp {c} -")
        };
        let offered = ask(&line);
        assert!(
            missing(&options, &offered).is_empty(),
            "fish does not complete {:?} for `{line}` (it offers {offered:?})",
            missing(&options, &offered)
        );
    }
    assert!(ask("mtcp run --signal-on US").contains("USR1"));
    assert!(ask("mtcp completion ").contains("zsh"));
}

#[test]
fn zsh_script_is_valid_and_names_every_option() {
    let t = Test::new("completion_zsh");
    let file = script(&t, "zsh");
    let mut cmd = Command::new("zsh");
    cmd.arg("-n").arg(&file);
    let out = run_output(cmd, TIMEOUT);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "zsh -n (zsh is needed: .ci/run installs it)\n{}",
        describe_output(&out)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("#compdef mtcp\n"));
    for (c, options) in every_help() {
        // A command's specs lie between `    NAME)` and `;;`.
        let section = if c.is_empty() {
            text.split("case $cmd in").next().unwrap().to_string()
        } else {
            let start = text
                .find(&format!("\n        {c})\n"))
                .unwrap_or_else(|| panic!("no case for {c}"));
            text[start..].split(";;").next().unwrap().to_string()
        };
        for o in options {
            assert!(
                section.contains(&format!("'{o}[")) || section.contains(&format!("'*{o}[")),
                "zsh's script has no spec for `mtcp {c} {o}`"
            );
        }
    }
}

/// A man page as plain text (groff, no bold or underline); panics on groff's warnings.
fn render(page: &Path) -> String {
    let mut cmd = Command::new("groff");
    cmd.args(["-man", "-Tascii", "-ww", "-P-cbou"]).arg(page);
    let out = run_output(cmd, TIMEOUT);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff on {} (groff is needed: .ci/run installs groff-base)\n{}",
        page.display(),
        describe_output(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_pages_show_every_option() {
    let t = Test::new("man_pages");
    let dir = t.path("man1");
    let listed = stdout_of(&["man", "--dir", dir.to_str().unwrap()]);
    let commands = commands();
    assert_eq!(listed.lines().count(), commands.len() + 1, "{listed}");
    for (c, options) in every_help() {
        let name = if c.is_empty() {
            "mtcp".to_string()
        } else {
            format!("mtcp-{c}")
        };
        let page = dir.join(format!("{name}.1"));
        assert!(listed.lines().any(|l| Path::new(l) == page), "{listed}");
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(text.starts_with(&format!(".TH {} 1 ", name.to_uppercase())), "{text}");
        // The page printed alone is the page written.
        let alone = if c.is_empty() {
            stdout_of(&["man"])
        } else {
            stdout_of(&["man", &c])
        };
        assert_eq!(alone, text);
        let shown = render(&page);
        assert!(shown.contains(&format!("{name} - ")), "no NAME line in\n{shown}");
        for o in options {
            assert!(shown.contains(&o), "{name}(1) does not show {o}:\n{shown}");
        }
        if !c.is_empty() {
            let help = stdout_of(&[&c, "--help"]);
            let synopsis = help.lines().next().unwrap().trim_start_matches("usage: ");
            let flat: String = shown.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains(synopsis),
                "{name}(1) lacks the synopsis {synopsis:?}:\n{shown}"
            );
        }
    }
    for c in &commands {
        assert!(
            render(&dir.join("mtcp.1")).contains(&format!("mtcp-{c}(1)")),
            "mtcp(1) does not name mtcp-{c}(1)"
        );
    }
    let out = mtcp(&["man", "nope"], TIMEOUT);
    if let Some(p) = one_line_failure("man of an unknown command", &out, false, &["unknown command"]) {
        panic!("{p}");
    }
    let out = mtcp(&["completion", "tcsh"], TIMEOUT);
    if let Some(p) = one_line_failure("completion for an unknown shell", &out, false, &["unknown shell"]) {
        panic!("{p}");
    }
}

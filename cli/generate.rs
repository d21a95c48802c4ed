//! `mtcp completion` and `mtcp man`: shell completion scripts (bash, zsh, fish) and man pages, made from the commands' own descriptions (`args::Subcommand`: synopsis, help text, option tables), the source `--help` is made from.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::{fail, io_msg, usage, Result, COMMANDS, TAGLINE, TOP_OPTIONS};

pub const COMPLETION: Subcommand = Subcommand {
    name: "completion",
    synopsis: "SHELL",
    summary: "print the completion script for SHELL: bash, zsh or fish",
    about: "\
Prints a script that completes mtcp's commands, their options and the values these
take in SHELL (bash, zsh or fish), made from the tables --help is made from.
scripts/install.sh installs them; to try one in bash: source <(mtcp completion bash).",
    options: &[],
    notes: "\
Where each goes, under a prefix: share/bash-completion/completions/mtcp,
share/zsh/site-functions/_mtcp (a directory in zsh's $fpath) and
share/fish/vendor_completions.d/mtcp.fish.",
    operands: Operands::One("SHELL"),
    run: completion_main,
};

pub const MAN: Subcommand = Subcommand {
    name: "man",
    synopsis: "[--dir DIR] [COMMAND]",
    summary: "print the man page of mtcp or of COMMAND, or write them all into DIR",
    about: "\
Prints mtcp(1), or mtcp-COMMAND(1) for COMMAND, in roff (mtcp man run | man -l -),
made from the tables --help is made from. With --dir, writes mtcp.1 and
mtcp-COMMAND.1 for every command into DIR and prints their paths.",
    options: &[Opt {
        name: "--dir",
        value: Value::Os("DIR"),
        help: "write every page into DIR (made if need be)",
    }],
    notes: "",
    operands: Operands::Optional("COMMAND"),
    run: man_main,
};

const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

fn completion_main(args: Args) -> Result<u8> {
    let shell = args.operands[0].to_string_lossy();
    let script = match shell.as_ref() {
        "bash" => bash(),
        "zsh" => zsh(),
        "fish" => fish(),
        other => {
            return usage(format!(
                "completion: unknown shell '{}' (expected {})",
                other,
                SHELLS.join(", ")
            ))
        }
    };
    print!("{}", script);
    Ok(0)
}

fn man_main(args: Args) -> Result<u8> {
    let named = |name: &str| COMMANDS.iter().copied().find(|c| c.name == name);
    match (args.value("--dir"), args.operands.first()) {
        (Some(_), Some(_)) => usage("man: give --dir DIR or COMMAND, not both"),
        (Some(dir), None) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)
                .or_else(|e| fail(format!("cannot make {}: {}", dir.display(), io_msg(&e))))?;
            let pages = std::iter::once(("mtcp.1".to_string(), main_page()))
                .chain(COMMANDS.iter().map(|c| (format!("mtcp-{}.1", c.name), command_page(c))));
            for (name, text) in pages {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .or_else(|e| fail(format!("cannot write {}: {}", path.display(), io_msg(&e))))?;
                println!("{}", path.display());
            }
            Ok(0)
        }
        (None, None) => {
            print!("{}", main_page());
            Ok(0)
        }
        (None, Some(name)) => match named(&name.to_string_lossy()) {
            Some(c) => {
                print!("{}", command_page(c));
                Ok(0)
            }
            None => usage(format!(
                "man: unknown command '{}' (see `mtcp --help`)",
                name.to_string_lossy()
            )),
        },
    }
}

/// What an option's value or an operand is, known by the name help gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Free text (a number of seconds, a size): nothing to offer.
    Text,
    Dir,
    Image,
    Signal,
    Pid,
    Program,
    Shell,
    Command,
}

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "S" | "SECS" | "N" => Kind::Text,
        "D" | "DIR" => Kind::Dir,
        "IMAGE" => Kind::Image,
        "SIG" => Kind::Signal,
        "PID" => Kind::Pid,
        "PROG" => Kind::Program,
        "SHELL" => Kind::Shell,
        "COMMAND" => Kind::Command,
        _ => return None,
    })
}

/// The kind of an option's value (None for a flag).
fn value_kind(o: &Opt) -> Option<Kind> {
    match o.value {
        Value::None => None,
        // A table's value name without a kind is caught by the tests.
        Value::Text(n) | Value::Os(n) => Some(kind_of(n).unwrap_or(Kind::Text)),
    }
}

/// The first operand's name: a command's one operand, or the first word of its synopsis
/// outside brackets (`PROG` for `[--dir D] [--] PROG ARGS...`, `PID` for `PID [GDB...]`).
fn operand_name(c: &Subcommand) -> &'static str {
    match c.operands {
        Operands::One(n) | Operands::Optional(n) => n,
        Operands::Program => {
            let mut depth = 0i32;
            for word in c.synopsis.split(' ') {
                let opened = depth;
                depth += word.matches('[').count() as i32 - word.matches(']').count() as i32;
                if opened == 0 && !word.starts_with('[') {
                    return word;
                }
            }
            "PROG"
        }
    }
}

/// After the first operand, the rest are a program's arguments (files, say).
fn takes_more(c: &Subcommand) -> bool {
    matches!(c.operands, Operands::Program)
}

/// Whether `--name` may be given more than once (`[--name V]...` in the synopsis).
fn repeats(c: &Subcommand, o: &Opt) -> bool {
    c.synopsis.contains(&format!("[{}]...", o.left()))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn signal_names() -> Vec<&'static str> {
    crate::signal::names().collect()
}

fn command_names() -> Vec<&'static str> {
    COMMANDS.iter().map(|c| c.name).collect()
}

/// The bash script: one function that finds the command, then offers its options, the
/// value an option takes, or its operand.
fn bash() -> String {
    let mut s = String::from(
        "# bash completion for mtcp, made by `mtcp completion bash` from mtcp's option tables.\n\
         _mtcp_values() {\n    case $1 in\n",
    );
    let words = |w: Vec<&str>| w.join(" ");
    for (kind, action) in [
        (Kind::Dir, "compgen -d -- \"$cur\"".to_string()),
        (
            Kind::Image,
            "compgen -f -X '!*.mtcp' -- \"$cur\"; compgen -d -- \"$cur\"".to_string(),
        ),
        (
            Kind::Signal,
            format!("compgen -W \"{}\" -- \"$cur\"", words(signal_names())),
        ),
        (
            Kind::Pid,
            "compgen -W \"$(cd /proc && echo [0-9]*)\" -- \"$cur\"".to_string(),
        ),
        (
            Kind::Program,
            "compgen -c -- \"$cur\"; compgen -f -- \"$cur\"".to_string(),
        ),
        (Kind::Shell, format!("compgen -W \"{}\" -- \"$cur\"", SHELLS.join(" "))),
        (
            Kind::Command,
            format!("compgen -W \"{}\" -- \"$cur\"", words(command_names())),
        ),
        (Kind::Text, ":".to_string()),
    ] {
        let _ = writeln!(s, "        {:?}) COMPREPLY=($({})) ;;", kind, action);
    }
    s.push_str("    esac\n}\n\n_mtcp() {\n");
    s.push_str("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n");
    s.push_str("    COMPREPLY=()\n");
    let top: Vec<&str> = command_names()
        .into_iter()
        .chain(TOP_OPTIONS.iter().flat_map(Opt::spellings))
        .collect();
    let _ = writeln!(
        s,
        "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n        COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n        return\n    fi",
        words(top)
    );
    s.push_str("    local opts valued operand more=0\n    case ${COMP_WORDS[1]} in\n");
    for c in COMMANDS {
        let opts: Vec<&str> = c.all_options().flat_map(Opt::spellings).collect();
        let valued: Vec<String> = c
            .all_options()
            .filter_map(|o| value_kind(o).map(|k| format!("{}={:?}", o.name, k)))
            .collect();
        let operand = kind_of(operand_name(c)).unwrap_or(Kind::Text);
        let _ = writeln!(
            s,
            "        {}) opts=\"{}\"; valued=\"{}\"; operand={:?}; more={} ;;",
            c.name,
            words(opts),
            valued.join(" "),
            operand,
            u8::from(takes_more(c))
        );
    }
    s.push_str("        *) return ;;\n    esac\n");
    s.push_str(
        r#"    local v
    for v in $valued; do
        if [ "$prev" = "${v%%=*}" ]; then
            _mtcp_values "${v#*=}"
            return
        fi
    done
    # Operands given so far, past the options and their values.
    local i=2 w seen=0 skip=0 dashdash=0
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w=${COMP_WORDS[i]}
        if [ "$skip" = 1 ]; then
            skip=0
        elif [ "$dashdash" = 0 ] && [ "$seen" = 0 ] && [ "$w" = -- ]; then
            dashdash=1
        elif [ "$dashdash" = 0 ] && [ "$seen" = 0 ] && [[ $w == -* ]]; then
            for v in $valued; do [ "$w" = "${v%%=*}" ] && skip=1; done
        else
            seen=$((seen + 1))
        fi
        i=$((i + 1))
    done
    if [ "$seen" -gt 0 ]; then
        # A program's arguments, or nothing more.
        [ "$more" = 1 ] && COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [ "$dashdash" = 0 ] && [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    _mtcp_values "$operand"
}

complete -o filenames -F _mtcp mtcp
"#,
    );
    s
}

/// Text for zsh inside single quotes and `[...]`.
fn zsh_text(t: &str) -> String {
    t.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

fn zsh_action(k: Kind) -> String {
    match k {
        Kind::Text => " ".to_string(),
        Kind::Dir => "_files -/".to_string(),
        Kind::Image => "_files -g \"*.mtcp(-.)\"".to_string(),
        Kind::Signal => format!("({})", signal_names().join(" ")),
        Kind::Pid => "_pids".to_string(),
        Kind::Program => "_command_names -e".to_string(),
        Kind::Shell => format!("({})", SHELLS.join(" ")),
        Kind::Command => format!("({})", command_names().join(" ")),
    }
}

/// The zsh script: `_arguments` specs for each command.
fn zsh() -> String {
    let mut s = String::from(
        "#compdef mtcp\n# zsh completion for mtcp, made by `mtcp completion zsh` from mtcp's option tables.\n\n_mtcp() {\n    local -a commands\n    commands=(\n",
    );
    for c in COMMANDS {
        let _ = writeln!(s, "        '{}:{}'", c.name, zsh_text(c.summary));
    }
    s.push_str("    )\n    if (( CURRENT == 2 )); then\n        _describe -t commands 'mtcp command' commands\n");
    s.push_str("        _arguments");
    for o in &TOP_OPTIONS {
        for name in o.spellings() {
            let _ = write!(s, " '{}[{}]'", name, zsh_text(first_line(o.help)));
        }
    }
    s.push_str(
        "\n        return\n    fi\n    local cmd=$words[2]\n    shift words\n    (( CURRENT-- ))\n    case $cmd in\n",
    );
    for c in COMMANDS {
        let _ = write!(s, "        {})\n            _arguments -S", c.name);
        for o in c.all_options() {
            let star = if repeats(c, o) { "*" } else { "" };
            let value = match value_kind(o) {
                Some(k) => format!(
                    ":{}:{}",
                    match o.value {
                        Value::Text(n) | Value::Os(n) => n,
                        Value::None => "",
                    },
                    zsh_action(k)
                ),
                None => String::new(),
            };
            for name in o.spellings() {
                let _ = write!(
                    s,
                    " \\\n                '{}{}[{}]{}'",
                    star,
                    name,
                    zsh_text(first_line(o.help)),
                    value
                );
            }
        }
        let operand = operand_name(c);
        let kind = kind_of(operand).unwrap_or(Kind::Text);
        let optional = if matches!(c.operands, Operands::Optional(_)) {
            ":"
        } else {
            ""
        };
        let _ = write!(
            s,
            " \\\n                '1:{}{}:{}'",
            optional,
            operand.to_lowercase(),
            zsh_action(kind)
        );
        if takes_more(c) {
            s.push_str(" \\\n                '*::arguments:_files'");
        }
        s.push_str("\n            ;;\n");
    }
    s.push_str("    esac\n}\n\n_mtcp \"$@\"\n");
    s
}

/// Text for fish inside single quotes.
fn fish_text(t: &str) -> String {
    t.replace('\\', "\\\\").replace('\'', "\\'")
}

fn fish_values(k: Kind) -> String {
    match k {
        Kind::Text => String::new(),
        Kind::Dir => " -a '(__fish_complete_directories)'".to_string(),
        Kind::Image => " -a '(__fish_complete_suffix .mtcp)'".to_string(),
        Kind::Signal => format!(" -a '{}'", signal_names().join(" ")),
        Kind::Pid => " -a '(__fish_complete_pids)'".to_string(),
        Kind::Program => " -a '(__fish_complete_command)'".to_string(),
        Kind::Shell => format!(" -a '{}'", SHELLS.join(" ")),
        Kind::Command => format!(" -a '{}'", command_names().join(" ")),
    }
}

/// fish's `complete` spelling of an option: `-s h` or `-l dir`.
fn fish_flag(name: &str) -> String {
    match name.strip_prefix("--") {
        Some(long) => format!("-l {}", long),
        None => format!("-s {}", name.trim_start_matches('-')),
    }
}

/// The fish script: `complete` lines, each under the condition of its command.
fn fish() -> String {
    let mut s = String::from(
        "# fish completion for mtcp, made by `mtcp completion fish` from mtcp's option tables.\ncomplete -c mtcp -f\n",
    );
    for c in COMMANDS {
        let _ = writeln!(
            s,
            "complete -c mtcp -n __fish_use_subcommand -a {} -d '{}'",
            c.name,
            fish_text(c.summary)
        );
    }
    for o in &TOP_OPTIONS {
        let flags: Vec<String> = o.spellings().map(fish_flag).collect();
        let _ = writeln!(
            s,
            "complete -c mtcp -n __fish_use_subcommand {} -d '{}'",
            flags.join(" "),
            fish_text(first_line(o.help))
        );
    }
    for c in COMMANDS {
        let when = format!("-n '__fish_seen_subcommand_from {}'", c.name);
        for o in c.all_options() {
            let flags: Vec<String> = o.spellings().map(fish_flag).collect();
            let value = match value_kind(o) {
                Some(k) => format!(" -r{}", fish_values(k)),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "complete -c mtcp {} {}{} -d '{}'",
                when,
                flags.join(" "),
                value,
                fish_text(first_line(o.help))
            );
        }
        let kind = kind_of(operand_name(c)).unwrap_or(Kind::Text);
        let values = fish_values(kind);
        if !values.is_empty() {
            let _ = writeln!(s, "complete -c mtcp {}{}", when, values);
        }
        if takes_more(c) {
            let _ = writeln!(s, "complete -c mtcp {} -F", when);
        }
    }
    s
}

/// Text as roff reads it: backslashes and hyphens escaped, no line that starts with a
/// control character, and a place to break a line after each comma inside a word (JSON
/// in the notes is longer than a line).
fn roff(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push_str("\\e"),
                '-' => out.push_str("\\-"),
                ',' if chars.peek().is_some_and(|n| *n != ' ') => out.push_str(",\\:"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Paragraphs (separated by blank lines) of help text as roff.
fn roff_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|p| roff(p.trim_matches('\n')))
        .collect::<Vec<_>>()
        .join("\n.PP\n")
}

fn page_head(title: &str) -> String {
    format!(
        // Not hyphenated, not justified: options stay whole and searchable.
        ".TH {} 1 \"\" \"mtcp {}\" \"mtcp manual\"\n.nh\n.ad l\n",
        title.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    )
}

fn roff_options<'a>(s: &mut String, options: impl Iterator<Item = &'a Opt>) {
    for o in options {
        let names: Vec<String> = o.spellings().map(|n| format!("\\fB{}\\fR", roff(n))).collect();
        let value = match o.value {
            Value::None => String::new(),
            Value::Text(v) | Value::Os(v) => format!(" \\fI{}\\fR", roff(v)),
        };
        let _ = writeln!(s, ".TP\n{}{}\n{}", names.join(", "), value, roff(o.help));
    }
}

/// mtcp(1): what mtcp is, its commands and its own options.
fn main_page() -> String {
    let mut s = page_head("mtcp");
    let _ = writeln!(s, ".SH NAME\nmtcp \\- {}", roff(TAGLINE.trim_end_matches('.')));
    s.push_str(".SH SYNOPSIS\n.B mtcp\n\\fIcommand\\fR [\\fIoptions\\fR]\n");
    let _ = writeln!(s, ".SH DESCRIPTION\n{}", roff(TAGLINE));
    s.push_str("Each command has a page of its own, and \\fB\\-\\-help\\fR.\n.SH COMMANDS\n");
    for c in COMMANDS {
        let _ = writeln!(
            s,
            ".TP\n\\fBmtcp {}\\fR {}\n{}",
            c.name,
            roff(c.synopsis),
            roff(c.summary)
        );
    }
    s.push_str(".SH OPTIONS\n");
    roff_options(&mut s, TOP_OPTIONS.iter());
    let pages: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("\\fBmtcp\\-{}\\fR(1)", c.name))
        .collect();
    let _ = writeln!(s, ".SH SEE ALSO\n{}", pages.join(",\n"));
    s
}

/// mtcp-NAME(1): the command's synopsis, description, options and notes.
fn command_page(c: &Subcommand) -> String {
    let mut s = page_head(&format!("mtcp-{}", c.name));
    let _ = writeln!(s, ".SH NAME\nmtcp\\-{} \\- {}", c.name, roff(c.summary));
    let _ = writeln!(s, ".SH SYNOPSIS\n.B mtcp {}\n{}", c.name, roff(c.synopsis));
    let _ = writeln!(s, ".SH DESCRIPTION\n{}", roff_paragraphs(c.about));
    s.push_str(".SH OPTIONS\n");
    roff_options(&mut s, c.all_options());
    if !c.notes.is_empty() {
        let _ = writeln!(s, ".SH NOTES\n{}", roff_paragraphs(c.notes));
    }
    s.push_str(".SH SEE ALSO\n\\fBmtcp\\fR(1)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_and_operand_has_a_kind() {
        for c in COMMANDS {
            for o in c.all_options() {
                if let Value::Text(n) | Value::Os(n) = o.value {
                    assert!(kind_of(n).is_some(), "mtcp {} {}: what is a {}?", c.name, o.name, n);
                }
            }
            let name = operand_name(c);
            assert!(kind_of(name).is_some(), "mtcp {}: what is a {}?", c.name, name);
        }
        let by_name = |n| COMMANDS.iter().find(|c| c.name == n).map(|c| operand_name(c));
        assert_eq!(by_name("launch"), Some("PROG"));
        assert_eq!(by_name("run"), Some("PROG"));
        assert_eq!(by_name("debug"), Some("PID"));
        assert_eq!(by_name("man"), Some("COMMAND"));
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(roff("--dir D"), "\\-\\-dir D");
        assert_eq!(roff("a\\b\n.x\n'y"), "a\\eb\n\\&.x\n\\&'y");
        assert_eq!(roff_paragraphs("a\nb\n\nc"), "a\nb\n.PP\nc");
        assert_eq!(roff("a, b,c"), "a, b,\\:c");
        let run = COMMANDS.iter().find(|c| c.name == "run").unwrap();
        assert!(repeats(
            run,
            run.options.iter().find(|o| o.name == "--signal-on").unwrap()
        ));
        assert!(!repeats(run, run.options.iter().find(|o| o.name == "--dir").unwrap()));
    }
}

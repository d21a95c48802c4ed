//! The one option parser the subcommands share, on lexopt. Each subcommand describes
//! itself once in a `Subcommand`: its synopsis, summary and help text, its options and its
//! operands; the parser, `mtcp COMMAND --help` and the command list of `mtcp --help` are
//! all made from that description.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use crate::{usage, Result};

/// A subcommand and everything its usage messages say about it.
pub struct Subcommand {
    pub name: &'static str,
    /// What follows `mtcp NAME` in usage lines.
    pub synopsis: &'static str,
    /// One line for the command list of `mtcp --help`.
    pub summary: &'static str,
    /// What `mtcp NAME --help` says between the usage line and the options.
    pub about: &'static str,
    /// The options besides `-h`/`--help`, which every command has.
    pub options: &'static [Opt],
    /// What `mtcp NAME --help` says after the options, or "".
    pub notes: &'static str,
    pub operands: Operands,
    /// Does the work once the arguments have been parsed.
    pub run: fn(Args) -> Result<u8>,
}

/// A long option: `--name`, or `--name VALUE` / `--name=VALUE`.
pub struct Opt {
    pub name: &'static str,
    pub value: Value,
    /// The option's description in `--help`; lines after the first continue it.
    pub help: &'static str,
}

pub enum Value {
    /// A flag, which must not be given a value.
    None,
    /// A value that must be UTF-8 text, shown under this name in help.
    Text(&'static str),
    /// Any value, kept as an OsString (a path, say), shown under this name in help.
    Os(&'static str),
}

pub enum Operands {
    /// Exactly one operand, called this in the error message when it is missing.
    One(&'static str),
    /// None or one, called this in the synopsis.
    Optional(&'static str),
    /// A program and its arguments: the first operand ends the options, and every
    /// argument after it belongs to the program.
    Program,
}

/// A command's parsed arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// The options given, in order, with their values (None for flags).
    given: Vec<(&'static str, Option<OsString>)>,
    /// Exactly one for `Operands::One`, at most one for `Optional`, at least one for
    /// `Program`.
    pub operands: Vec<OsString>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Run(Args),
}

/// Width of the option column in help (between two spaces of indent and two of gap).
const OPT_WIDTH: usize = 15;

impl Subcommand {
    /// Parses the arguments after the command name and prints help or runs the command.
    pub fn main(&self, args: Vec<OsString>) -> Result<u8> {
        match self.parse(args)? {
            Parsed::Help => {
                print!("{}", self.help());
                Ok(0)
            }
            Parsed::Run(args) => (self.run)(args),
        }
    }

    /// Takes options and operands in any order until `--`, after which everything is an
    /// operand, or for `Operands::Program` until the program. `-h` or `--help` among the
    /// options asks for help.
    pub fn parse(&self, args: Vec<OsString>) -> Result<Parsed> {
        let mut lex = lexopt::Parser::from_args(args);
        // A word with one dash is looked up whole, up to any '=', as a long one is: `-h`
        // asks for help, `-hx` is an unknown option rather than `-h -x`. With short_equals
        // off, lexopt leaves everything after the first letter to optional_value.
        lex.set_short_equals(false);
        let mut given = Vec::new();
        let mut operands = Vec::new();
        while let Some(arg) = lex.next().or_else(|e| usage(format!("{}: {}", self.name, e)))? {
            let (name, attached) = match arg {
                lexopt::Arg::Long(long) => (format!("--{}", long), lex.optional_value()),
                lexopt::Arg::Short(c) => {
                    let mut word = format!("-{}", c).into_bytes();
                    word.extend_from_slice(lex.optional_value().unwrap_or_default().as_bytes());
                    match word.iter().position(|&b| b == b'=') {
                        Some(eq) => (lossy(&word[..eq]), Some(OsStr::from_bytes(&word[eq + 1..]).into())),
                        None => (lossy(&word), None),
                    }
                }
                lexopt::Arg::Value(v) => {
                    match self.operands {
                        Operands::One(_) | Operands::Optional(_) if !operands.is_empty() => {
                            return usage(format!("{}: unexpected argument '{}'", self.name, v.to_string_lossy()))
                        }
                        Operands::One(_) | Operands::Optional(_) => operands.push(v),
                        Operands::Program => {
                            operands.push(v);
                            let rest = lex.raw_args().or_else(|e| usage(format!("{}: {}", self.name, e)))?;
                            operands.extend(rest);
                        }
                    }
                    continue;
                }
            };
            if name == "-h" || name == "--help" {
                return Ok(Parsed::Help);
            }
            let opt = match self.options.iter().find(|o| o.name == name) {
                Some(o) => o,
                None => {
                    return usage(format!(
                        "{}: unknown option {} (see `mtcp {} --help`)",
                        self.name, name, self.name
                    ))
                }
            };
            let value = match opt.value {
                Value::None if attached.is_some() => {
                    return usage(format!("{}: option {} takes no value", self.name, name))
                }
                Value::None => None,
                Value::Text(_) | Value::Os(_) => {
                    let v = match attached {
                        Some(v) => v,
                        // The next argument, whatever it looks like (even `--`).
                        None => lex
                            .value()
                            .or_else(|_| usage(format!("{}: option {} needs a value", self.name, name)))?,
                    };
                    if matches!(opt.value, Value::Text(_)) && v.to_str().is_none() {
                        return usage(format!("{}: invalid value for {}: {:?}", self.name, name, v));
                    }
                    Some(v)
                }
            };
            given.push((opt.name, value));
        }
        let missing = match self.operands {
            Operands::One(what) => operands.is_empty().then_some(what),
            Operands::Optional(_) => None,
            // An empty program name is no program either.
            Operands::Program => operands.first().is_none_or(|p| p.is_empty()).then_some("program"),
        };
        if let Some(what) = missing {
            return usage(format!(
                "{}: no {} given (usage: mtcp {} {})",
                self.name, what, self.name, self.synopsis
            ));
        }
        Ok(Parsed::Run(Args { given, operands }))
    }

    /// Every option `--help` lists: the table's, then -h/--help.
    pub fn all_options(&self) -> impl Iterator<Item = &Opt> {
        self.options.iter().chain([&HELP])
    }

    /// What `mtcp NAME --help` prints.
    pub fn help(&self) -> String {
        let mut s = format!(
            "usage: mtcp {} {}\n\n{}\n\noptions:\n",
            self.name, self.synopsis, self.about
        );
        write_options(&mut s, self.all_options());
        if !self.notes.is_empty() {
            let _ = write!(s, "\n{}\n", self.notes);
        }
        s
    }
}

/// The option every command has.
pub const HELP: Opt = Opt {
    name: "-h, --help",
    value: Value::None,
    help: "show this help",
};

impl Opt {
    /// The option as help shows it on the left: `--dir D`, `-h, --help`.
    pub fn left(&self) -> String {
        match self.value {
            Value::None => self.name.to_string(),
            Value::Text(v) | Value::Os(v) => format!("{} {}", self.name, v),
        }
    }

    /// Its spellings: `-h, --help` is two.
    pub fn spellings(&self) -> impl Iterator<Item = &'static str> {
        self.name.split(", ")
    }
}

/// The option lines of help: each option and its description, lined up.
pub fn write_options<'a>(s: &mut String, options: impl Iterator<Item = &'a Opt>) {
    for opt in options {
        let mut lines = opt.help.lines();
        let _ = writeln!(s, "  {:<w$}  {}", opt.left(), lines.next().unwrap_or(""), w = OPT_WIDTH);
        for line in lines {
            let _ = writeln!(s, "{:w$}{}", "", line, w = OPT_WIDTH + 4);
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Args {
    /// Every value given to option `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&OsStr> {
        self.given
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    /// Like `values`, for an option of `Value::Text` (whose values were checked to be text).
    pub fn texts(&self, name: &str) -> Vec<&str> {
        self.values(name).into_iter().filter_map(OsStr::to_str).collect()
    }

    /// The value given last to option `name`, if any.
    pub fn value(&self, name: &str) -> Option<&OsStr> {
        self.values(name).pop()
    }

    /// Like `value`, for an option of `Value::Text`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts(name).pop()
    }

    /// Whether option `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The options given, each once, in the order first given.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for (n, _) in &self.given {
            if !names.contains(n) {
                names.push(n);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn nothing(_: Args) -> Result<u8> {
        Ok(0)
    }

    const ONE: Subcommand = Subcommand {
        name: "t",
        synopsis: "[--flag] [--dir D] [--text T] X",
        summary: "test",
        about: "About t.",
        options: &[
            Opt {
                name: "--flag",
                value: Value::None,
                help: "a flag",
            },
            Opt {
                name: "--dir",
                value: Value::Os("D"),
                help: "any value",
            },
            Opt {
                name: "--text",
                value: Value::Text("T"),
                help: "a text value,\ndescribed on two lines",
            },
        ],
        notes: "",
        operands: Operands::One("X"),
        run: nothing,
    };

    const OPTIONAL: Subcommand = Subcommand {
        synopsis: "[--flag] [--dir D] [--text T] [X]",
        operands: Operands::Optional("X"),
        ..ONE
    };

    const PROGRAM: Subcommand = Subcommand {
        synopsis: "[--flag] [--dir D] [--text T] [--] PROG ARGS...",
        operands: Operands::Program,
        ..ONE
    };

    fn os(b: impl AsRef<[u8]>) -> OsString {
        OsStr::from_bytes(b.as_ref()).to_os_string()
    }

    /// A command line from text and byte strings.
    macro_rules! argv {
        ($($a:expr),* $(,)?) => { vec![$(os($a)),*] };
    }

    fn run(cmd: &Subcommand, args: Vec<OsString>) -> Args {
        match cmd.parse(args.clone()) {
            Ok(Parsed::Run(a)) => a,
            Ok(Parsed::Help) => panic!("{:?}: help", args),
            Err(e) => panic!("{:?}: {:?}", args, e),
        }
    }

    fn usage_error(cmd: &Subcommand, args: Vec<OsString>) -> String {
        match cmd.parse(args.clone()) {
            Err(Error::Usage(m)) => m,
            other => panic!("{:?}: expected a usage error, got {:?}", args, other),
        }
    }

    #[test]
    fn values_attached_or_separate() {
        for args in [
            argv!["--dir=a b", "x"],
            argv!["--dir", "a b", "x"],
            argv!["x", "--dir", "a b"],
        ] {
            let a = run(&ONE, args);
            assert_eq!(a.value("--dir"), Some(OsStr::new("a b")));
            assert_eq!(a.operands, argv!["x"]);
        }
        let a = run(&ONE, argv!["--text=1", "--flag", "--text", "2", "x", "--flag"]);
        assert_eq!(a.texts("--text"), ["1", "2"]);
        assert_eq!(a.text("--text"), Some("2"));
        assert!(a.flag("--flag"));
        assert_eq!(a.names(), ["--text", "--flag"]);
        assert!(!run(&ONE, argv!["x"]).flag("--flag"));
        // An empty attached value is a value; the next argument is one whatever it looks like.
        assert_eq!(run(&ONE, argv!["--dir=", "x"]).value("--dir"), Some(OsStr::new("")));
        for v in ["--", "-x", "--flag"] {
            let a = run(&ONE, argv!["--dir", v, "x"]);
            assert_eq!(a.value("--dir"), Some(OsStr::new(v)));
            assert_eq!(a.names(), ["--dir"]);
        }
    }

    #[test]
    fn missing_value() {
        assert_eq!(usage_error(&ONE, argv!["x", "--dir"]), "t: option --dir needs a value");
        assert_eq!(usage_error(&PROGRAM, argv!["--text"]), "t: option --text needs a value");
    }

    #[test]
    fn unknown_options() {
        assert_eq!(
            usage_error(&ONE, argv!["--nope", "x"]),
            "t: unknown option --nope (see `mtcp t --help`)"
        );
        // Short words are looked up whole, up to any '=', like the long ones.
        for (arg, name) in [
            (&b"-x"[..], "-x"),
            (b"-hx", "-hx"),
            (b"-dir=a", "-dir"),
            (b"-=a", "-"),
            (b"--nope=a", "--nope"),
            (b"--=a", "--"),
            (b"---flag", "---flag"),
            (b"--fl\xffag", "--fl\u{fffd}ag"),
            (b"-\xff", "-\u{fffd}"),
        ] {
            let expect = format!("t: unknown option {} (see `mtcp t --help`)", name);
            assert_eq!(usage_error(&ONE, argv![arg, "x"]), expect);
            assert_eq!(usage_error(&PROGRAM, argv![arg, "prog"]), expect);
        }
    }

    #[test]
    fn help() {
        for arg in ["-h", "--help", "-h=1", "--help=1"] {
            assert_eq!(ONE.parse(argv![arg]).unwrap(), Parsed::Help);
            assert_eq!(ONE.parse(argv!["x", "--flag", arg]).unwrap(), Parsed::Help);
            assert_eq!(PROGRAM.parse(argv!["--flag", arg, "prog"]).unwrap(), Parsed::Help);
        }
        // Options are taken in order, so an earlier mistake wins.
        assert!(usage_error(&ONE, argv!["--nope", "--help"]).contains("unknown option --nope"));
        // After `--`, or among the program's arguments, it is an operand.
        assert_eq!(run(&ONE, argv!["--", "--help"]).operands, argv!["--help"]);
        assert_eq!(run(&PROGRAM, argv!["prog", "--help"]).operands, argv!["prog", "--help"]);
    }

    #[test]
    fn flags_take_no_value() {
        for arg in ["--flag=1", "--flag="] {
            assert_eq!(usage_error(&ONE, argv![arg, "x"]), "t: option --flag takes no value");
        }
    }

    #[test]
    fn one_operand() {
        assert_eq!(
            usage_error(&ONE, argv![]),
            "t: no X given (usage: mtcp t [--flag] [--dir D] [--text T] X)"
        );
        assert_eq!(usage_error(&ONE, argv!["--flag"]), usage_error(&ONE, argv![]));
        assert_eq!(usage_error(&ONE, argv!["x", "y"]), "t: unexpected argument 'y'");
        assert_eq!(usage_error(&ONE, argv!["x", "--", "y"]), "t: unexpected argument 'y'");
        // An empty operand is one; the command decides what it means.
        assert_eq!(run(&ONE, argv![""]).operands, argv![""]);
        // After `--` anything is an operand; `-` always is.
        assert_eq!(run(&ONE, argv!["--", "-x"]).operands, argv!["-x"]);
        assert_eq!(run(&ONE, argv!["--", "--"]).operands, argv!["--"]);
        assert_eq!(run(&ONE, argv!["-", "--flag"]).operands, argv!["-"]);
        let a = run(&ONE, argv!["--flag", "--", "--dir"]);
        assert_eq!((a.names(), a.operands), (vec!["--flag"], argv!["--dir"]));
    }

    #[test]
    fn optional_operand() {
        assert_eq!(run(&OPTIONAL, argv!["--flag"]).operands, Vec::<OsString>::new());
        assert_eq!(run(&OPTIONAL, argv!["x", "--flag"]).operands, argv!["x"]);
        assert_eq!(usage_error(&OPTIONAL, argv!["x", "y"]), "t: unexpected argument 'y'");
    }

    #[test]
    fn program_and_its_arguments() {
        // The first operand ends the options, with or without `--`.
        let expect = argv!["prog", "-x", "--dir", "--", "--flag", ""];
        let a = run(&PROGRAM, [argv!["--flag", "--dir", "d", "--"], expect.clone()].concat());
        assert_eq!(a.operands, expect);
        assert_eq!(a.names(), ["--flag", "--dir"]);
        assert_eq!(
            run(&PROGRAM, [argv!["--dir=d"], expect.clone()].concat()).operands,
            expect
        );
        assert_eq!(run(&PROGRAM, argv!["--", "-p", "--"]).operands, argv!["-p", "--"]);
        assert_eq!(run(&PROGRAM, argv!["--", "--"]).operands, argv!["--"]);
        let none = "t: no program given (usage: mtcp t [--flag] [--dir D] [--text T] [--] PROG ARGS...)";
        for args in [
            argv![],
            argv!["--"],
            argv!["--flag", "--"],
            argv![""],
            argv!["--", "", "x"],
        ] {
            assert_eq!(usage_error(&PROGRAM, args), none);
        }
    }

    #[test]
    fn non_utf8() {
        let bad = b"/tmp/\xff\xfe";
        for args in [argv!["--dir", bad, bad], argv![[&b"--dir="[..], bad].concat(), bad]] {
            let a = run(&ONE, args);
            assert_eq!(a.value("--dir"), Some(OsStr::from_bytes(bad)));
            assert_eq!(a.operands, argv![bad]);
        }
        assert_eq!(run(&PROGRAM, argv!["--", bad, bad]).operands, argv![bad, bad]);
        assert_eq!(
            usage_error(&ONE, argv!["--text", bad, "x"]),
            "t: invalid value for --text: \"/tmp/\\xFF\\xFE\""
        );
        assert_eq!(
            usage_error(&ONE, argv!["x", b"y\xff"]),
            "t: unexpected argument 'y\u{fffd}'"
        );
    }

    #[test]
    fn help_text_layout() {
        let h = ONE.help();
        assert!(h.starts_with("usage: mtcp t [--flag] [--dir D] [--text T] X\n\nAbout t.\n\noptions:\n"));
        assert!(h.ends_with(
            "
  --flag           a flag
  --dir D          any value
  --text T         a text value,
                   described on two lines
  -h, --help       show this help
"
        ));
    }

    #[test]
    fn commands_describe_themselves_once() {
        let usage = crate::usage_text();
        for c in crate::COMMANDS {
            let help = c.help();
            assert!(help.starts_with(&format!("usage: mtcp {} {}\n", c.name, c.synopsis)));
            assert!(usage.contains(&format!("\n  {} {}\n{:17}{}\n", c.name, c.synopsis, "", c.summary)));
            for o in c.options {
                assert!(
                    c.synopsis.contains(o.name),
                    "{} {} is not in the synopsis",
                    c.name,
                    o.name
                );
                assert!(help.contains(&format!("\n  {}", o.name)), "{} {}", c.name, o.name);
            }
            // Every command answers --help without running.
            assert_eq!(c.parse(argv!["--help"]).unwrap(), Parsed::Help);
        }
    }
}

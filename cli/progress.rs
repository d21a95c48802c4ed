//! How `checkpoint`, `restart` and `run` report long work and what they did: the progress meter on stderr (`mtcp_core::progress::Meter`: a line redrawn in place on a terminal, a line a second when asked, JSON objects with --json), notes for people and events for programs, and the options --progress, --quiet and --json that choose.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use mtcp_core::progress::{Figures, Meter, Record, Style};

use crate::args::{Args, Opt, Value};
use crate::{usage, Result};

pub const PROGRESS: Opt = Opt {
    name: "--progress",
    value: Value::None,
    help: "show progress on stderr even where it is not a terminal (a line a second)",
};

pub const QUIET: Opt = Opt {
    name: "--quiet",
    value: Value::None,
    help: "no progress and no notes on stderr (errors and warnings stay)",
};

/// --json, with what it means for this command.
pub const fn json(help: &'static str) -> Opt {
    Opt {
        name: "--json",
        value: Value::None,
        help,
    }
}

/// What a command shows, from its options and whether stderr is a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// How progress is shown, if at all.
    pub style: Option<Style>,
    pub quiet: bool,
    pub json: bool,
}

impl Report {
    pub fn from_args(command: &str, args: &Args) -> Result<Report> {
        Report::choose(
            command,
            args.flag("--quiet"),
            args.flag("--json"),
            args.flag("--progress"),
            std::io::stderr().is_terminal(),
        )
    }

    /// On a terminal a line redrawn in place; elsewhere nothing unless --progress asks
    /// (a line a second); JSON objects with --json; nothing with --quiet.
    pub fn choose(command: &str, quiet: bool, json: bool, asked: bool, terminal: bool) -> Result<Report> {
        if quiet && asked {
            return usage(format!("{}: --quiet and --progress contradict each other", command));
        }
        let style = match (quiet, json, terminal, asked) {
            (true, ..) => None,
            (_, true, ..) => Some(Style::Json),
            (_, _, true, _) => Some(Style::Terminal),
            (_, _, _, true) => Some(Style::Lines),
            _ => None,
        };
        Ok(Report { style, quiet, json })
    }

    /// A meter for `operation`, if progress is shown.
    pub fn meter(&self, operation: &'static str) -> Option<ProgressLine> {
        self.style.map(|s| ProgressLine {
            meter: Meter::new(s, operation),
            last: None,
        })
    }

    /// The option that makes `mtcp_restart` show the same.
    pub fn restart_flag(&self) -> Option<String> {
        self.style.map(|s| format!("--progress={}", s.name()))
    }

    /// A note for people (`mtcp: TEXT` on stderr), unless --quiet or --json.
    pub fn note(&self, text: impl Display) {
        if !self.quiet && !self.json {
            eprintln!("mtcp: {}", text);
        }
    }

    /// An event for programs (one JSON object on stderr) with --json, unless --quiet.
    pub fn event(&self, object: impl Display) {
        if self.json && !self.quiet {
            eprintln!("{}", object);
        }
    }
}

/// The meter of one piece of work, fed with the runtime's progress records.
pub struct ProgressLine {
    meter: Meter,
    last: Option<Record>,
}

impl ProgressLine {
    pub fn update(&mut self, rec: &Record) {
        self.last = Some(*rec);
        let mut out = String::new();
        self.meter
            .update(mtcp_core::sys::monotonic_ns(), &rec.figures(), &mut out);
        write_stderr(&out);
    }

    /// The end: the line is cleared (or the last line or object written) with the last
    /// figures seen. Without any, there is nothing to end.
    pub fn finish(&mut self) {
        let Some(rec) = self.last else {
            return;
        };
        let mut out = String::new();
        self.meter.finish(&rec.figures(), &mut out);
        write_stderr(&out);
    }

    /// The last figures the runtime reported.
    pub fn figures(&self) -> Option<Figures> {
        self.last.map(|r| r.figures())
    }
}

fn write_stderr(text: &str) {
    if !text.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_shown_where() {
        let style = |quiet, json, asked, terminal| Report::choose("t", quiet, json, asked, terminal).unwrap().style;
        assert_eq!(style(false, false, false, true), Some(Style::Terminal));
        assert_eq!(style(false, false, true, true), Some(Style::Terminal));
        assert_eq!(style(false, false, false, false), None, "nothing on a pipe");
        assert_eq!(style(false, false, true, false), Some(Style::Lines), "unless asked");
        assert_eq!(style(false, true, false, false), Some(Style::Json));
        assert_eq!(style(false, true, false, true), Some(Style::Json));
        assert_eq!(style(true, false, false, true), None);
        assert_eq!(style(true, true, false, true), None);
        assert!(Report::choose("t", true, false, true, true).is_err());
        let r = Report::choose("t", false, false, false, false).unwrap();
        assert_eq!(r.restart_flag(), None);
        let r = Report::choose("t", false, true, false, false).unwrap();
        assert_eq!(r.restart_flag().as_deref(), Some("--progress=json"));
    }
}

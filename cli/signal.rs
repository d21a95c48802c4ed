//! Checkpoint-signal names and numbers, parsed the way the runtime parses MTCP_SIGNAL.

/// The runtime's default checkpoint signal.
pub const DEFAULT_SIGNAL: u32 = 12; // SIGUSR2

/// glibc's SIGRTMIN: 32 and 33 are taken by its threading code.
const RTMIN: u32 = 34;
const RTMAX: u32 = 64;

/// The names the runtime accepts (rt/config.rs), without the SIG prefix. Fault signals
/// (SEGV, BUS, ...) are left out on purpose: they are only usable by number.
const NAMES: &[(&str, u32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("USR1", 10),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("CHLD", 17),
    ("CONT", 18),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Names shown for signals that `parse` only takes by number.
const OTHER_NAMES: &[(&str, u32)] = &[
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
];

/// The names `parse` takes (without SIG), for completion.
pub fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n).chain(["RTMIN", "RTMAX"])
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses "12", "USR2", "SIGUSR2", "RTMIN", "RTMIN+3", "RTMAX-2". Refuses signals that
/// cannot be caught (KILL, STOP) and the two glibc keeps (32, 33).
pub fn parse(s: &str) -> Option<u32> {
    let name = s.strip_prefix("SIG").unwrap_or(s);
    let sig = if let Some(n) = number(name) {
        n
    } else if name == "RTMIN" {
        RTMIN
    } else if name == "RTMAX" {
        RTMAX
    } else if let Some(off) = name.strip_prefix("RTMIN+") {
        RTMIN.checked_add(number(off)?)?
    } else if let Some(off) = name.strip_prefix("RTMAX-") {
        RTMAX.checked_sub(number(off)?)?
    } else {
        NAMES.iter().find(|(n, _)| *n == name)?.1
    };
    match sig {
        9 | 19 | 32 | 33 => None,
        1..=64 => Some(sig),
        _ => None,
    }
}

/// A readable name for a signal number, e.g. "SIGUSR2" or "SIGRTMIN+3".
pub fn name(sig: u32) -> String {
    if let Some((n, _)) = NAMES.iter().chain(OTHER_NAMES).find(|(_, s)| *s == sig) {
        return format!("SIG{}", n);
    }
    match sig {
        RTMIN => "SIGRTMIN".to_string(),
        s if s > RTMIN && s <= RTMAX => format!("SIGRTMIN+{}", s - RTMIN),
        s => format!("signal {}", s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_names() {
        assert_eq!(parse("12"), Some(12));
        assert_eq!(parse("USR2"), Some(12));
        assert_eq!(parse("SIGUSR2"), Some(12));
        assert_eq!(parse("USR1"), Some(10));
        assert_eq!(parse("SIGHUP"), Some(1));
        assert_eq!(parse("RTMIN"), Some(34));
        assert_eq!(parse("RTMIN+3"), Some(37));
        assert_eq!(parse("SIGRTMIN+30"), Some(64));
        assert_eq!(parse("RTMAX"), Some(64));
        assert_eq!(parse("RTMAX-2"), Some(62));
        assert_eq!(parse("1"), Some(1));
        assert_eq!(parse("64"), Some(64));
        assert_eq!(parse("11"), Some(11));
    }

    #[test]
    fn refuses_bad_signals() {
        for bad in [
            "",
            "0",
            "65",
            "9",
            "19",
            "32",
            "33",
            "KILL",
            "SIGKILL",
            "STOP",
            "SIGSTOP",
            "usr2x",
            "SIG",
            "RTMIN+",
            "RTMIN+31",
            "RTMIN+-1",
            "RTMAX-31",
            "RTMIN+4294967295",
            "4294967308",
            "+12",
            "-12",
            " 12",
            "USR",
        ] {
            assert_eq!(parse(bad), None, "{:?} should be refused", bad);
        }
    }

    #[test]
    fn names_numbers() {
        assert_eq!(name(12), "SIGUSR2");
        assert_eq!(name(34), "SIGRTMIN");
        assert_eq!(name(37), "SIGRTMIN+3");
        assert_eq!(name(11), "SIGSEGV");
        assert_eq!(name(33), "signal 33");
        for s in 1..=64 {
            if let Some(p) = parse(&name(s)) {
                assert_eq!(p, s);
            }
        }
    }
}

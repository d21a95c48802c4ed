//! Parsing the runtime's settings (`MTCP_SIGNAL`, `MTCP_INTERVAL`, `MTCP_DIR`, `MTCP_DELETED_LIMIT`) from the
//! environment block: pure functions, so they can be tested on their own.
#![deny(unsafe_code)]

use crate::maps::dec;

/// SIGUSR2.
pub const DEFAULT_SIGNAL: u32 = 12;

/// Signal numbers by name, without the SIG prefix.
const SIGNAL_NAMES: &[(&[u8], u32)] = &[
    (b"HUP", 1),
    (b"INT", 2),
    (b"QUIT", 3),
    (b"USR1", 10),
    (b"USR2", 12),
    (b"PIPE", 13),
    (b"ALRM", 14),
    (b"TERM", 15),
    (b"CHLD", 17),
    (b"CONT", 18),
    (b"TSTP", 20),
    (b"TTIN", 21),
    (b"TTOU", 22),
    (b"URG", 23),
    (b"XCPU", 24),
    (b"XFSZ", 25),
    (b"VTALRM", 26),
    (b"PROF", 27),
    (b"WINCH", 28),
    (b"IO", 29),
    (b"PWR", 30),
    (b"SYS", 31),
];

/// Parses "12", "USR2", "SIGUSR2", "RTMIN+3". Refuses signals that cannot be caught
/// (KILL, STOP) and the two glibc keeps for itself (32, 33).
pub fn parse_signal(s: &[u8]) -> Option<u32> {
    let name = s.strip_prefix(b"SIG").unwrap_or(s);
    let sig: u64 = if let Some(n) = dec(name) {
        n
    } else if let Some(off) = name.strip_prefix(b"RTMIN+") {
        34u64.checked_add(dec(off)?)?
    } else if name == b"RTMIN" {
        34
    } else {
        SIGNAL_NAMES.iter().find(|(n, _)| *n == name)?.1 as u64
    };
    match sig {
        1..=64 if sig != 9 && sig != 19 && sig != 32 && sig != 33 => Some(sig as u32),
        _ => None,
    }
}

/// An on/off setting (`MTCP_PTRACE`): 1/0, yes/no, on/off.
pub fn parse_switch(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"yes" | b"on" => Some(true),
        b"0" | b"no" | b"off" => Some(false),
        _ => None,
    }
}

/// `MTCP_INTERVAL`: whole seconds that fit in 32 bits (0 means never).
pub fn parse_interval(s: &[u8]) -> Option<u32> {
    dec(s).filter(|&n| n <= u32::MAX as u64).map(|n| n as u32)
}

/// `MTCP_DELETED_LIMIT`'s default: the most bytes of one deleted, still open file that
/// a checkpoint saves.
pub const DEFAULT_DELETED_LIMIT: u64 = 64 << 20;

/// `MTCP_DELETED_LIMIT`: bytes, as decimal digits with an optional `K`, `M` or `G`
/// (powers of 1024).
pub fn parse_deleted_limit(s: &[u8]) -> Option<u64> {
    let (digits, shift) = match s.last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    dec(digits).and_then(|n| n.checked_mul(1u64 << shift))
}

/// Looks `key` up in a NUL-separated environment block (`/proc/self/environ`).
pub fn env_lookup<'a>(environ: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    environ.split(|&c| c == 0).find_map(|entry| {
        let rest = entry.strip_prefix(key)?;
        rest.strip_prefix(b"=")
    })
}

/// The image directory as an absolute path into `out`: `dir` (from `MTCP_DIR`; empty or
/// absent means the current directory) resolved against `cwd`. None if it does not fit.
pub fn absolute_dir<'a>(dir: Option<&[u8]>, cwd: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    let dir = dir.filter(|d| !d.is_empty()).unwrap_or(cwd);
    let mut len = 0;
    let mut push = |part: &[u8]| -> Option<()> {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
        Some(())
    };
    if !dir.starts_with(b"/") {
        push(cwd)?;
        push(b"/")?;
    }
    push(dir)?;
    Some(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal(b"12"), Some(12));
        assert_eq!(parse_signal(b"USR1"), Some(10));
        assert_eq!(parse_signal(b"SIGUSR2"), Some(12));
        assert_eq!(parse_signal(b"RTMIN"), Some(34));
        assert_eq!(parse_signal(b"RTMIN+3"), Some(37));
        assert_eq!(parse_signal(b"SIGRTMIN+30"), Some(64));
    }

    #[test]
    fn signals_the_runtime_cannot_use() {
        for bad in [
            &b"9"[..],
            b"KILL",
            b"STOP",
            b"19",
            b"32",
            b"33",
            b"0",
            b"65",
            b"RTMIN+31",
            b"",
            b"USR3",
            b"usr2",
        ] {
            assert_eq!(parse_signal(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(parse_signal(b"RTMIN+18446744073709551615"), None);
    }

    #[test]
    fn switches() {
        assert_eq!(parse_switch(b"1"), Some(true));
        assert_eq!(parse_switch(b"off"), Some(false));
        assert_eq!(parse_switch(b""), None);
        assert_eq!(parse_switch(b"2"), None);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval(b"0"), Some(0));
        assert_eq!(parse_interval(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_interval(b"4294967296"), None);
        assert_eq!(parse_interval(b"-1"), None);
        assert_eq!(parse_interval(b"1.5"), None);
        assert_eq!(parse_interval(b""), None);
    }

    #[test]
    fn deleted_limits() {
        assert_eq!(parse_deleted_limit(b"0"), Some(0));
        assert_eq!(parse_deleted_limit(b"4096"), Some(4096));
        assert_eq!(parse_deleted_limit(b"8K"), Some(8192));
        assert_eq!(parse_deleted_limit(b"64M"), Some(64 << 20));
        assert_eq!(parse_deleted_limit(b"2g"), Some(2 << 30));
        for bad in [&b""[..], b"M", b"-1", b"1.5", b"1T", b"99999999999999999999"] {
            assert_eq!(parse_deleted_limit(bad), None);
        }
    }

    #[test]
    fn environment_lookup() {
        let env = b"A=1\0MTCP_DIR=/x=y\0MTCP_DIRX=no\0EMPTY=\0";
        assert_eq!(env_lookup(env, b"MTCP_DIR"), Some(&b"/x=y"[..]));
        assert_eq!(env_lookup(env, b"EMPTY"), Some(&b""[..]));
        assert_eq!(env_lookup(env, b"MTCP"), None);
        assert_eq!(env_lookup(b"", b"A"), None);
    }

    #[test]
    fn image_directories() {
        let mut buf = [0u8; 32];
        assert_eq!(absolute_dir(Some(b"/d"), b"/home", &mut buf), Some(&b"/d"[..]));
        assert_eq!(absolute_dir(Some(b"d"), b"/home", &mut buf), Some(&b"/home/d"[..]));
        assert_eq!(absolute_dir(Some(b""), b"/home", &mut buf), Some(&b"/home"[..]));
        assert_eq!(absolute_dir(None, b"/home", &mut buf), Some(&b"/home"[..]));
        assert_eq!(absolute_dir(Some(&[b'x'; 40]), b"/h", &mut buf), None);
    }
}

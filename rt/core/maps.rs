//! Parsing /proc/self/maps and /proc/self/smaps into memory-region entries.
#![deny(unsafe_code)]

/// VmFlags from smaps that change how a region must be rebuilt.
pub const VM_GROWSDOWN: u32 = 1 << 0; // gd
pub const VM_NORESERVE: u32 = 1 << 1; // nr
pub const VM_DONTFORK: u32 = 1 << 2; // dc
pub const VM_WIPEONFORK: u32 = 1 << 3; // wf
pub const VM_DONTDUMP: u32 = 1 << 4; // dd
pub const VM_HUGEPAGE: u32 = 1 << 5; // hg
pub const VM_NOHUGEPAGE: u32 = 1 << 6; // nh
pub const VM_MERGEABLE: u32 = 1 << 7; // mg
pub const VM_IO: u32 = 1 << 8; // io: device memory, cannot be saved

#[derive(Clone, Copy, Default)]
pub struct MapEntry {
    pub start: usize,
    pub end: usize,
    /// PROT_* bits.
    pub prot: u32,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// Byte range of the path within the text the entry was parsed from.
    pub path_start: usize,
    pub path_len: usize,
    /// From smaps only (0 when parsed from maps).
    pub rss_kb: u64,
    pub swap_kb: u64,
    pub vmflags: u32,
    /// True once an smaps "VmFlags" line was seen.
    pub have_vmflags: bool,
}

impl MapEntry {
    pub fn path<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        &text[self.path_start..self.path_start + self.path_len]
    }
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v.checked_mul(16)?.checked_add(d as u64)?;
    }
    Some(v)
}

pub fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Splits off the next space-delimited field, skipping leading spaces.
fn field<'a>(s: &mut &'a [u8]) -> &'a [u8] {
    while let [b' ', rest @ ..] = *s {
        *s = rest;
    }
    let end = s.iter().position(|&c| c == b' ').unwrap_or(s.len());
    let (f, rest) = s.split_at(end);
    *s = rest;
    f
}

/// Parses one maps header line: `start-end perms offset major:minor inode   path`.
/// `base` is the line's offset within the whole text (for the path range).
pub fn parse_header_line(line: &[u8], base: usize) -> Option<MapEntry> {
    let mut s = line;
    let range = field(&mut s);
    let dash = range.iter().position(|&c| c == b'-')?;
    // An address this build cannot hold is refused, never truncated.
    let start = usize::try_from(hex(&range[..dash])?).ok()?;
    let end = usize::try_from(hex(&range[dash + 1..])?).ok()?;
    let perms = field(&mut s);
    if perms.len() < 4 {
        return None;
    }
    let mut prot = 0;
    if perms[0] == b'r' {
        prot |= 1;
    }
    if perms[1] == b'w' {
        prot |= 2;
    }
    if perms[2] == b'x' {
        prot |= 4;
    }
    let shared = perms[3] == b's';
    let offset = hex(field(&mut s))?;
    let dev = field(&mut s);
    let colon = dev.iter().position(|&c| c == b':')?;
    let dev_major = hex(&dev[..colon])? as u32;
    let dev_minor = hex(&dev[colon + 1..])? as u32;
    let inode = dec(field(&mut s))?;
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    let path_start = base + (line.len() - s.len());
    Some(MapEntry {
        start,
        end,
        prot,
        shared,
        offset,
        dev_major,
        dev_minor,
        inode,
        path_start,
        path_len: s.len(),
        ..MapEntry::default()
    })
}

fn is_header(line: &[u8]) -> bool {
    // Header lines start with a hex address; smaps detail lines start with a capital
    // letter key ("Rss:", "VmFlags:").
    match line.first() {
        Some(c) => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        None => false,
    }
}

fn parse_vmflags(mut s: &[u8]) -> u32 {
    let mut flags = 0;
    loop {
        let f = field(&mut s);
        if f.is_empty() {
            return flags;
        }
        flags |= match f {
            b"gd" => VM_GROWSDOWN,
            b"nr" => VM_NORESERVE,
            b"dc" => VM_DONTFORK,
            b"wf" => VM_WIPEONFORK,
            b"dd" => VM_DONTDUMP,
            b"hg" => VM_HUGEPAGE,
            b"nh" => VM_NOHUGEPAGE,
            b"mg" => VM_MERGEABLE,
            b"io" => VM_IO,
            _ => 0,
        };
    }
}

/// Iterates over the entries of maps or smaps text.
pub struct Entries<'t> {
    text: &'t [u8],
    pos: usize,
}

pub fn entries(text: &[u8]) -> Entries<'_> {
    Entries { text, pos: 0 }
}

impl<'t> Entries<'t> {
    fn next_line(&mut self) -> Option<(&'t [u8], usize)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        let base = self.pos;
        self.pos += len + 1;
        Some((&rest[..len], base))
    }

    fn peek_is_header(&self) -> bool {
        self.pos >= self.text.len() || is_header(&self.text[self.pos..])
    }
}

impl<'t> Iterator for Entries<'t> {
    /// None inside means a line that could not be parsed: the caller must refuse
    /// rather than guess.
    type Item = Option<MapEntry>;

    fn next(&mut self) -> Option<Option<MapEntry>> {
        let (line, base) = self.next_line()?;
        let mut entry = match parse_header_line(line, base) {
            Some(e) => e,
            None => return Some(None),
        };
        while !self.peek_is_header() {
            let (line, _) = self.next_line()?;
            if let Some(v) = line.strip_prefix(b"Rss:") {
                entry.rss_kb = kb(v);
            } else if let Some(v) = line.strip_prefix(b"Swap:") {
                entry.swap_kb = kb(v);
            } else if let Some(v) = line.strip_prefix(b"VmFlags:") {
                entry.vmflags = parse_vmflags(v);
                entry.have_vmflags = true;
            }
        }
        Some(Some(entry))
    }
}

fn kb(mut v: &[u8]) -> u64 {
    dec(field(&mut v)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &[u8] = b"\
5600a000-5602b000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Rss:                   8 kB
Swap:                  4 kB
VmFlags: rd wr mr mw me ac sd
f7c00000-f7e00000 r-xp 00028000 fd:01 1311042                    /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 800 kB
VmFlags: rd ex mr mw me sd
f7f00000-f7f01000 rw-s 00000000 00:05 77 /memfd:shm (deleted)
VmFlags: rd wr sh mr mw me ms sd dc wf dd hg nh mg
ffdd0000-ffdf1000 rw-p 00000000 00:00 0                          [stack]
Rss:                  12 kB
VmFlags: rd wr mr mw me gd ac nr io
ffff0000-ffff2000 r-xp 00000000 00:00 0 
";

    fn all(text: &[u8]) -> std::vec::Vec<Option<MapEntry>> {
        entries(text).collect()
    }

    #[test]
    fn smaps_entries_and_details() {
        let e = all(SMAPS);
        assert_eq!(e.len(), 5);
        let heap = e[0].unwrap();
        assert_eq!((heap.start, heap.end), (0x5600a000, 0x5602b000));
        assert_eq!((heap.prot, heap.shared, heap.rss_kb, heap.swap_kb), (3, false, 8, 4));
        assert_eq!(heap.path(SMAPS), b"[heap]");
        assert!(heap.have_vmflags && heap.vmflags == 0);

        let libc = e[1].unwrap();
        assert_eq!(
            (libc.prot, libc.offset, libc.dev_major, libc.dev_minor, libc.inode),
            (5, 0x28000, 0xfd, 1, 1311042)
        );
        assert_eq!(libc.path(SMAPS), b"/usr/lib/x86_64-linux-gnu/libc.so.6");

        let shm = e[2].unwrap();
        assert!(shm.shared);
        assert_eq!(shm.path(SMAPS), b"/memfd:shm (deleted)", "paths keep their spaces");
        let all_hints = VM_DONTFORK | VM_WIPEONFORK | VM_DONTDUMP | VM_HUGEPAGE | VM_NOHUGEPAGE | VM_MERGEABLE;
        assert_eq!(shm.vmflags, all_hints);

        let stack = e[3].unwrap();
        assert_eq!(stack.vmflags, VM_GROWSDOWN | VM_NORESERVE | VM_IO);

        let anon = e[4].unwrap();
        assert_eq!(anon.path(SMAPS), b"", "a trailing space is no path");
        assert!(!anon.have_vmflags);
    }

    #[test]
    fn plain_maps_lines() {
        let text = b"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n";
        let e = all(text);
        assert_eq!(e.len(), 1);
        let d = e[0].unwrap();
        assert_eq!((d.start, d.end, d.prot, d.inode), (0x400000, 0x452000, 5, 173521));
        assert_eq!((d.rss_kb, d.have_vmflags), (0, false));
        assert!(all(b"").is_empty());
    }

    #[test]
    fn malformed_lines_are_reported_not_guessed() {
        for bad in [
            &b"zzzz-0001 r-xp 00000000 08:02 1 /x\n"[..],
            b"0000-0001 r 00000000 08:02 1 /x\n",
            b"0000-0001 r-xp 00000000 0802 1 /x\n",
            b"0000-0001 r-xp 00000000 08:02 x /x\n",
            b"00000001 r-xp 00000000 08:02 1 /x\n",
        ] {
            assert_eq!(all(bad).len(), 1);
            assert!(all(bad)[0].is_none(), "{:?}", core::str::from_utf8(bad));
        }
        let huge = b"10000000000000000-1 r-xp 0 08:02 1 /x\n";
        assert!(all(huge)[0].is_none(), "an address past 64 bits");
        let wide = b"100000000-100001000 r-xp 0 08:02 1 /x\n";
        assert_eq!(
            all(wide)[0].is_none(),
            cfg!(target_pointer_width = "32"),
            "wider than usize"
        );
    }

    #[test]
    fn decimal_numbers() {
        assert_eq!(dec(b"0"), Some(0));
        assert_eq!(dec(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(dec(b"18446744073709551616"), None);
        assert_eq!(dec(b""), None);
        assert_eq!(dec(b"1a"), None);
        assert_eq!(dec(b" 1"), None);
    }
}

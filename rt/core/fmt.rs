//! Formatting into fixed buffers, for messages and file names built without an allocator.
#![deny(unsafe_code)]

use core::fmt;

/// A fixed-capacity text buffer; writes past the end are cut off, never a panic.
pub struct FmtBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FmtBuf<N> {
    pub const fn new() -> Self {
        FmtBuf { buf: [0; N], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn push_bytes(&mut self, b: &[u8]) {
        let n = core::cmp::min(b.len(), N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }
}

impl<const N: usize> Default for FmtBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FmtBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

/// Bytes shown as text, replacing invalid UTF-8.
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

/// Bytes as a JSON string literal (quoted and escaped), invalid UTF-8 replaced.
pub struct JsonStr<'a>(pub &'a [u8]);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        f.write_char('"')?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
                    c => f.write_char(c)?,
                }
            }
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        f.write_char('"')
    }
}

/// An errno shown by name ("ENOSPC") or number.
pub struct ErrnoName(pub syscalls::Errno);

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.name(), self.0.description()) {
            (Some(n), Some(d)) => write!(f, "{} ({})", n, d),
            (Some(n), None) => f.write_str(n),
            _ => write!(f, "errno {}", self.0.into_raw()),
        }
    }
}

/// Writes a formatted one-line message to stderr.
#[macro_export]
macro_rules! eprint_line {
    ($($arg:tt)*) => {{
        let mut b = $crate::fmt::FmtBuf::<1024>::new();
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!($($arg)*));
        b.push_bytes(b"\n");
        $crate::sys::write_stderr(b.as_bytes());
    }};
}

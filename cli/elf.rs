//! A small little-endian ELF reader (ELFCLASS32 and ELFCLASS64): class, machine, PT_INTERP and defined symbols.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use mtcp_core::protocol::{NOTE_NAME, NOTE_TYPE};

pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;

const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHT_NOTE: u32 = 7;
/// e_phnum value meaning "the real count is in section 0's sh_info".
const PN_XNUM: u16 = 0xffff;

struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

pub struct Elf {
    file: File,
    len: u64,
    pub class64: bool,
    pub machine: u16,
    /// The program interpreter named by PT_INTERP, without its NUL.
    pub interp: Option<Vec<u8>>,
    sections: Vec<Section>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Elf {
    /// True if the first bytes of a file are an ELF magic number.
    pub fn is_elf(head: &[u8]) -> bool {
        head.starts_with(b"\x7fELF")
    }

    pub fn open(path: &Path) -> Result<Elf, String> {
        let file = File::open(path).map_err(|e| crate::io_msg(&e))?;
        let len = file.metadata().map_err(|e| crate::io_msg(&e))?.len();
        let mut elf = Elf {
            file,
            len,
            class64: false,
            machine: 0,
            interp: None,
            sections: Vec::new(),
        };
        elf.load()?;
        Ok(elf)
    }

    /// Reads `size` bytes at `offset`, refusing ranges outside the file so that a
    /// corrupt header cannot make us allocate or read garbage.
    fn read(&self, offset: u64, size: u64) -> Result<Vec<u8>, String> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len => {}
            _ => return Err("ELF file is truncated or corrupt".to_string()),
        }
        let mut buf = vec![0u8; size as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| crate::io_msg(&e))?;
        Ok(buf)
    }

    fn load(&mut self) -> Result<(), String> {
        let ident = self
            .read(0, 16.min(self.len))
            .map_err(|_| "not an ELF file".to_string())?;
        if ident.len() < 16 || !Elf::is_elf(&ident) {
            return Err("not an ELF file".to_string());
        }
        self.class64 = match ident[4] {
            1 => false,
            2 => true,
            c => return Err(format!("unknown ELF class {}", c)),
        };
        if ident[5] != 1 {
            return Err("big-endian ELF files are not supported".to_string());
        }
        let ehsize = if self.class64 { 64 } else { 52 };
        let h = self.read(0, ehsize)?;
        self.machine = u16_at(&h, 18);
        let (phoff, shoff, phentsize, mut phnum, shentsize, mut shnum) = if self.class64 {
            (
                u64_at(&h, 32),
                u64_at(&h, 40),
                u16_at(&h, 54),
                u16_at(&h, 56) as u64,
                u16_at(&h, 58),
                u16_at(&h, 60) as u64,
            )
        } else {
            let w = |o| u32_at(&h, o) as u64;
            (
                w(28),
                w(32),
                u16_at(&h, 42),
                u16_at(&h, 44) as u64,
                u16_at(&h, 46),
                u16_at(&h, 48) as u64,
            )
        };
        let (ph_min, sh_min) = if self.class64 { (56, 64) } else { (32, 40) };

        // Section headers first: extended numbering keeps the real counts in section 0.
        if shoff != 0 {
            if (shentsize as u64) < sh_min {
                return Err("ELF section headers are corrupt".to_string());
            }
            let s0 = self.section_header(shoff, shentsize)?;
            if shnum == 0 {
                shnum = s0.size;
            }
            if phnum == PN_XNUM as u64 {
                phnum = s0.info as u64;
            }
            let total = shnum
                .checked_mul(shentsize as u64)
                .ok_or("ELF section headers are corrupt")?;
            let all = self.read(shoff, total)?;
            for i in 0..shnum as usize {
                let b = &all[i * shentsize as usize..];
                self.sections.push(Elf::parse_section(self.class64, b).0);
            }
        }

        if phnum != 0 {
            if (phentsize as u64) < ph_min {
                return Err("ELF program headers are corrupt".to_string());
            }
            let total = phnum
                .checked_mul(phentsize as u64)
                .ok_or("ELF program headers are corrupt")?;
            let all = self.read(phoff, total)?;
            for i in 0..phnum as usize {
                let b = &all[i * phentsize as usize..];
                if u32_at(b, 0) != PT_INTERP {
                    continue;
                }
                let (off, size) = if self.class64 {
                    (u64_at(b, 8), u64_at(b, 32))
                } else {
                    (u32_at(b, 4) as u64, u32_at(b, 16) as u64)
                };
                let mut s = self.read(off, size)?;
                if let Some(nul) = s.iter().position(|&c| c == 0) {
                    s.truncate(nul);
                }
                self.interp = Some(s);
                break;
            }
        }
        Ok(())
    }

    fn section_header(&self, shoff: u64, shentsize: u16) -> Result<SectionExtra, String> {
        let b = self.read(shoff, shentsize as u64)?;
        Ok(Elf::parse_section(self.class64, &b).1)
    }

    fn parse_section(class64: bool, b: &[u8]) -> (Section, SectionExtra) {
        if class64 {
            let s = Section {
                kind: u32_at(b, 4),
                offset: u64_at(b, 24),
                size: u64_at(b, 32),
                link: u32_at(b, 40),
                entsize: u64_at(b, 56),
            };
            let x = SectionExtra {
                size: s.size,
                info: u32_at(b, 44),
            };
            (s, x)
        } else {
            let w = |o| u32_at(b, o) as u64;
            let s = Section {
                kind: u32_at(b, 4),
                offset: w(16),
                size: w(20),
                link: u32_at(b, 24),
                entsize: w(36),
            };
            let x = SectionExtra {
                size: s.size,
                info: u32_at(b, 28),
            };
            (s, x)
        }
    }

    /// True if the file carries the mtcp runtime: it defines `mtcp_checkpoint`, or (even
    /// when stripped) has the runtime's ELF note (`mtcp_core::protocol`).
    pub fn carries_runtime(&self) -> Result<bool, String> {
        if self.defines("mtcp_checkpoint")? {
            return Ok(true);
        }
        for sec in self.sections.iter().filter(|s| s.kind == SHT_NOTE) {
            let data = self.read(sec.offset, sec.size)?;
            let mut pos = 0usize;
            while pos + 12 <= data.len() {
                let namesz = u32_at(&data, pos) as usize;
                let descsz = u32_at(&data, pos + 4) as usize;
                let kind = u32_at(&data, pos + 8);
                let name_start = pos + 12;
                let desc_start = name_start + namesz.div_ceil(4) * 4;
                if name_start + namesz > data.len() {
                    break;
                }
                if kind == NOTE_TYPE && &data[name_start..name_start + namesz] == NOTE_NAME {
                    return Ok(true);
                }
                pos = desc_start + descsz.div_ceil(4) * 4;
            }
        }
        Ok(false)
    }

    /// True if .dynsym or .symtab defines `name` (st_shndx != SHN_UNDEF).
    pub fn defines(&self, name: &str) -> Result<bool, String> {
        let want = name.as_bytes();
        let sym_size: u64 = if self.class64 { 24 } else { 16 };
        for sec in self
            .sections
            .iter()
            .filter(|s| s.kind == SHT_SYMTAB || s.kind == SHT_DYNSYM)
        {
            let strtab = match self.sections.get(sec.link as usize) {
                Some(s) => s,
                None => continue,
            };
            let entsize = if sec.entsize >= sym_size { sec.entsize } else { sym_size };
            let syms = self.read(sec.offset, sec.size)?;
            let strs = self.read(strtab.offset, strtab.size)?;
            for sym in syms.chunks_exact(entsize as usize) {
                let (name_off, shndx) = if self.class64 {
                    (u32_at(sym, 0), u16_at(sym, 6))
                } else {
                    (u32_at(sym, 0), u16_at(sym, 14))
                };
                if shndx == 0 {
                    continue;
                }
                let start = name_off as usize;
                if start >= strs.len() {
                    continue;
                }
                let rest = &strs[start..];
                let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                if &rest[..end] == want {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// The fields of section 0 that extended numbering uses.
struct SectionExtra {
    size: u64,
    info: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;
    use std::process::Command;

    fn have_gcc() -> bool {
        Command::new("gcc")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Compiles `src` with gcc and `flags`; None if this gcc cannot (e.g. no multilib).
    fn compile(dir: &TempDir, name: &str, src: &str, flags: &[&str]) -> Option<std::path::PathBuf> {
        let c = dir.join(&format!("{}.c", name));
        let out = dir.join(name);
        std::fs::write(&c, src).unwrap();
        let ok = Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(&c)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(out)
    }

    #[test]
    fn bin_sh_is_dynamic() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let elf = Elf::open(&sh).unwrap();
        assert!(elf.interp.is_some(), "/bin/sh should have PT_INTERP");
        assert!(elf.interp.as_ref().unwrap().starts_with(b"/"));
        assert!(!elf.defines("mtcp_checkpoint").unwrap());
        if cfg!(target_arch = "x86_64") {
            assert!(elf.class64);
            assert_eq!(elf.machine, EM_X86_64);
        }
    }

    #[test]
    fn not_elf() {
        let dir = TempDir::new("elf-not-elf");
        let p = dir.join("text");
        std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
        assert!(Elf::open(&p).is_err());
        let p = dir.join("empty");
        std::fs::write(&p, b"").unwrap();
        assert!(Elf::open(&p).is_err());
        let p = dir.join("short");
        std::fs::write(&p, b"\x7fELF\x02\x01\x01").unwrap();
        assert!(Elf::open(&p).is_err());
    }

    #[test]
    fn static_and_symbol() {
        if !have_gcc() {
            eprintln!("gcc is missing: skipping the static ELF checks");
            return;
        }
        let dir = TempDir::new("elf-static");
        // -nostdlib keeps this independent of whether libc.a is installed.
        let st = compile(
            &dir,
            "static",
            "void _start(void) { for (;;) ; }\n",
            &["-static", "-nostdlib", "-O1"],
        )
        .expect("gcc -static failed");
        let elf = Elf::open(&st).unwrap();
        assert!(elf.interp.is_none(), "a static program has no PT_INTERP");
        assert!(!elf.defines("mtcp_checkpoint").unwrap());
        assert!(elf.defines("_start").unwrap());

        let with = compile(
            &dir,
            "with",
            "int mtcp_checkpoint(void) { return 0; }\nint main(void) { return mtcp_checkpoint(); }\n",
            &[],
        )
        .expect("gcc failed");
        let elf = Elf::open(&with).unwrap();
        assert!(elf.interp.is_some());
        assert!(elf.defines("mtcp_checkpoint").unwrap());

        // Stripped: only .dynsym is left, so the symbol must be exported to be found.
        let exported = compile(
            &dir,
            "exported",
            "int mtcp_checkpoint(void) { return 0; }\nint main(void) { return 0; }\n",
            &["-rdynamic", "-s"],
        )
        .expect("gcc failed");
        assert!(Elf::open(&exported).unwrap().defines("mtcp_checkpoint").unwrap());

        // An undefined reference (st_shndx == 0) does not count.
        let undef = compile(&dir, "undef", "extern int mtcp_checkpoint(void) __attribute__((weak));\nint main(void) { return mtcp_checkpoint ? 1 : 0; }\n", &[])
            .expect("gcc failed");
        assert!(!Elf::open(&undef).unwrap().defines("mtcp_checkpoint").unwrap());

        // 32-bit, when this gcc has multilib support.
        if let Some(p) = compile(&dir, "m32", "int main(void) { return 0; }\n", &["-m32"]) {
            let elf = Elf::open(&p).unwrap();
            assert!(!elf.class64);
            assert_eq!(elf.machine, EM_386);
            assert!(elf.interp.is_some());
        }
    }
}

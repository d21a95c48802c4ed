//! Reading an image: its header and metadata checked on opening, its saved memory
//! checked against the checksums on demand. The `mtcp` tool reads images with this.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mtcp_core::image::{
    self, FdRecord, Header, Meta, MetaIndex, ProcessRecord, RegionChecksum, RegionRecord, StrRef, ThreadRecord,
    TimerRecord,
};

use crate::Error;

/// Saved memory is hashed in pieces of this size, so that huge regions need little memory.
const CHUNK: u64 = 1 << 20;

/// Opens an image and checks its header only (magic, version, checksum, layout, size):
/// enough to know its architecture and where its parts are.
///
/// ```no_run
/// let (_file, header) = mtcp_api::read_header("ckpt_solver_4242.mtcp")?;
/// println!("an {} image, {} bytes", mtcp_api::format::arch_name(header.arch), header.file_size);
/// # Ok::<(), mtcp_api::Error>(())
/// ```
pub fn read_header(path: impl AsRef<Path>) -> Result<(File, Header), Error> {
    let path = path.as_ref();
    let io = |reading, error| Error::Io {
        path: path.to_path_buf(),
        reading,
        error,
    };
    // Non-blocking, so that a FIFO or a device given as the image cannot hang the open;
    // only a regular file is read.
    const O_NONBLOCK: i32 = 0o4000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| io(false, e))?;
    let md = file.metadata().map_err(|e| io(false, e))?;
    if !md.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            directory: md.is_dir(),
        });
    }
    let mut head = vec![0u8; image::HEADER_SIZE.min(md.len() as usize)];
    file.read_exact_at(&mut head, 0).map_err(|e| io(true, e))?;
    match image::parse_header(&head, md.len()) {
        Ok(h) => Ok((file, h)),
        Err(error) => Err(Error::Format {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// An image whose header and metadata were read and checked: the process, its threads,
/// regions, files and timers can be looked at; [`Image::verify`] checks the memory.
pub struct Image {
    path: PathBuf,
    file: File,
    header: Header,
    meta_bytes: Vec<u8>,
    index: MetaIndex,
    thread_count: usize,
    region_count: usize,
    run_count: usize,
}

/// One region's stored and recomputed checksum of its saved memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionCheck {
    pub stored: u64,
    pub computed: u64,
    pub saved_pages: u64,
}

impl RegionCheck {
    pub fn ok(&self) -> bool {
        self.stored == self.computed
    }
}

impl Image {
    /// Opens the image at `path` and checks its header and metadata (checksum, and that
    /// every table and run lies where it must). The memory is checked by `verify`.
    pub fn open(path: impl AsRef<Path>) -> Result<Image, Error> {
        let (file, header) = read_header(&path)?;
        Image::with_header(path, file, header)
    }

    /// `open`, for an image whose header `read_header` has read already.
    pub fn with_header(path: impl AsRef<Path>, file: File, header: Header) -> Result<Image, Error> {
        let path = path.as_ref().to_path_buf();
        let mut meta_bytes = vec![0u8; header.meta_size as usize];
        if let Err(error) = file.read_exact_at(&mut meta_bytes, header.meta_offset) {
            return Err(Error::Io {
                path,
                reading: true,
                error,
            });
        }
        let (index, thread_count, region_count, run_count) = match Meta::parse(&header, &meta_bytes) {
            Ok(m) => (m.index, m.thread_count, m.region_count, m.run_count),
            Err(error) => return Err(Error::Format { path, error }),
        };
        Ok(Image {
            path,
            file,
            header,
            meta_bytes,
            index,
            thread_count,
            region_count,
            run_count,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The checked metadata, for every record of the format.
    pub fn meta(&self) -> Meta<'_> {
        Meta {
            bytes: &self.meta_bytes,
            index: self.index,
            thread_count: self.thread_count,
            region_count: self.region_count,
            run_count: self.run_count,
        }
    }

    /// The process record: pids, generation, signal dispositions, limits, and more.
    pub fn process(&self) -> ProcessRecord {
        self.meta().process()
    }

    /// The program's name (its `comm`, as `ps` shows it).
    pub fn program_name(&self) -> String {
        let comm = self.process().comm;
        let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
        String::from_utf8_lossy(&comm[..end]).into_owned()
    }

    /// The executable's path and the working directory at checkpoint time, as bytes.
    pub fn exe(&self) -> &[u8] {
        self.string(self.process().exe)
    }

    pub fn cwd(&self) -> &[u8] {
        self.string(self.process().cwd)
    }

    /// When the checkpoint was taken.
    pub fn taken_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(self.header.time_sec, self.header.time_nsec)
    }

    /// `"x86_64"` or `"i386"`.
    pub fn arch_name(&self) -> &'static str {
        image::arch_name(self.header.arch)
    }

    pub fn thread_count(&self) -> usize {
        self.thread_count
    }

    pub fn threads(&self) -> impl Iterator<Item = ThreadRecord> + '_ {
        (0..self.thread_count).map(move |i| self.meta().thread(i))
    }

    pub fn region_count(&self) -> usize {
        self.region_count
    }

    pub fn regions(&self) -> impl Iterator<Item = RegionRecord> + '_ {
        (0..self.region_count).map(move |i| self.meta().region(i))
    }

    pub fn files(&self) -> impl Iterator<Item = FdRecord> + '_ {
        (0..self.meta().fd_count()).map(move |i| self.meta().fd(i))
    }

    pub fn timers(&self) -> impl Iterator<Item = TimerRecord> + '_ {
        (0..self.meta().timer_count()).map(move |i| self.meta().timer(i))
    }

    /// A string of the metadata (a path, say), empty if the reference is bad.
    pub fn string(&self, s: StrRef) -> &[u8] {
        self.meta().string(s)
    }

    /// Reads every region's saved memory and hashes it: each region's stored and
    /// recomputed checksum, in region order.
    pub fn region_checks(&self) -> Result<Vec<RegionCheck>, Error> {
        let page = self.header.page_size as u64;
        let meta = self.meta();
        let mut buf = vec![0u8; CHUNK as usize];
        let mut checks = Vec::with_capacity(self.region_count);
        for r in self.regions() {
            let mut h = RegionChecksum::new(self.header.version);
            let mut saved_pages = 0;
            for j in 0..r.run_count as usize {
                let run = meta.run(r.run_first as usize + j);
                h.start_run(&run);
                saved_pages += run.pages;
                let mut off = run.file_offset;
                let end = run.file_offset + run.pages * page;
                while off < end {
                    let n = (end - off).min(CHUNK) as usize;
                    self.file.read_exact_at(&mut buf[..n], off).map_err(|error| Error::Io {
                        path: self.path.clone(),
                        reading: true,
                        error,
                    })?;
                    h.update(&buf[..n]);
                    off += n as u64;
                }
            }
            checks.push(RegionCheck {
                stored: r.data_checksum,
                computed: h.digest(),
                saved_pages,
            });
        }
        Ok(checks)
    }

    /// Checks every region's saved memory against its checksum (see `region_checks`).
    pub fn verify(&self) -> Result<(), Error> {
        self.verdict(&self.region_checks()?)
    }

    /// What `verify` says of these checks: Ok, or how many regions failed.
    pub fn verdict(&self, checks: &[RegionCheck]) -> Result<(), Error> {
        match checks.iter().filter(|c| !c.ok()).count() {
            0 => Ok(()),
            bad => Err(Error::Corrupt {
                path: self.path.clone(),
                bad,
                regions: checks.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtcp_core::image::FormatError;
    use mtcp_core::sample_image::{sample_image, SAMPLE_EXE, SAMPLE_PID};

    /// A scratch directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("mtcp-api-test-{}-{}", tag, std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Opens and checks an image file; each region's checksum verdict.
    fn check_file(dir: &TempDir, bytes: &[u8], name: &str) -> Result<Vec<bool>, Error> {
        let path = dir.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        let image = Image::open(&path)?;
        assert_eq!(image.process().pid, SAMPLE_PID);
        assert_eq!(image.exe(), SAMPLE_EXE);
        assert_eq!(image.string(image.meta().region(0).path), b"[heap]");
        assert_eq!(image.regions().count(), image.region_count());
        let checks = image.region_checks()?;
        assert_eq!(checks[0].saved_pages, 2);
        assert_eq!(checks[1].saved_pages, 0);
        assert_eq!(image.verify().is_ok(), checks.iter().all(RegionCheck::ok));
        Ok(checks.iter().map(|c| c.ok()).collect())
    }

    #[test]
    fn whole_image_checks() {
        let dir = TempDir::new("image");
        let good = sample_image().to_vec();
        assert_eq!(check_file(&dir, &good, "good.mtcp").unwrap(), vec![true, true]);

        let mut bad_data = good.clone();
        let last = bad_data.len() - 1;
        bad_data[last] ^= 1;
        assert_eq!(check_file(&dir, &bad_data, "bad-data.mtcp").unwrap(), vec![false, true]);
        let image = Image::open(dir.0.join("bad-data.mtcp")).unwrap();
        let e = image.verify().unwrap_err();
        assert!(matches!(e, Error::Corrupt { bad: 1, regions: 2, .. }), "{e:?}");
        assert!(e
            .to_string()
            .ends_with("bad-data.mtcp: 1 of 2 regions have bad data checksums"));

        let mut bad_meta = good.clone();
        bad_meta[4096 + 60] ^= 1;
        match check_file(&dir, &bad_meta, "bad-meta.mtcp") {
            Err(Error::Format {
                error: FormatError::BadMetaChecksum,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }

        let short = &good[..good.len() - 1];
        let err = check_file(&dir, short, "short.mtcp").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{}", err);
        assert!(matches!(
            read_header(&dir.0),
            Err(Error::NotAFile { directory: true, .. })
        ));
        let missing = read_header(dir.0.join("nope")).unwrap_err().to_string();
        assert!(
            missing.starts_with("cannot open ") && missing.ends_with("No such file or directory"),
            "{missing}"
        );
    }
}

//! `mtcp inspect` on a hand-built image (mtcp_core's sample), good and damaged.

use mtcp_core::sample_image::{sample_image, SAMPLE_EXE, SAMPLE_PID};

use crate::image::*;

/// Opens, parses and verifies an image file the way `mtcp inspect` does.
fn check_file(dir: &crate::TempDir, bytes: &[u8], name: &str) -> Result<Vec<bool>, String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let (file, header) = crate::inspect::open_image(&path).map_err(|e| format!("{:?}", e))?;
    let mut meta_bytes = vec![0u8; header.meta_size as usize];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut meta_bytes, header.meta_offset).unwrap();
    let meta = Meta::parse(&header, &meta_bytes).map_err(|e| e.message().to_string())?;
    assert_eq!(meta.process().pid, SAMPLE_PID);
    assert_eq!(meta.string(meta.process().exe), SAMPLE_EXE);
    assert_eq!(meta.string(meta.region(0).path), b"[heap]");
    let checks = crate::inspect::verify(&file, &header, &meta).unwrap();
    assert_eq!(checks[0].saved_pages, 2);
    assert_eq!(checks[1].saved_pages, 0);
    Ok(checks.iter().map(|c| c.ok()).collect())
}

#[test]
fn whole_image_checks() {
    let dir = crate::TempDir::new("format-image");
    let good = sample_image().to_vec();
    assert_eq!(check_file(&dir, &good, "good.mtcp").unwrap(), vec![true, true]);

    let mut bad_data = good.clone();
    let last = bad_data.len() - 1;
    bad_data[last] ^= 1;
    assert_eq!(check_file(&dir, &bad_data, "bad-data.mtcp").unwrap(), vec![false, true]);

    let mut bad_meta = good.clone();
    bad_meta[4096 + 60] ^= 1;
    assert_eq!(
        check_file(&dir, &bad_meta, "bad-meta.mtcp").unwrap_err(),
        FormatError::BadMetaChecksum.message()
    );

    let short = &good[..good.len() - 1];
    let err = check_file(&dir, short, "short.mtcp").unwrap_err();
    assert!(err.contains("truncated"), "{}", err);
}

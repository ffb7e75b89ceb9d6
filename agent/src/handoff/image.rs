//! The Image handoff's write: the target streamed onto the disk while it is hashed. A digest
//! mismatch or a failed download leaves the disk unbootable (first and last MiB zeroed) rather
//! than half-written.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::digest::{self, HashingReader, Mismatch};
use super::wipe;
use crate::cmdline::Sha256Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The download failed (the disk was wiped).
    #[error("downloading the image failed after {written} bytes: {source}")]
    Read { written: u64, source: io::Error },
    /// Writing the disk failed (the disk was wiped, if it still could be).
    #[error("writing the image to the disk failed after {written} bytes: {source}")]
    Write { written: u64, source: io::Error },
    #[error("the image does not fit: {image} bytes on a disk of {disk}")]
    TooLarge { image: u64, disk: u64 },
    /// The digest did not match (the disk was wiped).
    #[error("{0}; the disk's first and last MiB were zeroed")]
    Digest(Mismatch),
}

/// Writes `source` onto `disk` from offset 0, hashing it; checks `expected`. The disk's size
/// bounds the image (a file standing in for a disk is not allowed to grow). Returns the bytes
/// written.
pub fn write_image(
    source: impl Read,
    disk: &mut File,
    expected: &Sha256Digest,
) -> Result<u64, ImageError> {
    let disk_size =
        wipe::size_of(disk).map_err(|source| ImageError::Write { written: 0, source })?;
    let mut hashing = HashingReader::new(source);
    let mut buf = vec![0u8; 4 << 20];
    let mut written = 0u64;
    let outcome = loop {
        let n = match hashing.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => break Err(ImageError::Read { written, source }),
        };
        if written + n as u64 > disk_size {
            break Err(ImageError::TooLarge {
                image: written + n as u64,
                disk: disk_size,
            });
        }
        if let Err(source) = disk.write_all(&buf[..n]) {
            break Err(ImageError::Write { written, source });
        }
        written += n as u64;
    };
    let outcome = outcome.and_then(|()| {
        disk.sync_all()
            .map_err(|source| ImageError::Write { written, source })?;
        let (actual, _) = hashing
            .finish()
            .map_err(|source| ImageError::Read { written, source })?;
        digest::check(expected, &actual).map_err(ImageError::Digest)
    });
    match outcome {
        Ok(()) => Ok(written),
        Err(e) => {
            // Best effort: the error that brought us here is the one to report.
            let _ = disk.seek(SeekFrom::Start(0));
            let _ = wipe::zero_ends(disk, 0, disk_size);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::digest::sha256;
    use crate::handoff::tar::tests::scratch;
    use crate::handoff::wipe::MIB;

    fn disk(len: usize, fill: u8) -> (std::path::PathBuf, File) {
        let dir = scratch("image");
        let path = dir.join("disk");
        std::fs::write(&path, vec![fill; len]).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, f)
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn a_good_image_is_written_byte_for_byte() {
        let (dir, mut f) = disk(8 * MIB as usize, 0xee);
        let img = image(3 * MIB as usize + 17);
        let n = write_image(&img[..], &mut f, &sha256(&img)).unwrap();
        assert_eq!(n, img.len() as u64);
        let data = std::fs::read(dir.join("disk")).unwrap();
        assert_eq!(&data[..img.len()], &img[..]);
        assert!(data[img.len()..].iter().all(|&b| b == 0xee));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_mismatch_zeroes_the_first_and_last_mib() {
        let len = 6 * MIB as usize;
        let (dir, mut f) = disk(len, 0xee);
        let img = image(3 * MIB as usize);
        let wrong = sha256(b"another image");
        let err = write_image(&img[..], &mut f, &wrong).unwrap_err();
        assert!(matches!(err, ImageError::Digest(_)));
        assert!(err.to_string().contains(&sha256(&img).to_string()), "{err}");
        let data = std::fs::read(dir.join("disk")).unwrap();
        let m = MIB as usize;
        assert_eq!(data.len(), len);
        assert!(data[..m].iter().all(|&b| b == 0), "GPT header area zeroed");
        assert_eq!(
            &data[m..3 * m],
            &img[m..3 * m],
            "the middle is left as written"
        );
        assert!(data[len - m..].iter().all(|&b| b == 0), "backup GPT zeroed");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_download_or_an_image_too_large_wipes_too() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        let (dir, mut f) = disk(4 * MIB as usize, 0xee);
        let err = write_image(Failing(2 * MIB as usize), &mut f, &sha256(b"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("downloading the image failed after 2097152 bytes"),
            "{err}"
        );
        let data = std::fs::read(dir.join("disk")).unwrap();
        assert!(data[..MIB as usize].iter().all(|&b| b == 0));

        let img = image(5 * MIB as usize);
        let err = write_image(&img[..], &mut f, &sha256(&img)).unwrap_err();
        assert!(
            matches!(err, ImageError::TooLarge { disk, .. } if disk == 4 * MIB),
            "{err}"
        );
        assert_eq!(std::fs::metadata(dir.join("disk")).unwrap().len(), 4 * MIB);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

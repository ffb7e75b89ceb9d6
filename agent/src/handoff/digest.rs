//! SHA-256 of a stream as it passes (ring's, the same rustls uses), checked against
//! `beskar7.target-digest`.

use std::io::{self, Read};

use ring::digest::{Context, SHA256};

use crate::cmdline::Sha256Digest;

/// A reader that hashes every byte read through it and counts them.
pub struct HashingReader<R> {
    inner: R,
    context: Context,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            context: Context::new(&SHA256),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads what is left (so the digest covers the whole stream) and returns the digest.
    pub fn finish(mut self) -> io::Result<(Sha256Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let mut out = [0u8; 32];
        out.copy_from_slice(self.context.finish().as_ref());
        Ok((Sha256Digest(out), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.context.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The digest of a byte slice.
pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&SHA256, bytes).as_ref());
    Sha256Digest(out)
}

/// A digest mismatch, saying both values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the target's digest is {actual}, not the {expected} of beskar7.target-digest")]
pub struct Mismatch {
    pub expected: Sha256Digest,
    pub actual: Sha256Digest,
}

/// `Ok` when `actual` is `expected`.
pub fn check(expected: &Sha256Digest, actual: &Sha256Digest) -> Result<(), Mismatch> {
    if expected == actual {
        Ok(())
    } else {
        Err(Mismatch {
            expected: *expected,
            actual: *actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_the_whole_stream_even_when_not_read_to_the_end() {
        let data = b"abc".repeat(100_000);
        let mut reader = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        let (digest, count) = reader.finish().unwrap();
        assert_eq!(count, 300_000);
        assert_eq!(digest, sha256(&data));
    }

    #[test]
    fn known_value_and_mismatch_message() {
        // sha256("abc"), FIPS 180-2.
        let abc = sha256(b"abc");
        assert_eq!(
            abc.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(check(&abc, &sha256(b"abc")).is_ok());
        let err = check(&abc, &sha256(b"abd")).unwrap_err();
        assert!(err.to_string().contains(&abc.to_string()), "{err}");
    }
}

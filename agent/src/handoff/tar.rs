//! A small reader of tar archives (ustar, GNU and pax), enough for Kexec targets: regular files
//! with their names and sizes, read in order from a stream. Long names (GNU `L` entries, pax
//! `path=`) are honoured; links, devices and other pax keys are skipped. About a hundred lines
//! instead of the `tar` crate, which would bring `filetime` and xattr handling we never use.

use std::io::{self, Read};

const BLOCK: usize = 512;
/// Names and pax headers longer than this are refused (they are tiny in real archives).
const MAX_META: u64 = 64 * 1024;

/// One member of the archive: its name and its size; the content follows in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    /// Whether it is a regular file (others are skipped by [`Archive::next_file`]).
    pub regular: bool,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad tar archive: {}", what.into()),
    )
}

/// A tar archive read from a stream.
pub struct Archive<R> {
    inner: R,
    /// Content bytes (plus padding) of the current entry not consumed yet.
    pending: u64,
    done: bool,
}

impl<R: Read> Archive<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            pending: 0,
            done: false,
        }
    }

    /// The next regular file, or `None` at the end of the archive. Skips whatever of the
    /// previous entry was not read.
    pub fn next_file(&mut self) -> io::Result<Option<Entry>> {
        loop {
            match self.next_entry()? {
                None => return Ok(None),
                Some(e) if e.regular => return Ok(Some(e)),
                Some(_) => continue,
            }
        }
    }

    /// Reads the current entry's content into `out` (`size` bytes, as [`Entry::size`] said).
    pub fn read_content(&mut self, size: u64, out: &mut impl io::Write) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(size), out)?;
        if copied != size {
            return Err(bad("the archive ends inside a member"));
        }
        self.pending -= size;
        Ok(())
    }

    /// Consumes the rest of the stream (so a digest over it is complete).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn skip_pending(&mut self) -> io::Result<()> {
        let n = io::copy(&mut (&mut self.inner).take(self.pending), &mut io::sink())?;
        if n != self.pending {
            return Err(bad("the archive ends inside a member"));
        }
        self.pending = 0;
        Ok(())
    }

    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        self.skip_pending()?;
        let mut long_name: Option<String> = None;
        loop {
            let mut header = [0u8; BLOCK];
            if let Err(e) = self.inner.read_exact(&mut header) {
                return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                    bad("no end-of-archive block")
                } else {
                    e
                });
            }
            if header.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&header)?;
            let size = parse_size(&header[124..136])?;
            let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
            let kind = header[156];
            match kind {
                b'L' | b'x' => {
                    if size > MAX_META {
                        return Err(bad("oversized name or pax header"));
                    }
                    let mut meta = vec![0; padded as usize];
                    self.inner.read_exact(&mut meta)?;
                    meta.truncate(size as usize);
                    let name = if kind == b'L' {
                        Some(field(&meta))
                    } else {
                        pax_path(&meta)
                    };
                    if name.is_some() {
                        long_name = name;
                    }
                    continue;
                }
                b'g' => {
                    self.pending = padded;
                    self.skip_pending()?;
                    continue;
                }
                _ => {}
            }
            let name = long_name.take().unwrap_or_else(|| {
                let name = field(&header[0..100]);
                let prefix = if &header[257..262] == b"ustar" {
                    field(&header[345..500])
                } else {
                    String::new()
                };
                if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                }
            });
            let regular = matches!(kind, b'0' | 0 | b'7');
            self.pending = padded;
            return Ok(Some(Entry {
                name,
                size: if regular { size } else { 0 },
                regular,
            }));
        }
    }
}

/// A NUL-terminated (or full) text field.
fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Octal, or GNU's base-256 for sizes of 8 GiB and more.
fn parse_size(bytes: &[u8]) -> io::Result<u64> {
    if bytes[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { b };
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b.into()))
                .ok_or_else(|| bad("size too large"))?;
        }
        return Ok(v);
    }
    let text = field(bytes);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| bad(format!("bad size field {text:?}")))
}

fn check_sum(header: &[u8; BLOCK]) -> io::Result<()> {
    let not_tar = || bad("header checksum mismatch (not a tar archive?)");
    let stored = parse_size(&header[148..156]).map_err(|_| not_tar())?;
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if stored == sum {
        Ok(())
    } else {
        Err(not_tar())
    }
}

/// The `path` of pax records (`<len> path=<value>\n`).
fn pax_path(meta: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(meta);
    text.lines()
        .filter_map(|line| line.split_once(' ').map(|(_, kv)| kv))
        .find_map(|kv| kv.strip_prefix("path=").map(str::to_string))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header for a regular file (`kind` b'0') or other kinds.
    pub fn header(name: &str, size: u64, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    /// A tar archive of `(name, content)` regular files.
    pub fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, content) in files {
            out.extend(header(name, content.len() as u64, b'0'));
            out.extend_from_slice(content);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend([0u8; 2 * BLOCK]);
        out
    }

    fn names(data: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut a = Archive::new(data);
        let mut out = Vec::new();
        while let Some(e) = a.next_file()? {
            let mut content = Vec::new();
            a.read_content(e.size, &mut content)?;
            out.push((e.name, content));
        }
        Ok(out)
    }

    #[test]
    fn reads_regular_files_and_skips_the_rest() {
        let mut data = header("boot/", 0, b'5');
        data.extend(archive(&[
            ("boot/vmlinuz", b"KERNEL"),
            ("cmdline", b"console=ttyS0\n"),
        ]));
        let got = names(&data).unwrap();
        assert_eq!(
            got,
            vec![
                ("boot/vmlinuz".to_string(), b"KERNEL".to_vec()),
                ("cmdline".to_string(), b"console=ttyS0\n".to_vec())
            ]
        );
    }

    #[test]
    fn gnu_long_names_and_pax_paths() {
        let long = "d/".repeat(80) + "initrd.img";
        let mut data = header("././@LongLink", long.len() as u64 + 1, b'L');
        let mut name = long.clone().into_bytes();
        name.push(0);
        name.resize(BLOCK, 0);
        data.extend(name);
        let first = archive(&[("short-initrd", b"I")]);
        data.extend(&first[..first.len() - 2 * BLOCK]);
        let pax = b"30 path=very/long/pax/kernel\n";
        data.extend(header("PaxHeaders/x", pax.len() as u64, b'x'));
        let mut body = pax.to_vec();
        body.resize(BLOCK, 0);
        data.extend(body);
        data.extend(archive(&[("short-kernel", b"K")]));
        let got = names(&data).unwrap();
        assert_eq!(got[0].0, long);
        assert_eq!(got[1].0, "very/long/pax/kernel");
    }

    #[test]
    fn broken_archives_are_errors_not_panics() {
        let good = archive(&[("kernel", &[7u8; 1000])]);
        // Cut inside the member.
        assert!(names(&good[..800]).is_err());
        // No end block.
        assert!(
            names(&good[..1536])
                .unwrap_err()
                .to_string()
                .contains("end-of-archive")
        );
        // Not tar at all.
        let err = names(&[b'x'; 2048]).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn real_tar_output_is_read() {
        let dir = crate::handoff::tar::tests::scratch("tar");
        std::fs::write(dir.join("vmlinuz"), b"kernel bytes").unwrap();
        std::fs::write(dir.join("initrd.img"), vec![3u8; 70_000]).unwrap();
        let out = std::process::Command::new("tar")
            .args(["-C", dir.to_str().unwrap(), "-c", "vmlinuz", "initrd.img"])
            .output()
            .expect("tar(1) writes a real archive: install Debian's tar");
        let got = names(&out.stdout).unwrap();
        assert_eq!(got[0], ("vmlinuz".to_string(), b"kernel bytes".to_vec()));
        assert_eq!(got[1].1.len(), 70_000);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A fresh scratch directory for a test.
    pub fn scratch(tag: &str) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "b7-agent-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

//! Kexec targets: a tar (or `.tar.gz`) holding a kernel, an initrd and optionally a `cmdline`
//! file; unpacked while hashing, then the command line filled in.
//!
//! Members are recognised by their base name (any directory is ignored):
//! kernel `vmlinuz`, `vmlinuz-*`, `bzImage` or `kernel`; initrd `initrd`, `initrd.img`,
//! `initrd.img-*`, `initrd-*`, `initramfs*` or `initrd.gz`; `cmdline`. Other members are
//! skipped. A second member of the same kind is an error (which one is meant?).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use super::digest::{self, HashingReader, Mismatch};
use super::tar::Archive;
use crate::cmdline::Sha256Digest;

/// The longest target command line accepted (x86 takes 2048 bytes with the NUL).
pub const MAX_CMDLINE: u64 = 2047;

#[derive(Debug, thiserror::Error)]
pub enum KexecError {
    #[error("reading the Kexec target: {0}")]
    Io(#[from] io::Error),
    #[error(
        "the Kexec target has no {0} (want a tar(.gz) with a kernel, an initrd, optionally a cmdline)"
    )]
    Missing(&'static str),
    #[error("the Kexec target has two {kind} members: {first:?} and {second:?}")]
    Duplicate {
        kind: &'static str,
        first: String,
        second: String,
    },
    #[error("the Kexec target's cmdline is longer than {MAX_CMDLINE} bytes or not UTF-8")]
    BadCmdline,
    #[error(transparent)]
    Digest(#[from] Mismatch),
    #[error("the target cmdline uses BESKAR7_CONFIG_URL but the boot has no beskar7.config-url")]
    NoConfigUrl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kernel,
    Initrd,
    Cmdline,
}

fn kind_of(name: &str) -> Option<Kind> {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base == "cmdline" {
        Some(Kind::Cmdline)
    } else if matches!(base, "vmlinuz" | "bzImage" | "kernel") || base.starts_with("vmlinuz-") {
        Some(Kind::Kernel)
    } else if matches!(base, "initrd" | "initrd.img" | "initrd.gz")
        || base.starts_with("initrd.img-")
        || base.starts_with("initrd-")
        || base.starts_with("initramfs")
    {
        Some(Kind::Initrd)
    } else {
        None
    }
}

/// The unpacked target.
#[derive(Debug)]
pub struct Target {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The `cmdline` member, trimmed (empty when there is none).
    pub cmdline: String,
    pub digest: Sha256Digest,
    /// Bytes downloaded.
    pub size: u64,
}

/// Unpacks the target read from `source` into `dir` (`kernel`, `initrd`), hashing every byte
/// of `source`; a given `expected` digest must match before anything is returned.
pub fn unpack(
    source: impl Read,
    dir: &Path,
    expected: Option<&Sha256Digest>,
) -> Result<Target, KexecError> {
    let mut hashing = BufReader::with_capacity(1 << 16, HashingReader::new(source));
    let gzip = hashing.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let found = if gzip {
        let mut archive = Archive::new(GzDecoder::new(hashing));
        let found = unpack_members(&mut archive, dir)?;
        // Drain what follows the archive (padding, a gzip trailer) so the digest covers it.
        let mut rest = archive.into_inner().into_inner();
        io::copy(&mut rest, &mut io::sink())?;
        (found, rest.into_inner())
    } else {
        let mut archive = Archive::new(hashing);
        let found = unpack_members(&mut archive, dir)?;
        (found, archive.into_inner().into_inner())
    };
    let ((kernel, initrd, cmdline), hashing) = found;
    let (actual, size) = hashing.finish()?;
    if let Some(expected) = expected {
        digest::check(expected, &actual)?;
    }
    Ok(Target {
        kernel: kernel.ok_or(KexecError::Missing("kernel (vmlinuz)"))?,
        initrd: initrd.ok_or(KexecError::Missing("initrd (initrd.img)"))?,
        cmdline: cmdline.unwrap_or_default(),
        digest: actual,
        size,
    })
}

type Found = (Option<PathBuf>, Option<PathBuf>, Option<String>);

fn unpack_members(archive: &mut Archive<impl Read>, dir: &Path) -> Result<Found, KexecError> {
    let mut names: [Option<String>; 3] = [None, None, None];
    let (mut kernel, mut initrd, mut cmdline) = (None, None, None);
    while let Some(entry) = archive.next_file()? {
        let Some(kind) = kind_of(&entry.name) else {
            continue;
        };
        let slot = &mut names[kind as usize];
        if let Some(first) = slot {
            return Err(KexecError::Duplicate {
                kind: ["kernel", "initrd", "cmdline"][kind as usize],
                first: first.clone(),
                second: entry.name,
            });
        }
        *slot = Some(entry.name.clone());
        match kind {
            Kind::Kernel | Kind::Initrd => {
                let path = dir.join(if kind == Kind::Kernel {
                    "kernel"
                } else {
                    "initrd"
                });
                let mut file = File::create(&path)?;
                archive.read_content(entry.size, &mut file)?;
                file.flush()?;
                if kind == Kind::Kernel {
                    kernel = Some(path);
                } else {
                    initrd = Some(path);
                }
            }
            Kind::Cmdline => {
                if entry.size > MAX_CMDLINE {
                    return Err(KexecError::BadCmdline);
                }
                let mut text = Vec::new();
                archive.read_content(entry.size, &mut text)?;
                let text = String::from_utf8(text).map_err(|_| KexecError::BadCmdline)?;
                cmdline = Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    Ok((kernel, initrd, cmdline))
}

/// Fills in the target command line: `BESKAR7_PROVIDER_ID` becomes the provider ID and
/// `BESKAR7_CONFIG_URL` the URL of `beskar7.config-url` (an error when the boot has none).
/// The result carries the config nonce: never log it.
pub fn substitute(
    cmdline: &str,
    provider_id: &str,
    config_url: Option<&str>,
) -> Result<String, KexecError> {
    let mut out = cmdline.replace("BESKAR7_PROVIDER_ID", provider_id);
    if out.contains("BESKAR7_CONFIG_URL") {
        let url = config_url.ok_or(KexecError::NoConfigUrl)?;
        out = out.replace("BESKAR7_CONFIG_URL", url);
    }
    if out.len() as u64 > MAX_CMDLINE {
        return Err(KexecError::BadCmdline);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::digest::sha256;
    use crate::handoff::tar::tests::{archive, scratch};
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn unpacks_tar_and_tar_gz_and_checks_the_digest() {
        let tar = archive(&[
            ("target/vmlinuz-6.1.0", b"KERNEL"),
            ("target/README", b"ignored"),
            ("target/initrd.img-6.1.0", &[9u8; 5000]),
            (
                "target/cmdline",
                b"console=ttyS0\n  config_url=BESKAR7_CONFIG_URL\n",
            ),
        ]);
        for data in [tar.clone(), gz(&tar)] {
            let dir = scratch("kexec");
            let digest = sha256(&data);
            let t = unpack(&data[..], &dir, Some(&digest)).unwrap();
            assert_eq!(std::fs::read(&t.kernel).unwrap(), b"KERNEL");
            assert_eq!(std::fs::read(&t.initrd).unwrap(), vec![9u8; 5000]);
            assert_eq!(t.cmdline, "console=ttyS0 config_url=BESKAR7_CONFIG_URL");
            assert_eq!((t.digest, t.size), (digest, data.len() as u64));

            let wrong = sha256(b"something else");
            let err = unpack(&data[..], &dir, Some(&wrong)).unwrap_err();
            assert!(matches!(err, KexecError::Digest(_)), "{err}");
            assert!(err.to_string().contains(&digest.to_string()), "{err}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn missing_and_duplicate_members_are_named() {
        let dir = scratch("kexec-missing");
        let no_initrd = archive(&[("vmlinuz", b"K"), ("cmdline", b"x")]);
        let err = unpack(&no_initrd[..], &dir, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Kexec target has no initrd (initrd.img) (want a tar(.gz) with a kernel, an \
             initrd, optionally a cmdline)"
        );
        let no_kernel = archive(&[("initrd.img", b"I")]);
        assert!(
            unpack(&no_kernel[..], &dir, None)
                .unwrap_err()
                .to_string()
                .contains("no kernel")
        );
        let two = archive(&[("a/vmlinuz", b"K"), ("b/bzImage", b"K")]);
        let err = unpack(&two[..], &dir, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("two kernel members: \"a/vmlinuz\" and \"b/bzImage\""),
            "{err}"
        );
        let err = unpack(&b"not a tar at all"[..], &dir, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reading the Kexec target: bad tar archive"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn substitution() {
        let line = "console=ttyS0 config_url=BESKAR7_CONFIG_URL provider=BESKAR7_PROVIDER_ID";
        assert_eq!(
            substitute(
                line,
                "b7://ns/h/m",
                Some("https://10.0.0.1:8082/api/v1/config/ns/h/n0nce")
            )
            .unwrap(),
            "console=ttyS0 config_url=https://10.0.0.1:8082/api/v1/config/ns/h/n0nce provider=b7://ns/h/m"
        );
        assert!(matches!(
            substitute(line, "p", None),
            Err(KexecError::NoConfigUrl)
        ));
        assert_eq!(substitute("quiet", "p", None).unwrap(), "quiet");
        assert!(matches!(
            substitute(&"x".repeat(3000), "p", None),
            Err(KexecError::BadCmdline)
        ));
    }
}

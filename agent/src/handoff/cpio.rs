//! A writer of "newc" cpio archives (the format the kernel unpacks into an initramfs), for the
//! archive appended to a Kexec target's initrd: `/beskar7/user-data` and `/beskar7/provider-id`.
//!
//! The kernel accepts several archives back to back, compressed or not, so appending ours to the
//! target's (possibly compressed) initrd adds the files without unpacking it. An uncompressed
//! archive must start at a multiple of 4 bytes in the initrd; [`append_to_initrd`] pads to 512.

use std::io::{self, Seek, SeekFrom, Write};

/// One member: a directory or a regular file.
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    Dir {
        name: &'a str,
        mode: u32,
    },
    File {
        name: &'a str,
        mode: u32,
        data: &'a [u8],
    },
}

/// Writes a newc archive of `members` (names without a leading `/`), ending with the trailer.
pub fn write_newc(out: &mut impl Write, members: &[Member<'_>]) -> io::Result<()> {
    let mut offset = 0u64;
    for (i, member) in members.iter().enumerate() {
        let (name, mode, data) = match *member {
            Member::Dir { name, mode } => (name, 0o040000 | mode, &[][..]),
            Member::File { name, mode, data } => (name, 0o100000 | mode, data),
        };
        entry(out, &mut offset, i as u32 + 1, name, mode, data)?;
    }
    entry(out, &mut offset, 0, "TRAILER!!!", 0, &[])
}

fn entry(
    out: &mut impl Write,
    offset: &mut u64,
    ino: u32,
    name: &str,
    mode: u32,
    data: &[u8],
) -> io::Result<()> {
    let nlink = if mode & 0o040000 != 0 { 2 } else { 1 };
    let size = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio member over 4 GiB"))?;
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    // rdevminor, namesize (with its NUL), check.
    let head = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        name.len() + 1,
        0
    );
    write_counted(out, offset, head.as_bytes())?;
    write_counted(out, offset, name.as_bytes())?;
    write_counted(out, offset, &[0])?;
    pad4(out, offset)?;
    write_counted(out, offset, data)?;
    pad4(out, offset)
}

fn write_counted(out: &mut impl Write, offset: &mut u64, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    *offset += bytes.len() as u64;
    Ok(())
}

fn pad4(out: &mut impl Write, offset: &mut u64) -> io::Result<()> {
    let pad = (4 - (*offset % 4) as usize) % 4;
    write_counted(out, offset, &[0u8; 3][..pad])
}

/// Appends, to the initrd file `initrd`, zero padding to a multiple of 512 bytes and then a newc
/// archive holding `/beskar7/user-data` and `/beskar7/provider-id` (both mode 0600).
pub fn append_to_initrd<F: Write + Seek>(
    initrd: &mut F,
    user_data: &[u8],
    provider_id: &str,
) -> io::Result<()> {
    let len = initrd.seek(SeekFrom::End(0))?;
    let pad = (512 - (len % 512) as usize) % 512;
    initrd.write_all(&vec![0u8; pad])?;
    let mut archive = Vec::new();
    write_newc(
        &mut archive,
        &[
            Member::Dir {
                name: "beskar7",
                mode: 0o700,
            },
            Member::File {
                name: "beskar7/user-data",
                mode: 0o600,
                data: user_data,
            },
            Member::File {
                name: "beskar7/provider-id",
                mode: 0o600,
                data: provider_id.as_bytes(),
            },
        ],
    )?;
    let written = initrd.write_all(&archive);
    // The archive held the bootstrap data.
    archive.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&archive);
    written?;
    initrd.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::tar::tests::scratch;

    /// An independent reader of newc archives: (name, mode, data) of every member.
    fn parse_newc(mut data: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let start = data.as_ptr() as usize;
        loop {
            assert_eq!(&data[..6], b"070701", "magic");
            let hex = |i: usize| {
                u32::from_str_radix(
                    std::str::from_utf8(&data[6 + i * 8..14 + i * 8]).unwrap(),
                    16,
                )
                .unwrap()
            };
            let (mode, size, namesize) = (hex(1), hex(6) as usize, hex(11) as usize);
            let name = String::from_utf8(data[110..110 + namesize - 1].to_vec()).unwrap();
            assert_eq!(data[110 + namesize - 1], 0);
            let mut at = 110 + namesize;
            at += (4 - ((data.as_ptr() as usize - start + at) % 4)) % 4;
            if name == "TRAILER!!!" {
                return out;
            }
            out.push((name, mode, data[at..at + size].to_vec()));
            at += size;
            at += (4 - ((data.as_ptr() as usize - start + at) % 4)) % 4;
            data = &data[at..];
        }
    }

    #[test]
    fn appended_archive_reads_back() {
        let mut initrd = io::Cursor::new(b"\x1f\x8b compressed initrd, 37 bytes long".to_vec());
        append_to_initrd(&mut initrd, b"#cloud-config\nx: 1\n", "b7://ns/h1/m1").unwrap();
        let bytes = initrd.into_inner();
        assert_eq!(&bytes[..5], b"\x1f\x8b co");
        let ours = &bytes[512..];
        assert!(bytes[37..512].iter().all(|&b| b == 0));
        assert_eq!(
            parse_newc(ours),
            vec![
                ("beskar7".to_string(), 0o040700, vec![]),
                (
                    "beskar7/user-data".to_string(),
                    0o100600,
                    b"#cloud-config\nx: 1\n".to_vec()
                ),
                (
                    "beskar7/provider-id".to_string(),
                    0o100600,
                    b"b7://ns/h1/m1".to_vec()
                ),
            ]
        );
        assert_eq!(ours.len() % 4, 0);
    }

    #[test]
    fn cpio_from_debian_unpacks_it_when_installed() {
        let dir = scratch("cpio");
        let mut archive = Vec::new();
        write_newc(
            &mut archive,
            &[
                Member::Dir {
                    name: "beskar7",
                    mode: 0o700,
                },
                Member::File {
                    name: "beskar7/user-data",
                    mode: 0o600,
                    data: b"odd-sized data!",
                },
                Member::File {
                    name: "beskar7/provider-id",
                    mode: 0o600,
                    data: b"b7://a/b/c",
                },
            ],
        )
        .unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio(1) reads the archive back: install Debian's cpio (.ci/system-packages.sh does)");
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read(dir.join("beskar7/user-data")).unwrap(),
            b"odd-sized data!"
        );
        assert_eq!(
            std::fs::read(dir.join("beskar7/provider-id")).unwrap(),
            b"b7://a/b/c"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("beskar7/user-data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Appending an upload's bytes to its file.
//!
//! Large uploads are written with `O_DIRECT` on Linux: the bytes go from an aligned buffer
//! straight to the device instead of being copied into freshly allocated page-cache pages and
//! written back again by the `fsync` that ends the upload. On this project's benchmark host that
//! copy cost more CPU than SHA-256, and the final `fsync` of a 512 MiB blob took a third of the
//! upload's time. The page cache still serves downloads: the first read of a blob fills it.
//!
//! Only whole, aligned blocks are written directly. A head that starts inside a block (a
//! chunk whose offset is not a multiple of the block size) and the tail after the last whole
//! block go through the page cache; the `fdatasync` that makes an upload durable covers both.
//! A filesystem that refuses `O_DIRECT` (tmpfs, some network filesystems) gets ordinary
//! buffered writes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Alignment of direct writes: offsets, lengths and the buffer's address. 4 KiB satisfies the
/// logical block size of every Linux block device and filesystem wharf is likely to meet.
const ALIGN: usize = 4096;
/// Bytes gathered before each direct write.
const DIRECT_BUFFER: usize = 512 * 1024;
/// Writes smaller than this are gathered before they reach the kernel (buffered path).
const WRITE_BUFFER: usize = 256 * 1024;

/// Writes the bytes of one append, starting at `offset` of an upload file.
pub(crate) enum Appender {
    Buffered {
        out: BufWriter<File>,
    },
    Direct {
        /// The same file without `O_DIRECT`: the unaligned head and tail, and the sync.
        file: File,
        direct: File,
        buf: AlignedBuf,
        /// File offset of `buf`'s first byte (always aligned).
        at: u64,
    },
}

impl Appender {
    /// Appends through the page cache. `file` is positioned at the append offset.
    pub(crate) fn buffered(file: File) -> Self {
        Self::Buffered {
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
        }
    }

    /// Appends with direct I/O where the filesystem allows it, else through the page cache.
    /// `file` is positioned at `offset`.
    pub(crate) fn direct(file: File, path: &Path, offset: u64) -> Self {
        match open_direct(path) {
            Some(direct) => Self::Direct {
                file,
                direct,
                buf: AlignedBuf::new(DIRECT_BUFFER),
                at: offset,
            },
            None => Self::buffered(file),
        }
    }

    pub(crate) fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Buffered { out } => out.write_all(data),
            Self::Direct {
                file,
                direct,
                buf,
                at,
            } => {
                while !data.is_empty() {
                    // Bytes before the first block boundary go through the page cache.
                    let misalign = (*at % ALIGN as u64) as usize;
                    if misalign != 0 && buf.len == 0 {
                        let head = (ALIGN - misalign).min(data.len());
                        file.write_all_at(&data[..head], *at)?;
                        *at += head as u64;
                        data = &data[head..];
                        continue;
                    }
                    let took = buf.fill(data);
                    data = &data[took..];
                    if buf.is_full() {
                        write_direct(file, direct, buf.filled(), *at)?;
                        *at += buf.len as u64;
                        buf.len = 0;
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes what is still buffered; with `sync`, waits until every byte is on the device.
    pub(crate) fn finish(self, sync: bool) -> std::io::Result<()> {
        let file = match self {
            Self::Buffered { out } => out.into_inner().map_err(|e| e.into_error())?,
            Self::Direct {
                file,
                direct,
                buf,
                at,
            } => {
                let whole = buf.len / ALIGN * ALIGN;
                if whole > 0 {
                    write_direct(&file, &direct, &buf.filled()[..whole], at)?;
                }
                file.write_all_at(&buf.filled()[whole..], at + whole as u64)?;
                file
            }
        };
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }
}

/// A direct write; a filesystem that refuses it mid-way (`EINVAL`) gets a buffered one.
fn write_direct(file: &File, direct: &File, data: &[u8], at: u64) -> std::io::Result<()> {
    match direct.write_all_at(data, at) {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => file.write_all_at(data, at),
        other => other,
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// A fixed-size buffer whose start is aligned to [`ALIGN`], without `unsafe`: a slightly larger
/// vector, used from its first aligned byte.
pub(crate) struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(cap: usize) -> Self {
        let mem = vec![0u8; cap + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        Self {
            mem,
            start,
            cap,
            len: 0,
        }
    }

    fn fill(&mut self, data: &[u8]) -> usize {
        let n = (self.cap - self.len).min(data.len());
        let from = self.start + self.len;
        self.mem[from..from + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == self.cap
    }

    fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Appends `pieces` at `offset` of a file that holds `prefix`, then reads the file back.
    fn append(prefix: &[u8], pieces: &[&[u8]], direct: bool) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, prefix).unwrap();
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(prefix.len() as u64)).unwrap();
        let mut w = if direct {
            Appender::direct(file, &path, prefix.len() as u64)
        } else {
            Appender::buffered(file)
        };
        for p in pieces {
            w.write(p).unwrap();
        }
        w.finish(true).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn aligned_and_unaligned_appends_keep_every_byte_in_place() {
        let big = pattern(3 * DIRECT_BUFFER + 12_345, 7);
        for prefix_len in [0, 1, 4095, 4096, 4097, 10_000, DIRECT_BUFFER + 3] {
            let prefix = pattern(prefix_len, 99);
            // Pieces of awkward sizes, so the buffer fills across piece boundaries.
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut rest = &big[..];
            for size in [1usize, 4095, 70_000, DIRECT_BUFFER, 3].iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*size).min(rest.len());
                pieces.push(&rest[..n]);
                rest = &rest[n..];
            }
            for direct in [true, false] {
                let got = append(&prefix, &pieces, direct);
                assert_eq!(got.len(), prefix_len + big.len(), "prefix {prefix_len}");
                assert!(
                    got[..prefix_len] == prefix[..],
                    "prefix {prefix_len} changed"
                );
                assert!(
                    got[prefix_len..] == big[..],
                    "appended bytes differ (prefix {prefix_len}, direct {direct})"
                );
            }
        }
    }

    #[test]
    fn small_appends_shorter_than_a_block_land_exactly() {
        for (prefix_len, n) in [(0, 1), (0, 4095), (5, 10), (4090, 10), (4096, 4096)] {
            let prefix = pattern(prefix_len, 1);
            let data = pattern(n, 2);
            let got = append(&prefix, &[&data], true);
            assert_eq!(&got[..prefix_len], &prefix[..]);
            assert_eq!(&got[prefix_len..], &data[..]);
        }
    }

    #[test]
    fn the_buffer_starts_aligned() {
        for cap in [ALIGN, DIRECT_BUFFER] {
            let b = AlignedBuf::new(cap);
            assert_eq!(b.filled().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.cap, cap);
        }
    }
}

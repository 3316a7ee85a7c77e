//! Shard files written front to back with direct I/O (O_DIRECT): the bytes go from the
//! renderer's recycled buffers to the disk, not through the page cache, whose fresh pages cost
//! more CPU than rendering and hashing together here (a virtual machine backs guest memory
//! that was handed back on first touch: `dd` writes 2 GB in 8.3 s buffered, 1.1 s direct).
//! Where the file system refuses direct I/O the same code writes through the page cache.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Prefix/suffix of in-progress shard files; leftovers from a killed run are deleted on resume.
pub const TEMP_PREFIX: &str = ".shard-";
pub const TEMP_SUFFIX: &str = ".tmp";

use crate::error::{Error, Result};

/// What direct I/O needs aligned: buffer addresses, file offsets and lengths (the largest
/// logical block size of common disks).
pub const ALIGN: usize = 4096;

/// A buffer holding `len` bytes that belong at file offset `offset`, placed so that the block
/// containing `offset` starts at an aligned address: the bytes before them in that block (the
/// previous write's tail) are copied in front, and the whole is written in place.
pub struct Block {
    buf: Vec<u8>,
    /// Index of the first aligned byte in `buf`.
    base: usize,
    /// `offset % ALIGN`: where the payload starts after `base`.
    lead: usize,
    len: usize,
}

impl Block {
    /// A block for `len` bytes at file `offset`, reusing `buf` (grown when too small; its
    /// contents are overwritten by the caller).
    pub fn new(mut buf: Vec<u8>, offset: u64, len: usize) -> Self {
        let lead = (offset % ALIGN as u64) as usize;
        let need = ALIGN + lead + len;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let base = buf.as_ptr().align_offset(ALIGN);
        assert!(base + lead + len <= buf.len(), "align_offset within ALIGN");
        Block {
            buf,
            base,
            lead,
            len,
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf[self.base + self.lead..self.base + self.lead + self.len]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.base + self.lead..self.base + self.lead + self.len]
    }

    /// The buffer back, for reuse.
    pub fn take_buf(&mut self) -> Vec<u8> {
        self.len = 0;
        std::mem::take(&mut self.buf)
    }
}

/// A shard file written front to back into a temp file in its folder; it appears under its
/// name only once [`ShardFile::persist`] renames it, so a killed run never leaves half a shard.
pub struct ShardFile {
    tmp: tempfile::NamedTempFile,
    /// Bytes given so far, of which all but `tail` are on disk.
    bytes: u64,
    /// The bytes after the last aligned offset, kept for the next block's front.
    tail: Vec<u8>,
    /// Bytes written to the file (all of `bytes` but the tail, once persisted all of them).
    on_disk: u64,
    direct: bool,
}

impl ShardFile {
    pub fn create(dir: &Path) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            // 0666 less the umask (0644 under umask 022), as for any file; tempfile's 0600
            // would keep teammates out of a shared dataset.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let direct = set_direct(tmp.as_file(), true);
        Ok(ShardFile {
            tmp,
            bytes: 0,
            tail: Vec::with_capacity(ALIGN),
            on_disk: 0,
            direct,
        })
    }

    /// Copies the pending tail in front of `block`'s payload, which must come next in the file.
    pub fn prepare(&self, block: &mut Block) -> Result<()> {
        if block.lead != self.tail.len() || block.lead as u64 != self.bytes % ALIGN as u64 {
            return Err(Error::format(
                self.tmp.path(),
                format!(
                    "internal: a block for offset ≡ {} (mod {ALIGN}) after {} bytes",
                    block.lead, self.bytes
                ),
            ));
        }
        block.buf[block.base..block.base + block.lead].copy_from_slice(&self.tail);
        Ok(())
    }

    /// Writes a [`prepare`](Self::prepare)d block: its whole aligned blocks now, the rest kept
    /// as the tail.
    pub fn write_block(&mut self, block: &Block) -> Result<()> {
        let end = block.lead + block.len;
        let whole = end / ALIGN * ALIGN;
        self.write_raw(&block.buf[block.base..block.base + whole])?;
        self.tail.clear();
        self.tail
            .extend_from_slice(&block.buf[block.base + whole..block.base + end]);
        self.bytes += block.len as u64;
        Ok(())
    }

    /// Appends `data` (copied into an aligned block).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut block = Block::new(Vec::new(), self.bytes, data.len());
        block.payload_mut().copy_from_slice(data);
        self.prepare(&mut block)?;
        self.write_block(&block)
    }

    /// Writes `data` where the bytes on disk end. Positional, so that a write retried after
    /// part of it landed puts the same bytes in the same place instead of appending them twice.
    fn write_raw(&mut self, data: &[u8]) -> Result<()> {
        let file = self.tmp.as_file();
        let mut written = file.write_all_at(data, self.on_disk);
        // A file system may take the flag and still refuse the write: go through the cache.
        if self.direct && matches!(&written, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            self.direct = !set_direct(file, false);
            written = file.write_all_at(data, self.on_disk);
        }
        written.map_err(|e| Error::io(self.tmp.path(), e))?;
        self.on_disk += data.len() as u64;
        Ok(())
    }

    /// Writes the tail (through the page cache: it is not a whole block) and renames the file
    /// to `dir/name`; returns its size.
    pub fn persist(mut self, dir: &Path, name: &str) -> Result<u64> {
        if !self.tail.is_empty() {
            if self.direct {
                self.direct = !set_direct(self.tmp.as_file(), false);
            }
            let tail = std::mem::take(&mut self.tail);
            self.write_raw(&tail)?;
        }
        let path = dir.join(name);
        self.tmp
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        Ok(self.bytes)
    }
}

/// Turns O_DIRECT on or off for `file`; false where the file system does not allow it.
fn set_direct(file: &File, on: bool) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor this process owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces of every awkward size, written as blocks and through `write`, read back whole.
    #[test]
    fn blocks_of_any_size_and_offset_make_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * ALIGN as u32 + 1234)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let cuts = [0, 1, 100, ALIGN - 1, ALIGN, 2 * ALIGN + 5, data.len()];
        let mut file = ShardFile::create(dir.path()).unwrap();
        let mut spare = Vec::new();
        for w in cuts.windows(2) {
            let piece = &data[w[0]..w[1]];
            let mut block = Block::new(spare, w[0] as u64, piece.len());
            block.payload_mut().copy_from_slice(piece);
            file.prepare(&mut block).unwrap();
            assert_eq!(block.payload(), piece);
            file.write_block(&block).unwrap();
            spare = block.take_buf();
        }
        assert_eq!(file.persist(dir.path(), "a").unwrap(), data.len() as u64);
        assert!(std::fs::read(dir.path().join("a")).unwrap() == data);

        let mut file = ShardFile::create(dir.path()).unwrap();
        file.write(&data[..10]).unwrap();
        file.write(&data[10..]).unwrap();
        file.persist(dir.path(), "b").unwrap();
        assert!(std::fs::read(dir.path().join("b")).unwrap() == data);

        // A block for the wrong offset is refused, not written out of place.
        let mut file = ShardFile::create(dir.path()).unwrap();
        file.write(&data[..10]).unwrap();
        let mut block = Block::new(Vec::new(), 11, 5);
        assert!(file.prepare(&mut block).is_err());
    }
}

//! Atomic file writes, for the host and the dataset alike: readers see the old file or the new
//! one, never half of either.
//!
//! Only a regular file (or a new path) is replaced, by a temp file beside it renamed over it.
//! A character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is written in place
//! and stays what it is; a directory, block device or socket is refused. A symlink is followed,
//! so the link survives and its target is replaced. New files get the mode the umask allows
//! (0644 under umask 022), not a temp file's 0600, so teammates can read a shared folder.

mod clobber;
mod lock;
pub use clobber::{refuse_outputs_over_inputs, Named};
pub use lock::{lock_holder, FolderLock, LOCK_FILE};

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a write would land on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing there yet, or a regular file (at this real path, symlinks resolved): replaced
    /// atomically.
    File(PathBuf),
    /// A character device or a FIFO: written in place, never replaced, nothing written beside it.
    Stream,
}

/// Says what writing `path` would replace; refuses anything but a regular file, a new path, a
/// character device or a FIFO.
pub fn target(path: &Path) -> Result<Target> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Target::File(path.to_path_buf()))
        }
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    let meta = if link.file_type().is_symlink() {
        std::fs::metadata(path).with_context(|| {
            format!(
                "{} is a symlink to a missing file; not writing through it",
                path.display()
            )
        })?
    } else {
        link
    };
    let kind = meta.file_type();
    if kind.is_file() {
        let real =
            std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
        return Ok(Target::File(real));
    }
    if kind.is_char_device() || kind.is_fifo() {
        return Ok(Target::Stream);
    }
    bail!(
        "{} is {}; refusing to replace it (give the path of a file)",
        path.display(),
        kind_name(kind)
    )
}

/// `path` opened for appending, created if missing; the error names it.
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// What a file of this type is, as messages say it: "a directory", "a FIFO", "a device"...
pub fn kind_name(kind: std::fs::FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Writes `bytes` to `path` atomically (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o666)
}

/// As [`write_atomic`], with `mode` (before the umask) for a file it creates, e.g. 0o777 for a
/// script.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_with(path, mode, |temp| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(temp)
            .with_context(|| format!("opening {}", temp.display()))?;
        file.write_all(bytes)?;
        Ok(())
    })
}

/// Serialises `value` as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

/// For writers that want a path (safetensors, PNG): `write` fills a temp file beside `path`
/// (named `.tmp*` with `path`'s extension, created with `mode` less the umask), which is then
/// renamed over `path`. A device or FIFO at `path` is handed to `write` as it is.
pub fn write_with(path: &Path, mode: u32, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let real = match target(path)? {
        Target::Stream => {
            return write(path).with_context(|| format!("writing {}", path.display()));
        }
        Target::File(real) => real,
    };
    let dir = real
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let suffix = real
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    // Created with `mode`, which open(2) narrows by the umask (tempfile's default is 0600).
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(&suffix)
        .permissions(std::fs::Permissions::from_mode(mode & 0o777))
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    write(temp.path()).with_context(|| format!("writing {}", path.display()))?;
    // Written through to disk before the rename, so a crash leaves the old file or the new one.
    std::fs::File::open(temp.path())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    temp.persist(&real)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// How temp files of these writes start (tempfile's default), for cleaning up after a kill.
pub const TEMP_PREFIX: &str = ".tmp";

#[cfg(test)]
mod tests {
    use super::*;

    /// The umask, read without changing it.
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_whole_files_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn files_get_the_umask_mode_not_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_json(&path, &1).unwrap();
        assert_eq!(mode(&path), 0o666 & !umask());
        write_atomic(&path, b"2").unwrap();
        assert_eq!(mode(&path), 0o666 & !umask());
        let script = dir.path().join("s.sh");
        write_atomic_mode(&script, b"#!/bin/sh\n", 0o777).unwrap();
        assert_eq!(mode(&script), 0o777 & !umask());
    }

    #[test]
    fn a_fifo_stays_a_fifo_and_a_symlink_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // A reader that does not block, so the write can open the FIFO.
        use std::os::unix::fs::OpenOptionsExt;
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        write_atomic(&fifo, b"through the pipe").unwrap();
        let mut got = String::new();
        use std::io::Read;
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the pipe");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let real = dir.path().join("real.txt");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn a_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let err = format!("{:#}", write_atomic(&sub, b"x").unwrap_err());
        assert!(
            err.contains("is a directory") && err.contains("sub"),
            "{err}"
        );
        assert!(sub.is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

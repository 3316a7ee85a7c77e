//! A folder taken by one process: an exclusive `flock` on `<folder>/.lock`, held for the
//! process's life (the kernel drops it when the process dies, kill -9 included), so two
//! trajhost processes never write one run or one dataset at once.

use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The lock file in a locked folder; it holds the pid of the process that has the folder.
pub const LOCK_FILE: &str = ".lock";

/// The lock on a folder, released when dropped.
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    /// Locks `dir` (which must exist); refuses, naming the holder's pid, when another process
    /// has it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if let Err(error) = lock_briefly_waiting(&file) {
            let code = error.raw_os_error();
            if matches!(code, Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)) {
                // Some network filesystems cannot lock; refusing to work there would be worse.
                eprintln!(
                    "warning: cannot lock {} ({error}); make sure no other trajhost uses this folder",
                    path.display()
                );
                return Ok(FolderLock { _file: file });
            }
            if code != Some(libc::EWOULDBLOCK) {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "pid unknown".to_string(),
                pid => format!("pid {pid}"),
            };
            bail!(
                "{} is in use by another trajhost process ({holder}, see {}); wait for it to end or stop it first",
                dir.display(),
                path.display()
            );
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(FolderLock { _file: file })
    }
}

/// Who holds `dir`'s lock now ("pid 1234"), or None when no process does (or the folder has
/// no lock file yet). Looks without taking the lock for longer than the look.
pub fn lock_holder(dir: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a FIFO named .lock must not hang the caller.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.join(LOCK_FILE))
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    // SAFETY: flock on a file descriptor we own; dropping the file releases it.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return None;
    }
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    Some(match holder.trim() {
        "" => "pid unknown".to_string(),
        pid => format!("pid {pid}"),
    })
}

/// `flock(LOCK_EX)` without blocking, retried for up to a second while another holder has it:
/// a process that forks a child (any `Command` in a program that works in-process) lends the
/// child its open files until the child's `exec` closes them, so a lock just released can
/// look held for a moment. A real holder still holds it after the second.
fn lock_briefly_waiting(file: &std::fs::File) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        // SAFETY: flock on a file descriptor the caller owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) || Instant::now() > deadline {
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(dir.path()).unwrap();
        let err = format!("{:#}", FolderLock::acquire(dir.path()).err().unwrap());
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        FolderLock::acquire(dir.path()).unwrap();
    }
}

//! One writer per store: an OS file lock on a sidecar file `<store>.lock`, held for the whole
//! life of a writing command (`run`, `run --dry-run`, `retry-failed`, …).
//!
//! Two writers on one store duplicate cases: the second hands the first one's in-flight tickets
//! back to the queue and reconciles intents whose writes are still on the wire (issue #11.1).
//! SQLite's own locks only serialise single transactions, so the ownership of the whole store is
//! an advisory lock of the operating system (`flock` on Unix, `LockFileEx` on Windows, through
//! `std::fs::File::try_lock`): the kernel releases it when the process ends in any way, `kill -9`
//! included, so a crash never leaves a stale lock behind and nothing has to be cleaned up by hand.
//! The file also says who holds it (pid, host, start time) so the refused process can name them.
//! Readers (`status`, `report`) do not take it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// The exclusive right to write one store; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StoreLock {
    /// The open, locked sidecar file: closing it releases the lock.
    file: File,
    /// Where it lives, for messages.
    path: PathBuf,
}

impl StoreLock {
    /// The sidecar lock file of the store at `store_path`: the same name with `.lock` appended.
    pub fn lock_path(store_path: &Path) -> PathBuf {
        let mut name = store_path.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the store's write lock without waiting, and records this process as its holder.
    ///
    /// Fails at once with [`StoreError::Locked`] naming the holder when another process (or
    /// another `StoreLock` of this process) has it: the caller should stop, not retry.
    pub fn acquire(store_path: &Path) -> Result<StoreLock> {
        let path = Self::lock_path(store_path);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open the store lock {}: {e}", path.display()),
            )
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder may be between taking the lock and writing its line.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    store: store_path.display().to_string(),
                    holder: if holder.is_empty() {
                        "a process that is just starting".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot lock {}: {e}", path.display()),
                )));
            }
        }
        let line = format!(
            "pid {} on {} since {}",
            std::process::id(),
            hostname(),
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.flush()?;
        tracing::debug!(lock = %path.display(), holder = %line, "store write lock taken");
        Ok(StoreLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Forget the holder line while still holding the lock, so a later reader never names a
        // process that is gone; closing the file (right after) releases the lock itself.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// This machine's name, for the holder line (no libc call: `unsafe` is forbidden here).
fn hostname() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "an unknown host".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.sqlite");
        let first = StoreLock::acquire(&store).unwrap();
        assert_eq!(first.path(), dir.path().join("s.sqlite.lock"));
        let err = StoreLock::acquire(&store).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Locked { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("s.sqlite"), "{text}");
        drop(first);
        let again = StoreLock::acquire(&store).unwrap();
        drop(again);
    }
}

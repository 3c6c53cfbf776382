//! [`RunLock`]: the lock a process holds on a run folder while it writes it (a run, its resume,
//! a merge into it), so that two processes never append to one folder. An OS file lock
//! (`flock` through std's `File::try_lock`) on `.minigpt.lock` inside the folder: the kernel
//! drops it when its holder exits, even by SIGKILL, so a stale lock never blocks.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::RunError;

/// The lock file's name inside a run folder. It holds the holder's process id.
pub const LOCK_FILE: &str = ".minigpt.lock";

/// A held lock on a run folder, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Locks the folder `dir` (which must exist), or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, RunError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RunError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() {
                    "another minigpt process".to_string()
                } else {
                    format!("another minigpt process (pid {pid})")
                };
                return Err(RunError(format!(
                    "{} is in use by {holder}: wait for it to finish or stop it, or use another --out (two processes writing one folder would mix their rows)",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(RunError::io("lock", &path, e)),
        }
        // The holder's pid, for the message above.
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(|e| RunError::io("write", &path, e))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second lock on a held folder is refused naming the holder; dropping the first frees
    /// the folder. (Locks of one process conflict across open files, as across processes.)
    #[test]
    fn a_held_folder_is_refused_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}

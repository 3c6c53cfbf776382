//! Whole-file writes that a crash cannot tear.

use std::path::Path;

use crate::error::ModelError;

/// Writes a file atomically and durably with `atomic-write-file` (a temporary sibling, fsync,
/// rename, fsync of the folder): a crash leaves the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let write = || -> std::io::Result<()> {
        let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.commit()
    };
    write().map_err(|e| ModelError::io(path, e))
}

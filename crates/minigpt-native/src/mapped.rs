//! [`MappedFile`]: a weights file mapped read-only into memory, so tensors are packed straight
//! from the page cache with no copy of the file, and each tensor's pages are given back once
//! it is packed (the process never holds the file and the packed weights whole at once).

// Unsafe code: creating the map, and dropping its pages.
#![allow(unsafe_code)]

use std::ops::Range;
use std::path::Path;

/// A file mapped read-only.
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        // SAFETY: a read-only, shared file mapping. The one hazard, as for every loader that
        // maps weights (llama.cpp, candle, safetensors' own examples), is another process
        // truncating or rewriting the file while it is mapped; the Hugging Face cache and model
        // directories are not written in place (new files are renamed over old ones).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Self { map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Drops the pages of `range` (bytes already read) from this process's memory; reading
    /// them again would load them from the file again.
    pub fn release(&self, range: Range<usize>) {
        let len = range.end.saturating_sub(range.start);
        if len == 0 || range.end > self.map.len() {
            return;
        }
        #[cfg(unix)]
        // SAFETY: the map is shared, read-only and file-backed, so dropping its pages loses no
        // data (MADV_DONTNEED's danger is for private or anonymous memory, whose pages it
        // zeroes); the range lies inside the map. A failure only leaves the pages resident.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, len)
        };
    }
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedFile({} bytes)", self.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_file_and_reads_it_again_after_a_release() {
        let dir = std::env::temp_dir().join(format!("minigpt-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.bin");
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let m = MappedFile::open(&path).unwrap();
        assert_eq!(m.bytes(), &data[..]);
        m.release(100..5000);
        m.release(0..data.len());
        assert_eq!(
            m.bytes(),
            &data[..],
            "released pages read back from the file"
        );
        m.release(5..1_000_000); // out of range: ignored
        drop(m);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

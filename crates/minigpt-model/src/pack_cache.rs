//! [`PackCache`]: packed weights kept on disk between runs, one file per weights file and
//! storage type, so that a model loads like llama.cpp's GGUF files: the file is mapped and the
//! first token computed from it in place, with no conversion and no copy. The first load of a
//! weights file packs it from the safetensors as before and writes the packed file.
//!
//! A packed file records its source's identity (the canonical path of `model.safetensors`,
//! its size, modification time, inode and device), the model's shape and the storage type; a
//! load uses it only when all of them match, and otherwise packs again and replaces it. The
//! Hugging Face cache never rewrites a blob in place, and a changed local file changes its
//! size or modification time.
//!
//! Writing: a temporary file in the cache folder, renamed into place (a concurrent load sees
//! the old file or the new one). It is not flushed to disk (`fsync` of a 500 MB file took
//! 2.7 s here, against 0.11 s to write it): instead it is stamped with the boot it was written
//! in (Linux's `boot_id`), and a load in another boot, the only kind that can follow a crash
//! that lost unflushed data, checks the file's CRC once and stamps it with its own boot.
//! Where there is no boot id the file is flushed before the rename and trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minigpt_native::{DType, MappedFile, NativeGpt, PackedHeader};
use sha2::Digest;

use crate::config::GptConfig;
use crate::error::ModelError;

/// The environment variable that turns the cache off (`0`, `off` or `false`).
pub const PACK_CACHE_ENV: &str = "MINIGPT_PACK_CACHE";
/// The environment variable naming minigpt's cache folder.
pub const CACHE_DIR_ENV: &str = "MINIGPT_CACHE_DIR";

/// A folder of packed-weights files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackCache {
    dir: PathBuf,
}

impl PackCache {
    /// Packed files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache the environment asks for: `$MINIGPT_CACHE_DIR/packed`, else
    /// `$XDG_CACHE_HOME/minigpt/packed`, else `~/.cache/minigpt/packed`; `None` when
    /// `MINIGPT_PACK_CACHE` is `0`, `off` or `false`, or no folder can be named.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Self> {
        if let Some(v) = var(PACK_CACHE_ENV)
            && matches!(
                v.to_string_lossy().to_ascii_lowercase().as_str(),
                "0" | "off" | "false" | "no"
            )
        {
            return None;
        }
        let root = var(CACHE_DIR_ENV).map(PathBuf::from).or_else(|| {
            var("XDG_CACHE_HOME")
                .map(|x| PathBuf::from(x).join("minigpt"))
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("minigpt")))
        })?;
        Some(Self::new(root.join("packed")))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The packed file for `source` (canonical) in `dtype`: one per weights file and type, so
    /// a changed file replaces its old packing instead of adding one.
    fn file_for(&self, canonical: &Path, dtype: DType) -> PathBuf {
        let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{}.mgpk", dtype.name()))
    }
}

/// This boot's id (Linux), or nothing where there is none.
fn boot_stamp() -> Vec<u8> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().as_bytes().to_vec())
        .unwrap_or_default()
}

/// The identity of the weights file `path`: its canonical path (and that path itself).
fn identity(path: &Path) -> std::io::Result<(PathBuf, Vec<u8>)> {
    let canonical = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&canonical)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let (ino, dev) = {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), meta.dev())
    };
    #[cfg(not(unix))]
    let (ino, dev) = (0u64, 0u64);
    let mut id = canonical.as_os_str().as_encoded_bytes().to_vec();
    id.extend(format!("\0{}\0{mtime}\0{ino}\0{dev}", meta.len()).bytes());
    Ok((canonical, id))
}

/// A weights file's packed file in a cache: where it is and what it must hold.
pub(crate) struct CacheEntry {
    path: PathBuf,
    header: PackedHeader,
}

impl CacheEntry {
    /// The entry for the weights file `weights` of `cfg`'s model in `dtype`.
    pub(crate) fn new(
        cache: &PackCache,
        weights: &Path,
        cfg: &GptConfig,
        dtype: DType,
    ) -> Result<Self, ModelError> {
        let (canonical, source) = identity(weights).map_err(|e| ModelError::io(weights, e))?;
        Ok(Self {
            path: cache.file_for(&canonical, dtype),
            header: PackedHeader {
                config: cfg.native_config(),
                sizes: cfg.native_sizes(),
                dtype,
                source,
            },
        })
    }

    /// The cached model, mapped, when a whole packed file for exactly these weights is
    /// there.
    pub(crate) fn open(&self) -> Option<NativeGpt> {
        let map = MappedFile::open(&self.path).ok()?;
        let stamp = boot_stamp();
        let opened = NativeGpt::from_packed(Arc::new(map), &self.header, &stamp).ok()?;
        if opened.checked {
            self.restamp(opened.stamp_at, &stamp);
        }
        Some(opened.model)
    }

    /// Stamps the checked file with this boot, so later loads skip the check (best effort:
    /// a file that cannot be written is checked again next time).
    fn restamp(&self, at: usize, stamp: &[u8]) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            let len = std::fs::metadata(&self.path).map_or(0, |m| m.len() as usize);
            if len == at + stamp.len()
                && let Ok(f) = std::fs::OpenOptions::new().write(true).open(&self.path)
            {
                let _ = f.write_all_at(stamp, at as u64);
            }
        }
        #[cfg(not(unix))]
        let _ = (at, stamp);
    }

    /// Writes `net` as this entry's packed file: a temporary file renamed into place, so a
    /// concurrent load never sees a torn one (see the module documentation for crashes). A
    /// failure is reported and otherwise ignored: the model is loaded either way.
    pub(crate) fn store(&self, net: &NativeGpt) {
        let write = || -> std::io::Result<()> {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let stamp = boot_stamp();
            let mut file = tempfile::Builder::new()
                .prefix(".packing-")
                .tempfile_in(dir)?;
            {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file.as_file_mut());
                net.write_packed(&self.header.source, &stamp, &mut out)?;
            }
            if stamp.is_empty() {
                file.as_file().sync_all()?;
            }
            file.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            eprintln!(
                "minigpt: could not keep the packed weights in {} ({e}); the model loads \
                 anyway. Set {CACHE_DIR_ENV} to a writable folder, or {PACK_CACHE_ENV}=0 to \
                 stop trying",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
    }

    #[test]
    fn the_environment_names_the_folder_or_turns_the_cache_off() {
        let at = |pairs: &[(&str, &str)]| PackCache::from_vars(vars(pairs)).map(|c| c.dir);
        assert_eq!(
            at(&[("HOME", "/h")]),
            Some(PathBuf::from("/h/.cache/minigpt/packed"))
        );
        assert_eq!(
            at(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/x/minigpt/packed"))
        );
        assert_eq!(
            at(&[
                ("HOME", "/h"),
                ("XDG_CACHE_HOME", "/x"),
                (CACHE_DIR_ENV, "/m")
            ]),
            Some(PathBuf::from("/m/packed"))
        );
        for off in ["0", "off", "FALSE", "no"] {
            assert_eq!(at(&[("HOME", "/h"), (PACK_CACHE_ENV, off)]), None, "{off}");
        }
        assert!(at(&[("HOME", "/h"), (PACK_CACHE_ENV, "1")]).is_some());
        assert_eq!(at(&[]), None, "no folder to name");
    }

    #[test]
    fn one_file_per_weights_file_and_type() {
        let c = PackCache::new("/c");
        let a = c.file_for(Path::new("/m/a/model.safetensors"), DType::F32);
        assert_ne!(
            a,
            c.file_for(Path::new("/m/b/model.safetensors"), DType::F32)
        );
        assert_ne!(
            a,
            c.file_for(Path::new("/m/a/model.safetensors"), DType::F16)
        );
        assert!(a.starts_with("/c") && a.to_string_lossy().ends_with("-f32.mgpk"));
    }
}

//! A checkpoint straight into the native engine, with no Burn module in between: the weights
//! file is memory-mapped, each tensor packed from the map in its stored type and its pages
//! given back once packed, so loading never holds the file and the packed weights whole at
//! once (peak memory about the packed size).

use std::path::Path;

use minigpt_native::{DType, Elements, MappedFile, NativeGpt, WeightSource};

use crate::checkpoint::model_files;
use crate::config::GptConfig;
use crate::error::ModelError;
use crate::pack_cache::{CacheEntry, PackCache};
use crate::tensor_index::TensorIndex;

/// Reads a model directory into the native engine, weights packed in `dtype`: mapped from
/// `cache`'s packed file when it has one for these weights, else packed from the safetensors
/// file (and then stored in `cache`).
pub(crate) fn load_native_dir(
    dir: &Path,
    dtype: DType,
    cache: Option<&PackCache>,
) -> Result<(GptConfig, NativeGpt), ModelError> {
    let (cfg, path) = model_files(dir)?;
    let entry = cache
        .map(|c| CacheEntry::new(c, &path, &cfg, dtype))
        .transpose()?;
    if let Some(net) = entry.as_ref().and_then(CacheEntry::open) {
        return Ok((cfg, net));
    }
    let mapped = MappedFile::open(&path).map_err(|e| ModelError::io(&path, e))?;
    let net = native_from_bytes(&cfg, mapped.bytes(), &path, dtype, Some(&mapped))?;
    if let Some(entry) = &entry {
        entry.store(&net);
    }
    Ok((cfg, net))
}

/// Packs the safetensors file `bytes` (of `cfg`'s model) in `dtype`; `mapped`, when `bytes`
/// is its map, gets each tensor's pages back once packed. `path` is only for messages.
pub(crate) fn native_from_bytes(
    cfg: &GptConfig,
    bytes: &[u8],
    path: &Path,
    dtype: DType,
    mapped: Option<&MappedFile>,
) -> Result<NativeGpt, ModelError> {
    let index = TensorIndex::new(bytes, path)?;
    index.check(cfg)?;
    let sizes = cfg.native_sizes();
    let mut source = FileSource {
        index,
        bytes,
        mapped,
        to_f16: dtype == DType::F16,
        refused: None,
    };
    let net = NativeGpt::from_source(cfg.native_config(), sizes, dtype, &mut source);
    // Each tensor's values are checked as it is packed (not all first: that would bring the
    // whole file into memory at once).
    match source.refused {
        Some(e) => Err(e),
        None => Ok(net),
    }
}

/// A checked file's tensors for the engine.
struct FileSource<'a> {
    index: TensorIndex<'a>,
    bytes: &'a [u8],
    mapped: Option<&'a MappedFile>,
    /// Whether the weights are stored as f16 (values beyond its range are refused).
    to_f16: bool,
    /// The first tensor refused for a non-finite (or, to f16, out-of-range) value.
    refused: Option<ModelError>,
}

impl WeightSource for FileSource<'_> {
    fn tensor(&mut self, name: &str) -> Elements<'_> {
        if self.refused.is_none()
            && let Err(e) = self.index.check_finite(name, self.to_f16)
        {
            self.refused = Some(e);
        }
        self.index
            .elements(name)
            .unwrap_or_else(|| panic!("{name} was checked before packing"))
    }

    fn done(&mut self, name: &str) {
        if let (Some(m), Some(range)) = (self.mapped, self.index.byte_range(name, self.bytes)) {
            m.release(range);
        }
    }
}

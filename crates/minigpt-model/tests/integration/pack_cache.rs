//! The packed-weights cache (`PackCache`): the first native load of a weights file packs it
//! and stores the packed file; later loads map that file and give the same logits; a changed
//! weights file, a cut-off or foreign packed file, or an unwritable cache folder falls back to
//! packing from the safetensors.

use std::path::{Path, PathBuf};

use minigpt_model::{GptLm, PackCache, parse_target};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/family/gpt2")
}

/// A copy of the gpt2-shaped fixture in its own folder (the cache is keyed by the file).
fn model_copy(root: &Path) -> PathBuf {
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    dir
}

fn logits(dir: &Path, dtype: &str, cache: &PackCache) -> Vec<f32> {
    let lm = GptLm::load_cached(dir, &parse_target("cpu", dtype).unwrap(), Some(cache)).unwrap();
    let out = lm.sequence_logits(&[46, 20, 75, 21, 11]);
    lm.settle();
    // Settled weights compute the same values as mapped ones.
    assert_eq!(lm.sequence_logits(&[46, 20, 75, 21, 11]), out);
    out
}

fn packed_files(cache: &PackCache) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cache.dir())
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn the_second_load_maps_the_packed_file_and_matches_the_first() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_copy(root.path());
    let cache = PackCache::new(root.path().join("cache"));
    let uncached = GptLm::load_to(&dir, &parse_target("cpu", "f32").unwrap())
        .unwrap()
        .sequence_logits(&[46, 20, 75, 21, 11]);
    assert!(packed_files(&cache).is_empty(), "load_to keeps no cache");

    let first = logits(&dir, "f32", &cache);
    assert_eq!(first, uncached, "packing for the cache changes nothing");
    let files = packed_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let packed = &files[0];
    assert!(packed.to_string_lossy().ends_with("-f32.mgpk"));
    assert_eq!(logits(&dir, "f32", &cache), first, "mapped from the cache");

    // The second load really reads the packed file: change a weight in it (past the header,
    // inside the token embedding) and the logits change.
    let mut bytes = std::fs::read(packed).unwrap();
    let at = 4096 + 1000;
    bytes[at..at + 4].copy_from_slice(&100f32.to_le_bytes());
    std::fs::write(packed, &bytes).unwrap();
    assert_ne!(
        logits(&dir, "f32", &cache),
        first,
        "the packed file was read"
    );

    // A rewritten weights file (new modification time) is packed again, and its packed file
    // replaces the stale one.
    let weights = dir.join("model.safetensors");
    let content = std::fs::read(&weights).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&weights, &content).unwrap();
    assert_eq!(
        logits(&dir, "f32", &cache),
        first,
        "repacked from the new file"
    );
    assert_eq!(packed_files(&cache), files, "replaced, not added");
    assert_eq!(logits(&dir, "f32", &cache), first);

    // A cut-off packed file is refused and rewritten whole.
    let len = std::fs::metadata(packed).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(packed)
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    assert_eq!(
        logits(&dir, "f32", &cache),
        first,
        "a cut-off file is not used"
    );
    assert_eq!(std::fs::metadata(packed).unwrap().len(), len);

    // Each storage type has its own packed file, matching a load without the cache.
    let f16 = GptLm::load_to(&dir, &parse_target("cpu", "f16").unwrap())
        .unwrap()
        .sequence_logits(&[46, 20, 75, 21, 11]);
    assert_eq!(logits(&dir, "f16", &cache), f16);
    assert_eq!(logits(&dir, "f16", &cache), f16, "f16 mapped");
    assert_eq!(packed_files(&cache).len(), 2);
}

#[test]
fn an_unwritable_cache_folder_still_loads_the_model() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_copy(root.path());
    // A file where the cache folder would be: it cannot be created.
    let blocked = root.path().join("blocked");
    std::fs::write(&blocked, b"not a folder").unwrap();
    let cache = PackCache::new(blocked.join("packed"));
    let want = GptLm::load_to(&dir, &parse_target("cpu", "f32").unwrap())
        .unwrap()
        .sequence_logits(&[46, 20]);
    let lm = GptLm::load_cached(&dir, &parse_target("cpu", "f32").unwrap(), Some(&cache)).unwrap();
    assert_eq!(lm.sequence_logits(&[46, 20]), want);
}

/// A packed file stamped in another boot (as after a crash) is checked once: whole, it is used
/// and stamped with this boot; with bytes lost (zeros), it is packed again.
#[cfg(target_os = "linux")]
#[test]
fn a_file_from_another_boot_is_checked_once() {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let boot = boot.trim().as_bytes();
    let root = tempfile::tempdir().unwrap();
    let dir = model_copy(root.path());
    let cache = PackCache::new(root.path().join("cache"));
    let first = logits(&dir, "f32", &cache);
    let packed = &packed_files(&cache)[0];
    let bytes = std::fs::read(packed).unwrap();
    let stamp_at = bytes.len() - boot.len();
    assert_eq!(&bytes[stamp_at..], boot, "stamped with this boot");
    let mut other = bytes.clone();
    other[stamp_at..].fill(b'0');

    // Whole: used, and stamped with this boot.
    std::fs::write(packed, &other).unwrap();
    assert_eq!(logits(&dir, "f32", &cache), first);
    assert_eq!(std::fs::read(packed).unwrap(), bytes, "restamped");

    // Zeros where a weight was (and another boot's stamp): refused and packed again.
    let mut lost = other.clone();
    lost[4096..8192].fill(0);
    std::fs::write(packed, &lost).unwrap();
    assert_eq!(logits(&dir, "f32", &cache), first, "packed again");
    assert_eq!(std::fs::read(packed).unwrap(), bytes, "rewritten whole");
}

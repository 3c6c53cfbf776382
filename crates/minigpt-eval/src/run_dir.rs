//! A run folder: its layout (`run.json`, `generations.csv`, `summary.csv`, `plots/`), and every
//! read and write of it. Whole files are written atomically and durably; `generations.csv`
//! grows by appends of whole batches, and a torn last record (a kill mid-write) is cut off
//! when the folder is next opened.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bootstrap::Interval;
use crate::config::differing_keys;
use crate::error::RunError;
use crate::records::{FeatureRecord, Keyed, TokenRecord};
use crate::row::{GenerationRow, RowKey, SummaryRow, format_num};
use crate::run_lock::{LOCK_FILE, RunLock};
use crate::summary::SummaryLine;

/// The generated rows.
pub const GENERATIONS: &str = "generations.csv";
/// One row per model × strategy × temperature.
pub const SUMMARY: &str = "summary.csv";
/// The human continuations' rows (runs whose prompts have references).
pub const HUMAN_CSV: &str = "human.csv";
/// The config, the grid's fingerprint and the process that wrote the folder.
pub const RUN_JSON: &str = "run.json";
/// The charts of the summary's metrics.
pub const PLOTS: &str = "plots";
/// Each row's tokens with their log-probabilities and entropies ([`TokenRecord`]).
pub const TOKENS: &str = "tokens.jsonl";
/// Each row's MAUVE feature vector ([`FeatureRecord`]).
pub const FEATURES: &str = "features.jsonl";
/// The completion record ([`Completion`]): written last, once the folder holds every row of
/// its grid or shard; absent while it does not.
pub const COMPLETE: &str = "complete.json";

/// `complete.json`: what a finished folder holds, so that `minigpt merge` can tell a finished
/// shard from one that died halfway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// [`fingerprint`] of the grid the rows belong to (`run.json`'s `grid`).
    pub fingerprint: String,
    /// `K/N` for a shard.
    pub shard: Option<String>,
    /// Rows of the grid (or of the shard) that the folder holds: all of them.
    pub rows: usize,
    /// When the last row was written (RFC 3339).
    pub finished: String,
}

/// SHA-256 (hex) of a grid's compact JSON: equal grids, equal fingerprints.
pub fn fingerprint(grid: &Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(grid.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `run.json`. Fields are in alphabetical order, the order the file has always had.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// Rows per model batch that the last process ran (`"auto"` resolved); absent in folders
    /// written before it was recorded and in merged ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// The resolved config.
    #[serde(default)]
    pub config: Value,
    /// When the run finished (RFC 3339), `null` while unfinished.
    #[serde(default)]
    pub finished: Option<String>,
    /// What determines the generated rows: a folder only takes rows of an equal grid.
    #[serde(default)]
    pub grid: Value,
    /// For a merged folder: the folders merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<Vec<MergedPart>>,
    /// Versions, device, threads, command and start time of the process.
    #[serde(default)]
    pub meta: Value,
    /// Rows in the whole grid.
    #[serde(default)]
    pub rows_in_grid: usize,
    /// Rows this folder is to hold (all, or one shard's).
    #[serde(default)]
    pub rows_in_this_run: usize,
    /// `K/N` for a shard.
    #[serde(default)]
    pub shard: Option<String>,
}

/// One folder of a merge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedPart {
    /// The folder.
    pub dir: String,
    /// Its shard, if it was one.
    pub shard: Option<String>,
}

/// UTC time now as RFC 3339 to the second (`2026-11-27T19:05:00Z`), as `run.json` records it.
pub fn utc_now() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as RFC 3339 to the second, as `run.json` records times.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A run folder at a path (which may not exist yet).
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the folder if needed and locks it for this process ([`RunLock`]); refuses a
    /// folder that holds other files but no run, and a folder another process holds.
    pub fn lock(&self) -> Result<RunLock, RunError> {
        let out = &self.path;
        if out.exists() && !self.file(RUN_JSON).is_file() {
            let foreign = std::fs::read_dir(out)
                .map_err(|e| RunError::io("read", out, e))?
                .filter_map(Result::ok)
                .any(|e| e.file_name() != LOCK_FILE);
            if foreign {
                return Err(RunError(format!(
                    "{} exists and is not a minigpt run folder (no run.json): choose another --out",
                    out.display()
                )));
            }
        }
        std::fs::create_dir_all(out).map_err(|e| RunError::io("create", out, e))?;
        RunLock::acquire(out)
    }

    /// The path of a file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the folder for a run with `info`: a new or empty folder gets `run.json` and the
    /// CSV header; a run of the same grid is resumed (its torn last record cut off); one of a
    /// different grid is refused, naming the keys that differ, unless `force`. Returns the
    /// keys of the rows already there and the folder's lock, to hold until the run ends.
    pub fn prepare(
        &self,
        info: &RunInfo,
        force: bool,
    ) -> Result<(HashSet<RowKey>, RunLock), RunError> {
        let out = &self.path;
        let lock = self.lock()?;
        if self.file(RUN_JSON).is_file() {
            let old = self.read_info()?;
            let keys = differing_keys(&old.grid, &info.grid);
            if !keys.is_empty() && !force {
                return Err(RunError(format!(
                    "{} holds a run of a different config (differs in: {}): use another --out, or --force to add to it",
                    out.display(),
                    keys.join(", ")
                )));
            }
        }
        // The folder may change from here on: it is complete again only when the run says so.
        self.clear_completion()?;
        self.write_info(info)?;
        for name in [TOKENS, FEATURES] {
            self.repair_jsonl(name)?;
        }
        let gens = self.file(GENERATIONS);
        let done = if gens.is_file() {
            read_generations(&gens, true)?
                .iter()
                .map(GenerationRow::key)
                .collect()
        } else {
            self.write_generations(&[])?;
            HashSet::new()
        };
        Ok((done, lock))
    }

    /// Writes `complete.json` (atomically: a reader sees the whole record or none).
    pub fn write_completion(&self, c: &Completion) -> Result<(), RunError> {
        let p = self.file(COMPLETE);
        let text = serde_json::to_string_pretty(c).map_err(|e| RunError::io("encode", &p, e))?;
        atomic_write(&p, text.as_bytes())
    }

    /// `complete.json`, if the folder has one.
    pub fn read_completion(&self) -> Result<Option<Completion>, RunError> {
        let p = self.file(COMPLETE);
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| RunError::io("read", &p, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RunError::io("parse", &p, e))
    }

    /// Removes `complete.json` (a run is about to change the folder's rows).
    pub fn clear_completion(&self) -> Result<(), RunError> {
        let p = self.file(COMPLETE);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RunError::io("remove", &p, e))
            }
            _ => Ok(()),
        }
    }

    /// Reads `run.json`.
    pub fn read_info(&self) -> Result<RunInfo, RunError> {
        let p = self.file(RUN_JSON);
        let text = std::fs::read_to_string(&p).map_err(|e| RunError::io("read", &p, e))?;
        serde_json::from_str(&text).map_err(|e| RunError::io("parse", &p, e))
    }

    /// Writes `run.json`.
    pub fn write_info(&self, info: &RunInfo) -> Result<(), RunError> {
        let p = self.file(RUN_JSON);
        let text = serde_json::to_string_pretty(info).map_err(|e| RunError::io("encode", &p, e))?;
        atomic_write(&p, text.as_bytes())
    }

    /// The rows of `generations.csv` (the file is not changed; a torn last record is left out).
    pub fn read_generations(&self) -> Result<Vec<GenerationRow>, RunError> {
        read_generations(&self.file(GENERATIONS), false)
    }

    /// Replaces `generations.csv` with the header and `rows`.
    pub fn write_generations(&self, rows: &[GenerationRow]) -> Result<(), RunError> {
        write_csv(&self.file(GENERATIONS), rows)
    }

    /// Opens `generations.csv` for appending rows.
    pub fn appender(&self) -> Result<Appender, RunError> {
        let path = self.file(GENERATIONS);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| RunError::io("open", &path, e))?;
        Ok(Appender { file, path })
    }

    /// Appends `records` to the JSONL file `name` in one write, flushed (a kill leaves whole
    /// lines and at most a torn last one, which the next [`RunDir::prepare`] cuts off).
    pub fn append_jsonl<T: Serialize>(&self, name: &str, records: &[T]) -> Result<(), RunError> {
        let path = self.file(name);
        let bytes = jsonl_bytes(records).map_err(|e| RunError::io("encode", &path, e))?;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.flush()))
            .map_err(|e| RunError::io("append to", &path, e))
    }

    /// The records of the JSONL file `name` (none when it does not exist), a torn last line
    /// left out; where a key repeats (a batch redone after a kill), the last record counts.
    pub fn read_jsonl<T: DeserializeOwned + Keyed>(&self, name: &str) -> Result<Vec<T>, RunError> {
        let path = self.file(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(RunError::io("read", &path, e)),
        };
        let whole = complete_lines(&bytes);
        let mut out: Vec<T> = vec![];
        let mut at: std::collections::HashMap<crate::row::RowKey, usize> = Default::default();
        for (i, line) in bytes[..whole].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let rec: T = serde_json::from_slice(line)
                .map_err(|e| RunError(format!("{}: line {}: {e}", path.display(), i + 1)))?;
            match at.get(&rec.key()) {
                Some(&j) => out[j] = rec,
                None => {
                    at.insert(rec.key(), out.len());
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    /// Replaces the JSONL file `name` with `records`, atomically.
    pub fn write_jsonl<T: Serialize>(&self, name: &str, records: &[T]) -> Result<(), RunError> {
        let path = self.file(name);
        let bytes = jsonl_bytes(records).map_err(|e| RunError::io("encode", &path, e))?;
        atomic_write(&path, &bytes)
    }

    /// Cuts a torn last line (no line end: a write cut short) off the JSONL file `name`.
    fn repair_jsonl(&self, name: &str) -> Result<(), RunError> {
        let path = self.file(name);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(());
        };
        let whole = complete_lines(&bytes);
        if whole < bytes.len() {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(whole as u64))
                .map_err(|e| RunError::io("repair", &path, e))?;
        }
        Ok(())
    }

    /// The rows' token records.
    pub fn read_tokens(&self) -> Result<Vec<TokenRecord>, RunError> {
        self.read_jsonl(TOKENS)
    }

    /// The rows' feature records.
    pub fn read_features(&self) -> Result<Vec<FeatureRecord>, RunError> {
        self.read_jsonl(FEATURES)
    }

    /// The lines of `summary.csv`: each cell's metrics and the intervals of its
    /// `<metric>_lo` / `<metric>_hi` columns.
    pub fn read_summary(&self) -> Result<Vec<SummaryLine>, RunError> {
        let path = self.file(SUMMARY);
        let mut r = csv::Reader::from_path(&path).map_err(|e| RunError::io("read", &path, e))?;
        let head = r
            .headers()
            .map_err(|e| RunError::io("parse", &path, e))?
            .clone();
        // Metrics with an interval: the names before `_lo` where `_hi` follows.
        let bounded: Vec<(String, usize)> = head
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let name = h.strip_suffix("_lo")?;
                (head.get(i + 1) == Some(&format!("{name}_hi"))).then(|| (name.to_string(), i))
            })
            .collect();
        let mut lines = vec![];
        for rec in r.records() {
            let rec = rec.map_err(|e| RunError::io("parse", &path, e))?;
            let row: SummaryRow = rec
                .deserialize(Some(&head))
                .map_err(|e| RunError::io("parse", &path, e))?;
            let num = |i: usize| rec.get(i).and_then(|v| v.parse::<f64>().ok());
            let intervals = bounded
                .iter()
                .map(|(name, i)| {
                    let iv = num(*i).zip(num(i + 1)).map(|(lo, hi)| Interval { lo, hi });
                    (name.clone(), iv)
                })
                .collect();
            lines.push(SummaryLine { row, intervals });
        }
        Ok(lines)
    }

    /// Rewrites `summary.csv` and the plots from the folder's generated rows (and its human
    /// rows): each cell's metrics, then the bootstrap interval of each as `<metric>_lo` and
    /// `<metric>_hi`.
    pub fn write_summary(&self, generations: &[GenerationRow]) -> Result<(), RunError> {
        let human = self.read_human()?;
        let mut lines = crate::summary::summarize_lines(generations);
        lines.extend(crate::summary::summarize_lines(&human));
        crate::summary::add_mauve(&mut lines, generations, &human, &self.read_features()?)?;
        let mut head = header::<SummaryRow>();
        let names: Vec<String> = lines
            .first()
            .map(|l| l.intervals.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        for n in &names {
            head.push(format!("{n}_lo"));
            head.push(format!("{n}_hi"));
        }
        let path = self.file(SUMMARY);
        let mut records = Vec::with_capacity(lines.len());
        for line in &lines {
            let mut rec = record_of(&line.row).map_err(|e| RunError::io("encode", &path, e))?;
            for n in &names {
                let iv = line.interval(n);
                rec.push(format_num(iv.map(|i| i.lo)));
                rec.push(format_num(iv.map(|i| i.hi)));
            }
            records.push(rec);
        }
        write_records(&path, &head, &records)?;
        self.write_plots(&lines)
    }

    /// The rows of human continuations (`human.csv`), none when the run has no references.
    pub fn read_human(&self) -> Result<Vec<GenerationRow>, RunError> {
        let path = self.file(HUMAN_CSV);
        if path.exists() {
            read_csv(&path)
        } else {
            Ok(vec![])
        }
    }

    /// Writes `human.csv` atomically.
    pub fn write_human(&self, rows: &[GenerationRow]) -> Result<(), RunError> {
        write_csv(&self.file(HUMAN_CSV), rows)
    }

    /// Writes `plots/<metric>.svg` for each plotted metric of `rows` that has values.
    pub fn write_plots(&self, rows: &[SummaryLine]) -> Result<(), RunError> {
        let dir = self.file(PLOTS);
        std::fs::create_dir_all(&dir).map_err(|e| RunError::io("create", &dir, e))?;
        for (metric, svg) in crate::plot::charts(rows) {
            atomic_write(&dir.join(format!("{metric}.svg")), svg.as_bytes())?;
        }
        Ok(())
    }
}

/// Appends whole batches of rows to `generations.csv`.
pub struct Appender {
    file: File,
    path: PathBuf,
}

impl Appender {
    /// Appends `rows` in one write and flushes: a kill leaves whole rows and at most a torn
    /// tail, which the next [`RunDir::prepare`] cuts off.
    pub fn append(&mut self, rows: &[GenerationRow]) -> Result<(), RunError> {
        let bytes = csv_bytes(None, rows).map_err(|e| RunError::io("encode", &self.path, e))?;
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.flush())
            .map_err(|e| RunError::io("append to", &self.path, e))
    }

    /// Syncs the file to disk.
    pub fn finish(self) -> Result<(), RunError> {
        self.file
            .sync_all()
            .map_err(|e| RunError::io("sync", &self.path, e))
    }
}

/// The length of `bytes` up to its last line end: what a torn last line leaves whole.
fn complete_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// Records as JSON lines.
fn jsonl_bytes<T: Serialize>(records: &[T]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = vec![];
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes a file atomically and durably with `atomic-write-file` (a temporary sibling, fsync,
/// rename, fsync of the folder): a crash leaves the old file or the new one, never a torn one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let write = || -> std::io::Result<()> {
        let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
        file.write_all(bytes)?;
        file.commit()
    };
    write().map_err(|e| RunError::io("write", path, e))
}

/// The CSV writer of every file: records end in `\n`; fields with a comma, quote, CR or LF
/// are quoted, quotes doubled.
fn writer() -> csv::WriterBuilder {
    let mut b = csv::WriterBuilder::new();
    b.terminator(csv::Terminator::Any(b'\n')).has_headers(false);
    b
}

/// The header of `T`'s CSV: its field names, in order.
pub fn header<T: Serialize + Default>() -> Vec<String> {
    let mut w = csv::WriterBuilder::new().from_writer(vec![]);
    let bytes = w
        .serialize(T::default())
        .ok()
        .and_then(|_| w.into_inner().ok())
        .unwrap_or_default();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(String::from).collect())
        .unwrap_or_default()
}

/// One row's fields as the CSV writes them.
fn record_of<T: Serialize>(row: &T) -> Result<Vec<String>, csv::Error> {
    let bytes = csv_bytes(None, std::slice::from_ref(row))?;
    let rec = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .next()
        .transpose()?
        .unwrap_or_default();
    Ok(rec.iter().map(String::from).collect())
}

/// `rows` as CSV bytes, after `header` when given.
fn csv_bytes<T: Serialize>(header: Option<&[String]>, rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let mut w = writer().from_writer(vec![]);
    if let Some(h) = header {
        w.write_record(h)?;
    }
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Writes a CSV of `rows` with `T`'s header, atomically.
pub fn write_csv<T: Serialize + Default>(path: &Path, rows: &[T]) -> Result<(), RunError> {
    write_records(path, &header::<T>(), rows)
}

/// Writes a CSV of `header` then `rows` (typed rows, or records of fields), atomically.
pub fn write_records<T: Serialize>(
    path: &Path,
    header: &[String],
    rows: &[T],
) -> Result<(), RunError> {
    let bytes = csv_bytes(Some(header), rows).map_err(|e| RunError::io("encode", path, e))?;
    atomic_write(path, &bytes)
}

/// Reads a whole CSV of `T` rows (columns by name).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, RunError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| RunError::io("read", path, e))?;
    r.deserialize()
        .collect::<Result<_, _>>()
        .map_err(|e| RunError::io("parse", path, e))
}

/// Reads `generations.csv`, checking its header. A torn last record (no line end after it,
/// or too few fields: a write cut short) is left out, and cut off the file when `repair`.
fn read_generations(path: &Path, repair: bool) -> Result<Vec<GenerationRow>, RunError> {
    let bytes = std::fs::read(path).map_err(|e| RunError::io("read", path, e))?;
    let want = header::<GenerationRow>();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut records: Vec<csv::ByteRecord> = vec![];
    let mut rec = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut rec)
        .map_err(|e| RunError::io("parse", path, e))?
    {
        records.push(rec.clone());
    }
    // Where the complete records end: the start of a torn last record, if there is one.
    let torn = records.last().is_some_and(|last| {
        !bytes.ends_with(b"\n") || (records.len() > 1 && last.len() != want.len())
    });
    if torn {
        let start = records
            .pop()
            .and_then(|r| r.position().map(|p| p.byte()))
            .unwrap_or(0);
        if repair {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| RunError::io("repair", path, e))?;
            f.set_len(start)
                .map_err(|e| RunError::io("repair", path, e))?;
        }
    }
    let mut records = records.into_iter();
    let head = records.next().map(|h| {
        h.iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
    });
    if head.as_ref() != Some(&want) {
        return Err(RunError(format!(
            "{}: not a minigpt generations file (its header differs); use another --out folder",
            path.display()
        )));
    }
    let head = csv::ByteRecord::from(want.iter().map(String::as_str).collect::<Vec<_>>());
    records
        .enumerate()
        .map(|(i, r)| {
            if r.len() != want.len() {
                return Err(RunError(format!(
                    "{}: record {} has {} fields, not {}",
                    path.display(),
                    i + 1,
                    r.len(),
                    want.len()
                )));
            }
            r.deserialize(Some(&head))
                .map_err(|e| RunError(format!("{}: record {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;

    #[test]
    fn a_torn_last_record_is_left_out_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut second = sample_row();
        second.sample = 2;
        second.text = "two\nlines, and \"quotes\"".into();
        run.write_generations(&[sample_row(), second.clone()])
            .unwrap();
        let path = run.file(GENERATIONS);
        let whole = std::fs::read(&path).unwrap();
        let first_end = whole.len() - csv_bytes(None, &[second.clone()]).unwrap().len();
        // Every cut inside the last record: the first row survives, the file is cut back to it.
        for cut in first_end + 1..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let rows = read_generations(&path, false).unwrap();
            assert_eq!(rows.len(), 1, "cut at {cut}");
            assert_eq!(std::fs::read(&path).unwrap().len(), cut, "not repaired");
            let rows = read_generations(&path, true).unwrap();
            assert_eq!(rows.len(), 1, "cut at {cut}");
            assert_eq!(std::fs::read(&path).unwrap(), &whole[..first_end]);
        }
        std::fs::write(&path, &whole).unwrap();
        let rows = run.read_generations().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].text, second.text);
    }

    #[test]
    fn a_foreign_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GENERATIONS);
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let e = read_generations(&path, false).unwrap_err().to_string();
        assert!(e.contains("not a minigpt generations file"), "{e}");
    }
}

//! The sweep grid: cells (strategy × temperature), rows (cell × prompt × sample) in one
//! canonical order, stable per-row seeds and deterministic shards.

use minigpt_decode::Strategy;

/// One strategy at one temperature (`None` for a deterministic strategy, which runs once).
#[derive(Debug, Clone)]
pub struct Cell {
    /// The strategy's name (its file stem).
    pub strategy: String,
    /// The temperature, for sampling strategies.
    pub temperature: Option<f64>,
    /// The strategy with the temperature applied.
    pub built: Strategy,
}

/// The CSV spelling of a temperature: shortest round-trip decimal (`0.5`, `1`, `1.3`); empty
/// for none.
pub fn temperature_str(t: Option<f64>) -> String {
    t.map_or_else(String::new, |t| format!("{t}"))
}

/// Cells in order: strategies as listed; each sampling strategy at every temperature in the
/// listed order, each deterministic one (greedy, searches) once.
pub fn cells(strategies: &[(String, Strategy)], temperatures: &[f64]) -> Vec<Cell> {
    let mut out = vec![];
    for (name, s) in strategies {
        if s.is_deterministic() {
            out.push(Cell {
                strategy: name.clone(),
                temperature: None,
                built: s.clone(),
            });
        } else {
            for &t in temperatures {
                out.push(Cell {
                    strategy: name.clone(),
                    temperature: Some(t),
                    built: s.with_temperature(t),
                });
            }
        }
    }
    out
}

/// One row of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef {
    /// Index into the cells.
    pub cell: usize,
    /// Index into the prompts (the CSV's `prompt_id`).
    pub prompt: usize,
    /// Sample number, from 0.
    pub sample: usize,
}

/// Every row, cell by cell, then prompt by prompt, then sample by sample.
pub fn rows(n_cells: usize, n_prompts: usize, samples: usize) -> Vec<RowRef> {
    let mut out = Vec::with_capacity(n_cells * n_prompts * samples);
    for cell in 0..n_cells {
        for prompt in 0..n_prompts {
            for sample in 0..samples {
                out.push(RowRef {
                    cell,
                    prompt,
                    sample,
                });
            }
        }
    }
    out
}

/// Shard `k` of `n` (1-based): the `k`-th of `n` contiguous, nearly equal slices of the rows.
pub fn shard<T: Clone>(rows: &[T], k: usize, n: usize) -> Vec<T> {
    assert!(n >= 1 && (1..=n).contains(&k), "shard {k}/{n}");
    // In u128: (k − 1) × len overflows usize for shard counts near usize::MAX.
    let at = |i: usize| (i as u128 * rows.len() as u128 / n as u128) as usize;
    rows[at(k - 1)..at(k)].to_vec()
}

/// Parses `K/N` (1 ≤ K ≤ N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/4");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// A row's sampling seed: a hash of (experiment seed, prompt id, strategy, temperature,
/// sample), stable across versions, batch sizes, shards and resumes. FNV-1a over the fields
/// separated by U+001F, then SplitMix64's finaliser.
pub fn row_seed(
    experiment_seed: u64,
    prompt_id: usize,
    strategy: &str,
    temperature: Option<f64>,
    sample: usize,
) -> u64 {
    let key = format!(
        "{experiment_seed}\u{1f}{prompt_id}\u{1f}{strategy}\u{1f}{}\u{1f}{sample}",
        temperature_str(temperature)
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_print_shortest() {
        assert_eq!(temperature_str(Some(0.5)), "0.5");
        assert_eq!(temperature_str(Some(1.0)), "1");
        assert_eq!(temperature_str(Some(1.3)), "1.3");
        assert_eq!(temperature_str(None), "");
    }

    #[test]
    fn shards_partition_the_rows_in_order() {
        let all: Vec<usize> = (0..10).collect();
        for n in 1..=12 {
            let joined: Vec<usize> = (1..=n).flat_map(|k| shard(&all, k, n)).collect();
            assert_eq!(joined, all, "{n} shards");
        }
        assert_eq!(shard(&all, 2, 3), vec![3, 4, 5]);
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        // Shard counts near usize::MAX: no overflow; the last shard holds the rows.
        let big = 1usize << 62;
        assert_eq!(shard(&all, big, big), vec![9]);
        assert!(shard(&all, 1, big).is_empty());
        assert_eq!(
            parse_shard("4611686018427387904/4611686018427387904"),
            Ok((big, big))
        );
        for bad in ["0/4", "5/4", "1/0", "a/b", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        // Pinned: a change here would silently change every published sweep.
        assert_eq!(row_seed(1234, 0, "top_p_0.9", Some(0.8), 0), SEED_PIN);
        let mut seen = std::collections::HashSet::new();
        for p in 0..8 {
            for s in ["greedy", "top_k_40", "top_p_0.9"] {
                for t in [None, Some(0.5), Some(1.0)] {
                    for k in 0..3 {
                        assert!(seen.insert(row_seed(1234, p, s, t, k)));
                    }
                }
            }
        }
    }

    /// FNV-1a of "1234␟0␟top_p_0.9␟0.8␟0" then SplitMix64's finaliser, computed
    /// independently in Python (plain integer arithmetic mod 2^64).
    const SEED_PIN: u64 = 2_465_902_980_709_289_166;
}

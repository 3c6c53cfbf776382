//! The summary's bootstrap intervals equal an independent numpy computation on a hand-made
//! cell with the same seed (`scripts/bootstrap_reference.py`): the same resamples of prompts,
//! metrics written out from their definitions, numpy's percentiles.

use std::path::PathBuf;

use minigpt_eval::GenerationRow;
use minigpt_eval::bootstrap::{CellStats, RESAMPLES, SEED, interval};
use serde_json::Value;

fn reference() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/bootstrap/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn pair(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

#[track_caller]
fn close(got: (f64, f64), want: (f64, f64), what: &str) {
    assert!(
        (got.0 - want.0).abs() <= 1e-9 && (got.1 - want.1).abs() <= 1e-9,
        "{what}: {got:?} vs numpy's {want:?}"
    );
}

#[test]
fn intervals_equal_the_numpy_reference() {
    let r = reference();
    assert_eq!(r["seed"].as_u64().unwrap(), SEED);
    assert_eq!(r["resamples"].as_u64().unwrap() as usize, RESAMPLES);
    // The resamples themselves: the first three draws of prompts.
    let mut first: Vec<Vec<usize>> = vec![];
    let _ = interval(4, RESAMPLES, SEED, |w| {
        if first.len() < 3 {
            first.push(w.to_vec());
        }
        None
    });
    let want_first: Vec<Vec<usize>> = serde_json::from_value(r["first_draws"].clone()).unwrap();
    assert_eq!(first, want_first);
    // A weighted mean of per-prompt values.
    let values: Vec<f64> = serde_json::from_value(r["prompt_values"].clone()).unwrap();
    let iv = interval(4, RESAMPLES, SEED, |w| {
        let n: usize = w.iter().sum();
        Some(
            w.iter()
                .zip(&values)
                .map(|(&c, v)| c as f64 * v)
                .sum::<f64>()
                / n as f64,
        )
    })
    .unwrap();
    close((iv.lo, iv.hi), pair(&r["weighted_mean"]), "weighted mean");
    // A cell's pooled and mean metrics.
    let rows: Vec<GenerationRow> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, x)| GenerationRow {
            model: "m".into(),
            strategy: "s".into(),
            temperature: Some(1.0),
            prompt_id: x["prompt"].as_u64().unwrap() as usize,
            sample: i % 2,
            text: x["text"].as_str().unwrap().into(),
            n_tokens: x["n_tokens"].as_u64().unwrap() as usize,
            finish_reason: "length".into(),
            ..GenerationRow::default()
        })
        .collect();
    let refs: Vec<&GenerationRow> = rows.iter().collect();
    let intervals = CellStats::new(&refs, false).intervals();
    for metric in ["pooled_rep_2", "mean_n_tokens"] {
        let iv = intervals
            .iter()
            .find(|(n, _)| n == metric)
            .and_then(|(_, i)| *i)
            .unwrap_or_else(|| panic!("{metric} has an interval"));
        close((iv.lo, iv.hi), pair(&r["intervals"][metric]), metric);
    }
    // Counting types across resampled copies biases pooled distinct-n low: numpy's resampled
    // range sits below the cell's value (at most touching it), which is why minigpt gives it
    // no interval.
    let (lo, hi) = pair(&r["intervals"]["pooled_distinct_1"]);
    let whole = r["pooled_distinct_1_whole"].as_f64().unwrap();
    assert!(
        hi <= whole && lo < whole && (lo + hi) / 2.0 < whole,
        "[{lo}, {hi}] vs {whole}"
    );
    let none = intervals
        .iter()
        .find(|(n, _)| n == "pooled_distinct_1")
        .unwrap();
    assert_eq!(none.1, None);
}

//! minigpt's metrics equal an independent Python implementation (NLTK's BLEU, numpy's
//! least squares) on committed texts: `scripts/metrics_reference.py` wrote the reference.

use std::path::PathBuf;

use minigpt_eval::metrics::{
    distinct_n, pooled, rep_n, self_bleu4, self_bleu4_across, words, zipf_coefficient,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/metrics")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[track_caller]
fn same(ours: Option<f64>, theirs: &Value, what: &str) {
    match (ours, theirs.as_f64()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{what}: {a} vs {b}"),
        (a, _) => panic!("{what}: {a:?} vs {theirs}"),
    }
}

#[test]
fn metrics_equal_the_python_reference() {
    let texts = load("texts.json");
    let reference = load("reference.json");
    let groups = texts["groups"].as_array().unwrap();
    let want = reference["groups"].as_array().unwrap();
    assert_eq!(groups.len(), want.len());
    let mut checked = 0;
    for (g, (group, r)) in groups.iter().zip(want).enumerate() {
        let ws: Vec<Vec<&str>> = group
            .as_array()
            .unwrap()
            .iter()
            .map(|t| words(t.as_str().unwrap()))
            .collect();
        for (i, (w, row)) in ws.iter().zip(r["rows"].as_array().unwrap()).enumerate() {
            for n in 2..=4 {
                same(
                    rep_n(w, n),
                    &row[format!("rep_{n}")],
                    &format!("group {g} text {i} rep_{n}"),
                );
            }
            for n in 1..=2 {
                same(
                    distinct_n(w, n),
                    &row[format!("distinct_{n}")],
                    &format!("group {g} text {i} distinct_{n}"),
                );
            }
            checked += 5;
        }
        let p = pooled(&ws);
        let pr = &r["pooled"];
        for (k, n) in [2, 3, 4].iter().enumerate() {
            same(
                p.rep[k],
                &pr[format!("rep_{n}")],
                &format!("group {g} pooled rep_{n}"),
            );
        }
        same(
            p.diversity,
            &pr["diversity"],
            &format!("group {g} diversity"),
        );
        same(
            p.distinct[0],
            &pr["distinct_1"],
            &format!("group {g} distinct_1"),
        );
        same(
            p.distinct[1],
            &pr["distinct_2"],
            &format!("group {g} distinct_2"),
        );
        same(
            self_bleu4(&ws),
            &r["self_bleu4"],
            &format!("group {g} self-BLEU-4"),
        );
        let prompt_of: Vec<usize> = (0..ws.len()).map(|i| i / 2).collect();
        same(
            self_bleu4_across(&ws, &prompt_of),
            &r["self_bleu4_across"],
            &format!("group {g} self-BLEU-4 across prompts"),
        );
        same(
            zipf_coefficient(&ws),
            &r["zipf"],
            &format!("group {g} Zipf"),
        );
        checked += 9;
    }
    assert!(checked > 80);
}

//! `holtzman_repetition` equals a line-by-line port of Holtzman et al. 2020's reference code
//! (`degen`, `metrics/repetition.py`) on hand-made token sequences at its boundaries (n ≥ 3,
//! more than 50 copies, ties, a final end-of-text token, phrases longer than 90 tokens) and on
//! seeded random ones: `scripts/holtzman_reference.py` wrote the fixture.

use std::path::PathBuf;

use minigpt_eval::metrics::{Repetition, holtzman_repetition};
use serde_json::Value;

#[test]
fn repetition_equals_the_degen_port() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/metrics/holtzman.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let eos = fixture["eos"].as_u64().unwrap() as u32;
    let cases = fixture["cases"].as_array().unwrap();
    let mut repeating = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let tokens: Vec<u32> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        let want = case["repetition"].as_object().map(|r| Repetition {
            phrase_len: r["phrase_length"].as_u64().unwrap() as usize,
            times: r["times"].as_u64().unwrap() as usize,
        });
        repeating += usize::from(want.is_some());
        assert_eq!(holtzman_repetition(&tokens, Some(eos)), want, "{name}");
    }
    assert!(
        cases.len() >= 29 && repeating >= 10,
        "the fixture covers both outcomes"
    );
}

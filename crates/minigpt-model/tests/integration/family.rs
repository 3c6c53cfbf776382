//! The GPT-2 family's configurations against transformers: one small random checkpoint per
//! published config (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, and `ctx-only`, a
//! config that spells the context only as the legacy `n_ctx`), each with that family's
//! config.json keys and head count (distilgpt2 also its 6 blocks) (`scripts/make_gpt2_family_fixtures.py`).
//! Every checkpoint loads on the native engine (memory-mapped; then again through the packed
//! weights cache, packed and stored, then mapped from the packed file) and on Burn's flex
//! device, and its logits match GPT2LMHeadModel's within 1e-4.

use std::path::PathBuf;

use minigpt_model::{GptLm, PackCache, parse_target};

const FAMILY: [(&str, usize, usize); 6] = [
    // name, heads (as published), blocks (3 in the fixtures; distilgpt2's own 6)
    ("gpt2", 12, 3),
    ("gpt2-medium", 16, 3),
    ("gpt2-large", 20, 3),
    ("gpt2-xl", 25, 3),
    ("distilgpt2", 12, 6),
    ("ctx-only", 12, 2),
];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/family")
        .join(name)
}

#[test]
fn every_family_config_matches_transformers() {
    for (name, heads, blocks) in FAMILY {
        let text = std::fs::read_to_string(dir(name).join("reference.json")).unwrap();
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ids: Vec<u32> = r["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let want: Vec<f32> = r["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        let cache = tempfile::tempdir().unwrap();
        let cache = PackCache::new(cache.path());
        // `cached`: packed and stored, then mapped from the packed-weights file.
        for device in ["cpu", "flex", "cpu-packed", "cpu-cached"] {
            let target = parse_target(device.split('-').next().unwrap(), "f32").unwrap();
            let lm = match device {
                "cpu-packed" | "cpu-cached" => {
                    GptLm::load_cached(&dir(name), &target, Some(&cache))
                }
                _ => GptLm::load_to(&dir(name), &target),
            }
            .unwrap_or_else(|e| panic!("{name} on {device}: {e}"));
            assert_eq!(
                (lm.config.n_head, lm.config.n_layer),
                (heads, blocks),
                "{name}"
            );
            assert_eq!(
                lm.config.n_positions,
                r["n_positions"].as_u64().unwrap() as usize,
                "{name}: n_positions as transformers reads it"
            );
            let got = lm.sequence_logits(&ids);
            assert_eq!(got.len(), want.len(), "{name} on {device}");
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff <= 1e-4, "{name} on {device}: max |Δ| = {diff}");
        }
    }
}

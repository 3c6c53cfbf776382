//! Token ids equal Hugging Face's on tricky strings, for every way a BPE tokenizer is loaded,
//! and decoding gives the text back. References: `scripts/make_gpt2_fixture.py`.

use std::path::PathBuf;

use minigpt_tokenizer::{Gpt2Bpe, Tokenizer, load_from_dir};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer")
}

fn cases(file: &str) -> Vec<(String, Vec<u32>)> {
    let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["ids"].as_array().unwrap();
            (
                c["text"].as_str().unwrap().to_string(),
                ids.iter().map(|i| i.as_u64().unwrap() as u32).collect(),
            )
        })
        .collect()
}

fn check(tok: &dyn Tokenizer, file: &str) {
    let cases = cases(file);
    assert!(cases.len() >= 10);
    for (text, ids) in cases {
        assert_eq!(tok.encode(&text).unwrap(), ids, "encoding {text:?}");
        assert_eq!(tok.decode(&ids), text, "decoding {text:?}");
    }
}

#[test]
fn builtin_gpt2_matches_hugging_face() {
    check(&Gpt2Bpe::builtin(), "gpt2-ids.json");
}

#[test]
fn tokenizer_json_matches_hugging_face() {
    let t = Gpt2Bpe::from_tokenizer_json(&fixtures().join("small-bpe/tokenizer.json")).unwrap();
    check(&t, "small-bpe/ids.json");
    assert_eq!(t.eos_token_id(), Some(0));
}

#[test]
fn vocab_and_merges_match_hugging_face() {
    let dir = fixtures().join("small-bpe");
    let t = Gpt2Bpe::from_vocab_merges(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
    check(&t, "small-bpe/ids.json");
}

#[test]
fn model_dir_picks_tokenizer_json_first_and_builtin_for_bare_gpt2() {
    let small = load_from_dir(&fixtures().join("small-bpe"), 50257).unwrap();
    assert!(small.vocab_size() < 1000);
    let model_dir = fixtures().join("../tiny-gpt2");
    let gpt2 = load_from_dir(&model_dir, 50257).unwrap();
    assert_eq!(gpt2.vocab_size(), 50257);
    let err = load_from_dir(&model_dir, 100).err().unwrap().to_string();
    assert!(err.contains("has no tokenizer"), "{err}");
    // vocab.json without merges.txt (or the reverse) is an error, not GPT-2's vocabulary.
    for (have, lack) in [("vocab.json", "merges.txt"), ("merges.txt", "vocab.json")] {
        let guard = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures().join("small-bpe").join(have),
            guard.path().join(have),
        )
        .unwrap();
        let err = load_from_dir(guard.path(), 50257)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(have) && err.contains(&format!("{lack} is missing")),
            "{err}"
        );
    }
}

#[test]
fn malformed_tokenizer_json_is_an_error() {
    let guard = tempfile::tempdir().unwrap();
    let dir = guard.path();
    let p = dir.join("tokenizer.json");
    std::fs::write(&p, r#"{"model": {"type": "WordPiece"}}"#).unwrap();
    let e = Gpt2Bpe::from_tokenizer_json(&p).err().unwrap().to_string();
    assert!(e.contains("only byte-level BPE"), "{e}");
    std::fs::write(&p, "{not json").unwrap();
    assert!(Gpt2Bpe::from_tokenizer_json(&p).is_err());
}

//! Every built-in processor and Mirostat 2's truncation against independent references, row by
//! row: transformers' `LogitsProcessor` classes and numpy ports of llama.cpp's samplers
//! (`scripts/make_decoding_fixtures.py` wrote the fixture; it cites the lines each port
//! follows). Rows of 7, 1,000 and 50,257 logits: normal, peaked, tied and partly masked, with
//! token histories that repeat.
//!
//! Per case, `compare` says what must agree:
//! - `same`: the mask (which logits are −∞) and every value within 1e-5 relative;
//! - `count`: the number of tokens kept (top_p and xtc where tokens tie at the cut: the
//!   reference's choice among them follows its sort order; minigpt's rule is documented);
//! - `keeps_max`: the reference leaves no finite logit; minigpt keeps the tokens tied at the
//!   input's maximum, with their input values (documented in each plugin's `reference`).

use std::collections::BTreeMap;

use base64::Engine;
use minigpt_decode::selectors::mirostat_v2::MirostatV2;
use minigpt_decode::{BuildContext, Registry, StepContext};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/decoding/processors.json"
);

/// The fixture and its input rows by id.
fn fixture() -> (serde_json::Value, BTreeMap<u64, Vec<f32>>) {
    let text =
        std::fs::read_to_string(FIXTURE).expect("fixture (scripts/make_decoding_fixtures.py)");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                f32s(r["logits"].as_str().unwrap()),
            )
        })
        .collect();
    (doc, rows)
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn f32s(s: &str) -> Vec<f32> {
    b64(s)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A JSON parameter value as TOML ("-inf" strings become floats).
fn to_toml(v: &serde_json::Value) -> toml::Value {
    match v {
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if !n.to_string().contains('.') && !n.to_string().contains('e') => {
                toml::Value::Integer(i)
            }
            _ => toml::Value::Float(n.as_f64().expect("number")),
        },
        serde_json::Value::String(s) if s == "-inf" => toml::Value::Float(f64::NEG_INFINITY),
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(a) => toml::Value::Array(a.iter().map(to_toml).collect()),
        serde_json::Value::Object(o) => {
            toml::Value::Table(o.iter().map(|(k, v)| (k.clone(), to_toml(v))).collect())
        }
        serde_json::Value::Null => panic!("null parameter"),
    }
}

/// The expected output row from its stored form.
fn expected(e: &serde_json::Value, input: &[f32]) -> Vec<f32> {
    if let Some(d) = e.get("dense") {
        return f32s(d.as_str().unwrap());
    }
    let kept = b64(e["kept"].as_str().unwrap());
    let mut out: Vec<f32> = input
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if kept[i / 8] >> (i % 8) & 1 == 1 {
                l
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    let idx = e["changed_idx"].as_array().unwrap();
    let val = f32s(e["changed_val"].as_str().unwrap());
    assert_eq!(idx.len(), val.len());
    for (i, v) in idx.iter().zip(val) {
        out[i.as_u64().unwrap() as usize] = v;
    }
    out
}

fn close(a: f32, b: f32) -> bool {
    a == b || (a - b).abs() as f64 <= 1e-5 * (b.abs() as f64).max(1e-6)
}

/// Why a case fails, or `None`.
fn compare(mode: &str, got: &[f32], want: &[f32], input: &[f32]) -> Option<String> {
    let finite = |r: &[f32]| r.iter().filter(|l| l.is_finite()).count();
    match mode {
        "same" => {
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                if g.is_finite() != w.is_finite() {
                    return Some(format!("token {i}: got {g}, reference {w}"));
                }
                if w.is_finite() && !close(g, w) {
                    return Some(format!("token {i}: got {g}, reference {w}"));
                }
            }
            None
        }
        "count" => (finite(got) != finite(want))
            .then(|| format!("kept {}, reference {}", finite(got), finite(want))),
        "keeps_max" => {
            assert_eq!(finite(want), 0, "keeps_max on a non-empty reference row");
            let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let rule: Vec<f32> = input
                .iter()
                .map(|&l| if l == max { l } else { f32::NEG_INFINITY })
                .collect();
            (got != rule.as_slice()).then(|| "does not keep exactly the input's top tokens".into())
        }
        m => panic!("unknown compare mode {m}"),
    }
}

#[test]
fn every_processor_agrees_with_its_reference() {
    let (doc, rows) = fixture();
    let registry = Registry::builtin();
    let mut failures = Vec::new();
    // processor -> (cases, per compare mode, largest vocabulary)
    let mut seen: BTreeMap<String, (usize, BTreeMap<String, usize>, usize)> = BTreeMap::new();
    for (n, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
        let name = case["processor"].as_str().unwrap();
        let toml::Value::Table(params) = to_toml(&case["params"]) else {
            panic!("params must be a table")
        };
        let input = &rows[&case["row"].as_u64().unwrap()];
        let tokens: Vec<u32> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        let cx = StepContext {
            tokens: &tokens,
            prompt_len: case["prompt_len"].as_u64().unwrap() as usize,
            eos_token_id: case["eos"].as_u64().map(|e| e as u32),
            seed: 7,
        };
        let mut p = registry
            .processor(name, &params, &BuildContext::default())
            .unwrap_or_else(|e| panic!("case {n} ({name}): {e}"));
        let mut got = input.clone();
        p.process(&cx, &mut got);
        let want = expected(&case["expected"], input);
        let mode = case["compare"].as_str().unwrap();
        if let Some(why) = compare(mode, &got, &want, input) {
            failures.push(format!(
                "case {n}: {p} on row {} (V = {}, {mode}): {why}",
                case["row"],
                input.len()
            ));
        }
        let e = seen.entry(name.to_string()).or_default();
        e.0 += 1;
        *e.1.entry(mode.to_string()).or_default() += 1;
        e.2 = e.2.max(input.len());
    }
    for (name, (n, modes, v)) in &seen {
        println!("{name:<20} {n:>4} cases, largest V {v}, {modes:?}");
    }
    // All 16 built-in processors are covered, each up to GPT-2's vocabulary.
    let builtin: Vec<&str> = registry
        .plugins()
        .filter(|p| p.kind == minigpt_decode::PluginKind::Processor)
        .map(|p| p.name)
        .collect();
    assert_eq!(builtin.len(), 16);
    for name in builtin {
        let (_, _, v) = seen
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no cases"));
        assert_eq!(*v, 50_257, "{name}: no GPT-2-sized row");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mirostat_truncation_agrees_with_llama_cpp() {
    let (doc, rows) = fixture();
    let cases = doc["mirostat"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut probs = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let logits = &rows[&c["row"].as_u64().unwrap()];
        let mut m =
            MirostatV2::new(c["tau"].as_f64().unwrap(), c["eta"].as_f64().unwrap()).unwrap();
        m.set_mu(c["mu"].as_f64().unwrap());
        m.truncated(logits, &mut probs);
        let kept: Vec<u64> = (0..probs.len() as u64)
            .filter(|&i| probs[i as usize] > 0.0)
            .collect();
        let want: Vec<u64> = c["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(kept, want, "case {n}: kept tokens");
        for (k, p) in want.iter().zip(c["probs"].as_array().unwrap()) {
            let (got, p) = (probs[*k as usize], p.as_f64().unwrap());
            assert!(
                (got - p).abs() <= 1e-9 * p.max(1e-300) + 1e-15,
                "case {n}: token {k}: {got} vs {p}"
            );
        }
        let chosen = c["chosen"].as_u64().unwrap() as usize;
        m.observe(probs[chosen]);
        let mu_after = c["mu_after"].as_f64().unwrap();
        assert!(
            (m.mu() - mu_after).abs() <= 1e-9 * mu_after.abs().max(1.0),
            "case {n}: mu {} vs {mu_after}",
            m.mu()
        );
    }
}

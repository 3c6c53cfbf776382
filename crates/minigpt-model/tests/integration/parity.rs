//! Parity with Hugging Face transformers on a small random GPT-2 (`tests/fixtures/tiny-gpt2`,
//! references from `scripts/make_gpt2_fixture.py`), on every CPU device and weight dtype.
//!
//! Tolerances: f32 on every device, |Δ| ≤ 1e-4 for logits and log-probabilities; the native
//! engine with f16 weights (and f16 KV cache) ≤ 1e-2, with bf16 weights (f16 cache) ≤ 5e-2 (the weights themselves are rounded
//! to 11 and 8 significant bits). Token sequences must match exactly, except that bf16's
//! 100-token greedy run past the context is held to its first 50 tokens (it parts from the f32
//! reference at token 58, where two logits are closer than bf16's error).

use std::path::PathBuf;

use minigpt_decode::{
    BuildContext, FinishReason, GenerateRequest, LanguageModel, Registry, Strategy, generate,
    last_hidden_features,
};
use minigpt_model::{ContextPolicy, GptLm, Target, parse_target, score};
use safetensors::SafeTensors;

/// A device and dtype under test, with its tolerance.
struct Case {
    target: Target,
    tol: f32,
    /// How many tokens of the long greedy run must match the reference.
    long_greedy: usize,
}

impl Case {
    fn new(device: &str, dtype: &str, tol: f32) -> Self {
        Self {
            target: parse_target(device, dtype).unwrap(),
            tol,
            long_greedy: if dtype == "bf16" { 50 } else { usize::MAX },
        }
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("reference/tiny-gpt2.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn load(c: &Case) -> GptLm {
    GptLm::load_to(&fixtures().join("tiny-gpt2"), &c.target).unwrap()
}

fn greedy(lm: &mut GptLm, prompts: Vec<Vec<u32>>, n: usize) -> Vec<minigpt_decode::Generation> {
    let seeds = vec![0; prompts.len()];
    let (registry, cx) = (Registry::builtin(), BuildContext::default());
    let greedy = Strategy::parse(
        "greedy",
        "test",
        "[selector]\nname = \"greedy\"",
        &registry,
        &cx,
    );
    let mut pipes = greedy
        .unwrap()
        .pipelines(&registry, &cx, prompts.len())
        .unwrap();
    let req = GenerateRequest {
        prompts,
        max_new_tokens: n,
        seeds,
        eos_token_id: None,
        ignore_eos: false,
        stop: Default::default(),
        max_new_chars: None,
        cancel: None,
    };
    generate(lm, &req, &mut pipes, |_, _| {}).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn full_logits(c: &Case) {
    let r = reference();
    let lm = load(c);
    let bytes = std::fs::read(fixtures().join("reference/tiny-gpt2-logits.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("logits").unwrap();
    let want: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let got = lm.sequence_logits(&ids(&r["logits_input_ids"]));
    let d = max_abs_diff(&got, &want);
    assert!(d <= c.tol, "max |Δlogit| = {d}");
}

fn score_logprobs(c: &Case) {
    let r = reference();
    let lm = load(c);
    let s = score(&lm, &ids(&r["score_ids"]), 32);
    let want = floats(&r["score_logprobs"]);
    assert_eq!(s.logprobs.len(), want.len());
    for (i, (g, w)) in s.logprobs.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= f64::from(c.tol), "token {i}: {g} vs {w}");
    }
}

fn long_text_sliding_window(c: &Case) {
    let r = reference();
    let lm = load(c);
    let long = ids(&r["long_ids"]);
    let want = floats(&r["long_logprobs"]);
    // stride 1: every token sees exactly the n_positions tokens before it, as the reference.
    let s = score(&lm, &long, 1);
    assert_eq!(s.logprobs.len(), long.len() - 1);
    for (i, (g, w)) in s.logprobs.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= f64::from(c.tol),
            "token {}: {g} vs {w}",
            i + 1
        );
    }
    // A coarser stride: windows end at n, n + s, n + 2s, ... (capped at the last token); each
    // token is scored by the first window reaching it, from that window's start. Recompute every
    // log-probability from its own context with a plain forward pass.
    let (n, stride) = (64usize, 16usize);
    let coarse = score(&lm, &long, stride);
    assert_eq!(coarse.logprobs.len(), long.len() - 1);
    let v = lm.config.vocab_size;
    for j in 1..long.len() {
        let end = (n + (j.saturating_sub(n)).div_ceil(stride) * stride).min(long.len() - 1);
        let start = end.saturating_sub(n);
        assert!(
            j - start >= (n - stride + 1).min(j),
            "token {j} context {}",
            j - start
        );
        let logits = lm.sequence_logits(&long[start..j]);
        let row = &logits[logits.len() - v..];
        let want = minigpt_decode::dist::log_prob(row, long[j] as usize);
        let got = coarse.logprobs[j - 1];
        assert!(
            (got - want).abs() <= f64::from(c.tol),
            "token {j}: {got} vs {want}"
        );
        if j <= n {
            assert!((got - floats(&r["long_logprobs"])[j - 1]).abs() <= f64::from(c.tol));
        }
    }
}

fn greedy_30(c: &Case) {
    let r = reference();
    let mut lm = load(c);
    let g = greedy(&mut lm, vec![ids(&r["greedy_prompt"])], 30);
    assert_eq!(g[0].tokens, ids(&r["greedy_tokens"]));
}

fn greedy_past_the_context(c: &Case) {
    let r = reference();
    let mut lm = load(c);
    let want = ids(&r["window_greedy_tokens"]);
    let g = greedy(&mut lm, vec![ids(&r["greedy_prompt"])], want.len());
    let n = want.len().min(c.long_greedy);
    assert!(n >= 50);
    assert_eq!(g[0].tokens[..n], want[..n]);
}

fn cached_equals_uncached(c: &Case) {
    let r = reference();
    let mut lm = load(c);
    let v = lm.config.vocab_size;
    let mut seq = ids(&r["greedy_prompt"]);
    let mut logits = lm.prefill(std::slice::from_ref(&seq)).unwrap();
    // Through the cache's whole capacity and on into the sliding window.
    for step in 0..70 {
        let full = lm.sequence_logits(&seq[seq.len().saturating_sub(64)..]);
        let last = &full[full.len() - v..];
        let d = max_abs_diff(&logits.data, last);
        assert!(d <= c.tol, "step {step}: max |Δlogit| = {d}");
        let next = minigpt_decode::dist::argmax(&logits.data);
        seq.push(next);
        logits = lm.step(&[next]).unwrap();
    }
}

fn batch_equals_alone(c: &Case) {
    let mut lm = load(c);
    let prompts: Vec<Vec<u32>> = [3usize, 17, 1, 40]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (0..n)
                .map(|j| ((i * 7919 + j * 104_729) % 50257) as u32)
                .collect()
        })
        .collect();
    // 40 + 40 crosses the 64-token context: the batch slides its windows too.
    let batch = greedy(&mut lm, prompts.clone(), 40);
    for (i, p) in prompts.into_iter().enumerate() {
        let alone = greedy(&mut lm, vec![p], 40);
        assert_eq!(batch[i].tokens, alone[0].tokens, "row {i}");
        for (a, b) in batch[i].logprobs.iter().zip(&alone[0].logprobs) {
            assert!((a - b).abs() <= f64::from(c.tol));
        }
    }
}

fn refuse_policy_stops_rows_and_rebuilds(c: &Case) {
    let mut lm = load(c);
    lm.policy = ContextPolicy::Refuse;
    let long: Vec<u32> = (0..60).map(|j| (j * 31 % 50257) as u32).collect();
    let short: Vec<u32> = vec![464, 2068, 7586];
    let batch = greedy(&mut lm, vec![long.clone(), short.clone()], 20);
    // 60 tokens: rows of length 60..=64 are seen whole, so 5 tokens, then the context is full.
    assert_eq!(batch[0].finish_reason, FinishReason::Context);
    assert_eq!(batch[0].tokens.len(), 5);
    assert_eq!(batch[1].finish_reason, FinishReason::Length);
    // The short row outlives the cache width of the batch (60 + 20 > 64): it was rebuilt.
    let alone = greedy(&mut lm, vec![short], 20);
    assert_eq!(batch[1].tokens, alone[0].tokens);
    let too_long: Vec<u32> = vec![1; 65];
    let e = lm.prefill(&[too_long]).err().unwrap().to_string();
    assert!(e.contains("at most 64"), "{e}");
}

fn beam_search_matches_hugging_face(c: &Case) {
    let text = std::fs::read_to_string(fixtures().join("reference/tiny-gpt2-beam.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let prompt = ids(&r["prompt"]);
    let max_new = r["max_new_tokens"].as_u64().unwrap() as usize;
    let (registry, cx) = (Registry::builtin(), BuildContext::default());
    for case in r["cases"].as_array().unwrap() {
        let lp = case["length_penalty"].as_f64().unwrap();
        let toml = format!(
            "[search]\nname = \"beam_search\"\nnum_beams = {}\nnum_return_sequences = {}\nlength_penalty = {lp:?}\nearly_stopping = {}",
            case["num_beams"], case["num_return_sequences"], case["early_stopping"]
        );
        let s = Strategy::parse("beam", "test", &toml, &registry, &cx).unwrap();
        let minigpt_decode::Decoding::Search {
            mut search,
            mut processors,
        } = s.build(&registry, &cx, 1).unwrap()
        else {
            panic!("beam_search is a search")
        };
        let req = minigpt_decode::SearchRequest {
            prompt: &prompt,
            max_new_tokens: max_new,
            eos_token_id: None,
            ignore_eos: false,
            seed: 0,
            cancel: None,
        };
        let mut lm = load(c);
        let got = search.search(&mut lm, &req, &mut processors).unwrap();
        let want = case["sequences"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.tokens, ids(w), "{toml}: sequence {i}");
            let score = g.logprobs.iter().sum::<f64>() / (g.tokens.len() as f64).powf(lp);
            let hf = case["scores"][i].as_f64().unwrap();
            assert!(
                (score - hf).abs() <= f64::from(c.tol),
                "{toml}: score {score} vs {hf}"
            );
        }
    }
}

/// The exact-erf GELU (`activation_function: "gelu"`, what minigpt trains with) against
/// transformers; the fixture's logits move by more than 10 × the tolerance under GPT-2's tanh
/// GELU, so a model that ignored the setting would fail.
fn exact_gelu_logits(c: &Case) {
    let text = std::fs::read_to_string(fixtures().join("reference/tiny-char-gelu.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(r["max_abs_gap_to_gelu_new"].as_f64().unwrap() > 10.0 * 1e-4);
    let lm = GptLm::load_to(&fixtures().join("tiny-char-gelu"), &c.target).unwrap();
    assert!(lm.config.exact_gelu());
    let want: Vec<f32> = r["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| floats(row).into_iter().map(|x| x as f32))
        .collect();
    let got = lm.sequence_logits(&ids(&r["ids"]));
    let d = max_abs_diff(&got, &want);
    assert!(d <= c.tol, "max |Δlogit| = {d}");
}

/// MAUVE's features against transformers' `hidden_states[-1][0, -1]` (after ln_f), for texts
/// of 1 token to past the context (read as its last `n_positions` tokens), all in one call: on
/// the native engine they share left-padded batches, so padding must not leak into a row.
fn last_hidden_matches_hugging_face(c: &Case) {
    let text = std::fs::read_to_string(fixtures().join("reference/tiny-gpt2-hidden.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let texts: Vec<Vec<u32>> = r["texts"].as_array().unwrap().iter().map(ids).collect();
    let mut lm = load(c);
    assert_eq!(
        lm.context_len(),
        r["n_positions"].as_u64().unwrap() as usize
    );
    assert!(texts.iter().any(|t| t.len() > lm.context_len()));
    let got = last_hidden_features(&mut lm, &texts).unwrap();
    assert_eq!(got.len(), texts.len());
    for (i, (g, w)) in got.iter().zip(r["hidden"].as_array().unwrap()).enumerate() {
        let w: Vec<f32> = floats(w).into_iter().map(|x| x as f32).collect();
        let d = max_abs_diff(g, &w);
        assert!(
            d <= c.tol,
            "text {i} ({} tokens): max |Δhidden| = {d}",
            texts[i].len()
        );
    }
    // A text's feature does not depend on the texts read with it.
    let alone = last_hidden_features(&mut lm, &texts[3..4]).unwrap();
    assert_eq!(alone[0], got[3]);
}

macro_rules! on_devices {
    ($($name:ident),*) => {
        mod cpu {
            $(#[test] fn $name() { super::$name(&super::Case::new("cpu", "f32", 1e-4)); })*
        }
        mod cpu_f16 {
            $(#[test] fn $name() { super::$name(&super::Case::new("cpu", "f16", 1e-2)); })*
        }
        mod cpu_bf16 {
            $(#[test] fn $name() { super::$name(&super::Case::new("cpu", "bf16", 5e-2)); })*
        }
        mod flex {
            $(#[test] fn $name() { super::$name(&super::Case::new("flex", "f32", 1e-4)); })*
        }
        mod ndarray {
            $(#[test] fn $name() { super::$name(&super::Case::new("ndarray", "f32", 1e-4)); })*
        }
    };
}

on_devices!(
    full_logits,
    exact_gelu_logits,
    score_logprobs,
    long_text_sliding_window,
    greedy_30,
    greedy_past_the_context,
    cached_equals_uncached,
    batch_equals_alone,
    refuse_policy_stops_rows_and_rebuilds,
    beam_search_matches_hugging_face,
    last_hidden_matches_hugging_face
);

/// The native engine's promise: a row's logits are the same bits alone, in any batch, after a
/// cached step or from a fresh uncached pass (and past the context, where windows slide).
/// Nine rows: on two or more threads a batch this size of a model this small splits between
/// the threads (`forward_split`), in groups of unequal prompt lengths.
#[test]
fn native_rows_are_bit_identical_alone_batched_and_cached() {
    let c = Case::new("cpu", "f32", 0.0);
    let mut lm = load(&c);
    let v = lm.config.vocab_size;
    let prompts: Vec<Vec<u32>> = [3usize, 17, 1, 40, 5, 9, 2, 30, 12]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (0..n)
                .map(|j| ((i * 7919 + j * 104_729) % v) as u32)
                .collect()
        })
        .collect();
    // Every row's logits at every step, in a batch of four.
    let mut rows = prompts.clone();
    let mut batch = vec![lm.prefill(&prompts).unwrap()];
    for _ in 0..40 {
        let next: Vec<u32> = batch
            .last()
            .unwrap()
            .data
            .chunks_exact(v)
            .map(minigpt_decode::dist::argmax)
            .collect();
        rows.iter_mut().zip(&next).for_each(|(r, &t)| r.push(t));
        batch.push(lm.step(&next).unwrap());
    }
    for (i, p) in prompts.iter().enumerate() {
        let mut alone = lm.prefill(std::slice::from_ref(p)).unwrap();
        for (step, b) in batch.iter().enumerate() {
            let row = &b.data[i * v..(i + 1) * v];
            assert!(
                alone.data == row,
                "row {i}, step {step}: batch differs from alone"
            );
            let len = p.len() + step;
            let seen = &rows[i][len.saturating_sub(64)..len];
            let fresh = lm.sequence_logits(seen);
            assert!(
                fresh[fresh.len() - v..] == *row,
                "row {i}, step {step}: cache differs"
            );
            if step < 40 {
                alone = lm.step(&[rows[i][len]]).unwrap();
            }
        }
    }
}

/// `ContextPolicy::Shift` on the native engine: greedy steps far past the context give, at
/// every step, exactly the logits of an uncached forward pass over the window the policy
/// defines (the last `n` prompt tokens at first; when the window is full, its last `n / 2`
/// tokens, then one more per step). A row that never fills the context is the same as under
/// the exact sliding window.
#[test]
fn shifted_context_steps_equal_uncached_windows() {
    let dir = fixtures().join("tiny-gpt2");
    let mut lm = GptLm::load_to(&dir, &parse_target("cpu", "f32").unwrap()).unwrap();
    let n = lm.config.n_positions;
    let mut reference = GptLm::load_to(&dir, &parse_target("cpu", "f32").unwrap()).unwrap();
    lm.policy = ContextPolicy::Shift;
    let vocab = lm.config.vocab_size;
    let prompt: Vec<u32> = (0..n as u32 + 5)
        .map(|i| (i * 7 + 3) % vocab as u32)
        .collect();
    let mut logits = lm.prefill(std::slice::from_ref(&prompt)).unwrap();
    let mut row = prompt.clone();
    let mut window_start = row.len() - n;
    let mut restarts = 0;
    for step in 0..2 * n + 3 {
        // The policy's window, computed here from its definition.
        let want_all = reference.sequence_logits(&row[window_start..]);
        let want = &want_all[want_all.len() - vocab..];
        assert_eq!(logits.row(0), want, "step {step}");
        let next = minigpt_decode::dist::argmax(logits.row(0));
        row.push(next);
        if row.len() - window_start > n {
            window_start = row.len() - n / 2;
            restarts += 1;
        }
        logits = lm.step(&[next]).unwrap();
    }
    assert!(restarts >= 4, "the window shifted ({restarts} times)");
    // A row that stays inside the context: the same logits under both policies.
    let short: Vec<u32> = prompt[..n / 2].to_vec();
    reference.policy = ContextPolicy::Sliding;
    let a = lm.prefill(std::slice::from_ref(&short)).unwrap();
    let b = reference.prefill(std::slice::from_ref(&short)).unwrap();
    assert_eq!(a, b);
    // Burn's device refuses to shift.
    let mut burn = GptLm::load_to(&dir, &parse_target("flex", "f32").unwrap()).unwrap();
    burn.policy = ContextPolicy::Shift;
    let err = burn.prefill(&[vec![1, 2]]).unwrap_err().to_string();
    assert!(err.contains("--device cpu"), "{err}");
}

/// Continuous batching on the native engine: rows that join a running batch at different steps
/// (one past the context, where windows slide), and a row removed mid-way, leave every other
/// row's sampled tokens exactly as when it runs alone with the same seed.
#[test]
fn rows_joining_a_running_batch_sample_as_they_would_alone() {
    use minigpt_decode::{Batch, NewRow, Pipeline};
    let mut lm = load(&Case::new("cpu", "f32", 0.0));
    let v = lm.config.vocab_size;
    let (registry, cx) = (Registry::builtin(), BuildContext::default());
    let strategy = Strategy::parse(
        "s",
        "test",
        "[[processors]]\nname = \"temperature\"\nt = 1.3\n[[processors]]\nname = \"top_p\"\np = 0.95\n[selector]\nname = \"multinomial\"",
        &registry,
        &cx,
    )
    .unwrap();
    let pipeline = || -> Pipeline {
        strategy
            .pipelines(&registry, &cx, 1)
            .unwrap()
            .pop()
            .unwrap()
    };
    // (prompt length, seed, the step it joins at, tokens to generate)
    let rows = [
        (5usize, 11u64, 0usize, 30usize),
        (70, 12, 3, 25),
        (1, 13, 7, 12),
        (9, 14, 7, 20),
    ];
    let prompt = |i: usize, n: usize| -> Vec<u32> {
        (0..n)
            .map(|j| ((i * 7919 + j * 104_729) % v) as u32)
            .collect()
    };
    let alone: Vec<Vec<u32>> = rows
        .iter()
        .enumerate()
        .map(|(i, &(n, seed, _, max))| {
            let req = GenerateRequest {
                prompts: vec![prompt(i, n)],
                max_new_tokens: max,
                seeds: vec![seed],
                ..Default::default()
            };
            generate(&mut lm, &req, &mut [pipeline()], |_, _| {}).unwrap()[0]
                .tokens
                .clone()
        })
        .collect();
    let row = |i: usize| {
        let (n, seed, _, max) = rows[i];
        NewRow {
            id: i,
            prompt: prompt(i, n),
            pipeline: pipeline(),
            seed,
            max_new_tokens: max,
            eos_token_id: None,
            ignore_eos: false,
            stop: Default::default(),
            max_new_chars: None,
        }
    };
    // Row 3 is removed after its 4th token (a client gone); the others run to their end.
    let mut got: Vec<Vec<u32>> = vec![vec![]; rows.len()];
    let mut finished = vec![false; rows.len()];
    let mut batch: Batch = Batch::new();
    let mut step = 0;
    loop {
        for (i, r) in rows.iter().enumerate() {
            if r.2 == step {
                batch.add(row(i)).unwrap();
            }
        }
        for (id, _) in batch.advance(&mut lm).unwrap() {
            finished[id] = true;
        }
        for (id, g) in batch.select(&mut lm, |a| got[a.id].push(a.token)).unwrap() {
            assert_eq!(g.tokens, got[id]);
            finished[id] = true;
        }
        if got[3].len() == 4 && !finished[3] {
            let gone = batch.remove(&mut lm, |id| id == 3).unwrap();
            assert_eq!(gone.len(), 1);
            finished[3] = true;
        }
        step += 1;
        if batch.is_empty() && step > 7 {
            break;
        }
    }
    assert!(finished.iter().all(|&f| f));
    for i in 0..3 {
        assert_eq!(got[i], alone[i], "row {i}");
    }
    assert_eq!(got[3], alone[3][..4]);
    // A Burn device cannot add rows to a running batch, and says so.
    let mut flex = load(&Case::new("flex", "f32", 1e-4));
    flex.prefill(&[prompt(0, 3)]).unwrap();
    let err = flex.step_join(&[1], &[prompt(1, 2)]).unwrap_err();
    assert!(err.to_string().contains("cannot add rows"), "{err}");
}

//! Beam search against exhaustive enumeration, and contrastive search against hand-worked
//! examples, on table-driven fake models.

use minigpt_decode::{
    BuildContext, Decoding, FinishReason, GenerateRequest, Generation, Hidden, LanguageModel,
    Logits, ModelError, Registry, Strategy, decode,
};

/// Logits are a fixed pseudo-random function of the row's whole history, so every sequence has
/// its own probability; `hidden[t]` is the hidden state of a position holding token `t`.
struct Fake {
    vocab: usize,
    rows: Vec<Vec<u32>>,
    hidden_of: Option<Vec<Vec<f32>>>,
    fixed: Option<Vec<f32>>,
    record: bool,
    last: Option<Hidden>,
}

fn hash(history: &[u32], v: usize) -> f32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in history.iter().chain([v as u32].iter()) {
        h ^= u64::from(t) + 1;
        h = h.wrapping_mul(0x0100_0000_01b3);
        h ^= h >> 29;
    }
    ((h % 10_000) as f32 / 10_000.0) * 4.0 - 2.0
}

impl Fake {
    fn new(vocab: usize) -> Self {
        Self {
            vocab,
            rows: vec![],
            hidden_of: None,
            fixed: None,
            record: false,
            last: None,
        }
    }
    fn logits_of(&self, row: &[u32]) -> Vec<f32> {
        match &self.fixed {
            Some(f) => f.clone(),
            None => (0..self.vocab).map(|v| hash(row, v)).collect(),
        }
    }
    fn out(&mut self, new_positions: usize) -> Logits {
        let mut data = Vec::new();
        for r in &self.rows {
            data.extend(self.logits_of(r));
        }
        if self.record {
            let h = self.hidden_of.as_ref().expect("hidden table");
            let dim = h[0].len();
            let mut hd = Vec::new();
            for r in &self.rows {
                for &t in &r[r.len() - new_positions..] {
                    hd.extend(&h[t as usize]);
                }
            }
            self.last = Some(Hidden {
                data: hd,
                rows: self.rows.len(),
                positions: new_positions,
                dim,
            });
        }
        Logits {
            data,
            vocab: self.vocab,
        }
    }
}

impl LanguageModel for Fake {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn context_len(&self) -> usize {
        1 << 20
    }
    fn max_row_len(&self) -> Option<usize> {
        None
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        self.rows = prompts.to_vec();
        let n = prompts[0].len();
        Ok(self.out(n))
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        assert_eq!(tokens.len(), self.rows.len());
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        Ok(self.out(1))
    }
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        self.rows = rows.iter().map(|&i| self.rows[i].clone()).collect();
        Ok(())
    }
    fn record_hidden(&mut self, on: bool) -> Result<(), ModelError> {
        self.record = on;
        Ok(())
    }
    fn last_hidden(&self) -> Option<&Hidden> {
        self.last.as_ref()
    }
}

fn log_softmax(l: &[f32]) -> Vec<f64> {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let s: f64 = l.iter().map(|&x| (x as f64 - m).exp()).sum();
    l.iter().map(|&x| x as f64 - m - s.ln()).collect()
}

/// Every finished sequence with Hugging Face's score: EOS-terminated ones of any length up to
/// `max_len` (length counts the EOS) and full-length ones without EOS.
fn exhaustive(
    prompt: &[u32],
    vocab: usize,
    eos: u32,
    max_len: usize,
    lp: f64,
) -> Vec<(f64, Vec<u32>, bool)> {
    let m = Fake::new(vocab);
    let mut out = Vec::new();
    let mut frontier: Vec<(Vec<u32>, f64)> = vec![(vec![], 0.0)];
    for len in 1..=max_len {
        let mut next = Vec::new();
        for (seq, sum) in &frontier {
            let mut hist = prompt.to_vec();
            hist.extend(seq);
            let lps = log_softmax(&m.logits_of(&hist));
            for v in 0..vocab as u32 {
                let s = sum + lps[v as usize];
                let mut t = seq.clone();
                if v == eos {
                    out.push((s / (len as f64).powf(lp), t, true));
                } else {
                    t.push(v);
                    if len == max_len {
                        out.push((s / (len as f64).powf(lp), t, false));
                    } else {
                        next.push((t, s));
                    }
                }
            }
        }
        frontier = next;
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out
}

fn run(
    model: &mut Fake,
    prompt: Vec<u32>,
    toml: &str,
    max_new: usize,
    eos: Option<u32>,
) -> Vec<Generation> {
    let r = Registry::builtin();
    let cx = BuildContext::default();
    let s = Strategy::parse("t", "test", toml, &r, &cx).unwrap();
    let Decoding::Search {
        mut search,
        mut processors,
    } = s.build(&r, &cx, 1).unwrap()
    else {
        panic!("not a search")
    };
    let req = minigpt_decode::SearchRequest {
        prompt: &prompt,
        max_new_tokens: max_new,
        eos_token_id: eos,
        ignore_eos: false,
        seed: 0,
        cancel: None,
    };
    search.search(model, &req, &mut processors).unwrap()
}

#[test]
fn wide_beams_equal_exhaustive_search() {
    let (vocab, eos, len) = (3usize, 2u32, 4usize);
    let prompt = vec![1, 0];
    // Widths of at least vocab^len keep every candidate: beam search must find the exhaustive
    // order, with EOS, for several length penalties and both early-stopping modes.
    for width in [81, 82, 100] {
        for lp in [1.0, 0.0, 2.0, -0.5] {
            for early in [false, true] {
                let want = exhaustive(&prompt, vocab, eos, len, lp);
                let toml = format!(
                    "[search]\nname = \"beam_search\"\nnum_beams = {width}\nlength_penalty = {lp:?}\nearly_stopping = {early}\nnum_return_sequences = 10"
                );
                let got = run(&mut Fake::new(vocab), prompt.clone(), &toml, len, Some(eos));
                assert_eq!(got.len(), 10);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.tokens, w.1,
                        "width {width} lp {lp} early {early} rank {i}"
                    );
                    let reason = if w.2 {
                        FinishReason::Eos
                    } else {
                        FinishReason::Length
                    };
                    assert_eq!(g.finish_reason, reason);
                }
            }
        }
    }
}

#[test]
fn beams_find_what_greedy_misses() {
    // On the first prompt whose exhaustive best sequence of length 4 (no EOS) is not the greedy
    // one, 27 beams (vocab^3) find it.
    let (vocab, len) = (3usize, 4usize);
    let r = Registry::builtin();
    let cx = BuildContext::default();
    let greedy = Strategy::parse("g", "test", "[selector]\nname = \"greedy\"", &r, &cx).unwrap();
    let mut found = false;
    for first in 0..20u32 {
        let prompt = vec![first % 3, first / 3];
        let want = exhaustive(&prompt, vocab, 99, len, 1.0);
        let req = GenerateRequest {
            prompts: vec![prompt.clone()],
            max_new_tokens: len,
            seeds: vec![0],
            eos_token_id: None,
            ignore_eos: false,
            stop: Default::default(),
            max_new_chars: None,
            cancel: None,
        };
        let g = decode(
            &mut Fake::new(vocab),
            &req,
            &mut greedy.build(&r, &cx, 1).unwrap(),
            |_, _| {},
        )
        .unwrap();
        if g[0].tokens == want[0].1 {
            continue;
        }
        found = true;
        let beam = run(
            &mut Fake::new(vocab),
            prompt,
            "[search]\nname = \"beam_search\"\nnum_beams = 27",
            len,
            None,
        );
        assert_eq!(beam[0].tokens, want[0].1);
        // Raw log-probabilities of the returned tokens add up to the exhaustive score (lp = 1).
        let sum: f64 = beam[0].logprobs.iter().sum();
        assert!((sum / len as f64 - want[0].0).abs() < 1e-6);
        break;
    }
    assert!(
        found,
        "no prompt where greedy is suboptimal: change the table"
    );
}

#[test]
fn early_stopping_true_stops_at_num_beams_finished() {
    // Fixed logits: EOS (token 0) is the most likely token at every step. With 2 beams the
    // first step finishes "EOS" (rank 0) and keeps running [1] and [2]; the second step
    // finishes [1, EOS] (rank 0 again) and so has 2 finished hypotheses.
    let fixed = vec![0.0f32, -0.5, -1.0];
    let mut m = Fake::new(3);
    m.fixed = Some(fixed.clone());
    let got = run(
        &mut m,
        vec![1],
        "[search]\nname = \"beam_search\"\nnum_beams = 2\nearly_stopping = true\nnum_return_sequences = 2",
        10,
        Some(0),
    );
    let lp = log_softmax(&fixed);
    // Scores: [EOS] = lp0 / 1; [1, EOS] = (lp1 + lp0) / 2.
    assert_eq!(got[0].tokens, Vec::<u32>::new());
    assert_eq!(got[1].tokens, vec![1]);
    assert!(lp[0] > (lp[1] + lp[0]) / 2.0);
    // Stopped after step 2: the model saw the prompt plus one step only.
    assert_eq!(m.rows.iter().map(Vec::len).max(), Some(2));
}

#[test]
fn contrastive_search_hand_worked() {
    // p = 0.5, 0.3, 0.2 at every step; hidden states: token 0 -> (1, 0), 1 -> (0, 1),
    // 2 -> (3, 4), whose cosines with the others are exactly 0.6 and 0.8. Prompt [0].
    let table = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![3.0, 4.0]];
    let fixed = vec![0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
    let run_cs = |k: usize, alpha: f64| {
        let mut m = Fake::new(3);
        m.fixed = Some(fixed.clone());
        m.hidden_of = Some(table.clone());
        let toml = format!(
            "[search]\nname = \"contrastive_search\"\ntop_k = {k}\npenalty_alpha = {alpha:?}"
        );
        run(&mut m, vec![0], &toml, 3, None)[0].tokens.clone()
    };
    // alpha 0.5, step 1 (context {h0}): 0: .25 - .5*1 = -.25; 1: .15 - 0 = .15; 2: .1 - .5*.6 = -.2 -> 1.
    // Step 2 (context {h0, h1}): 0: -.25; 1: .15 - .5 = -.35; 2: .1 - .4 = -.3 -> 0. Step 3: the same -> 0.
    assert_eq!(run_cs(3, 0.5), vec![1, 0, 0]);
    assert_eq!(run_cs(2, 0.5), vec![1, 0, 0]);
    // alpha 0 is greedy.
    assert_eq!(run_cs(3, 0.0), vec![0, 0, 0]);
    // alpha 1: only the penalty counts. Step 1: -1, 0, -.6 -> 1. Step 2: -1, -1, -.8 -> 2.
    // Step 3: every candidate has max cos 1: the tie goes to the most likely, 0.
    assert_eq!(run_cs(3, 1.0), vec![1, 2, 0]);
    // k = 1 is greedy whatever alpha.
    assert_eq!(run_cs(1, 0.9), vec![0, 0, 0]);
}

/// A model that sets `flag` once it has run `after` steps, and counts the steps after that.
struct Tripwire {
    inner: Fake,
    after: usize,
    steps: usize,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LanguageModel for Tripwire {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn context_len(&self) -> usize {
        self.inner.context_len()
    }
    fn max_row_len(&self) -> Option<usize> {
        None
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        self.inner.prefill(prompts)
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        self.steps += 1;
        if self.steps == self.after {
            self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.step(tokens)
    }
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        self.inner.retain(rows)
    }
    fn record_hidden(&mut self, on: bool) -> Result<(), ModelError> {
        self.inner.record_hidden(on)
    }
    fn last_hidden(&self) -> Option<&Hidden> {
        self.inner.last_hidden()
    }
}

/// Ctrl-C during a search of a million tokens: both searches stop with `Cancelled` before the
/// step after the one that set the flag, and a flag set before decoding starts runs no step.
#[test]
fn searches_stop_within_a_step_when_cancelled() {
    let r = Registry::builtin();
    let cx = BuildContext::default();
    let hidden: Vec<Vec<f32>> = (0..7).map(|t| vec![t as f32 + 1.0, 1.0]).collect();
    for toml in [
        "[search]\nname = \"beam_search\"\nnum_beams = 3",
        "[search]\nname = \"contrastive_search\"\ntop_k = 3\npenalty_alpha = 0.6",
    ] {
        for after in [0, 1, 5] {
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(after == 0));
            let mut inner = Fake::new(7);
            inner.hidden_of = Some(hidden.clone());
            let mut model = Tripwire {
                inner,
                after,
                steps: 0,
                flag: flag.clone(),
            };
            let req = GenerateRequest {
                prompts: vec![vec![1, 2], vec![3]],
                max_new_tokens: 1_000_000,
                seeds: vec![0, 0],
                eos_token_id: None,
                ignore_eos: true,
                stop: Default::default(),
                max_new_chars: None,
                cancel: Some(flag),
            };
            let s = Strategy::parse("t", "test", toml, &r, &cx).unwrap();
            let err = decode(
                &mut model,
                &req,
                &mut s.build(&r, &cx, 2).unwrap(),
                |_, _| {},
            )
            .unwrap_err();
            assert!(err.is::<minigpt_decode::Cancelled>(), "{toml}: {err}");
            assert_eq!(
                model.steps, after,
                "{toml}: steps run after the flag was set"
            );
        }
    }
}

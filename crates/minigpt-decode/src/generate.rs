//! The generation loop: prefill, then select / stop / step until every row has finished.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::batch::{Batch, NewRow};
use crate::cancel::{self, Cancelled};
use crate::generation::Generation;
use crate::model::{LanguageModel, ModelError};
use crate::pipeline::Pipeline;
use crate::row_check::UnusableRow;
use crate::search::SearchRequest;
use crate::stop::StopStrings;
use crate::strategy::Decoding;

/// What to generate: one prompt and one seed per row.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    /// Prompt token ids, one non-empty list per row.
    pub prompts: Vec<Vec<u32>>,
    /// Upper bound on generated tokens per row.
    pub max_new_tokens: usize,
    /// One RNG seed per row: a row's tokens depend only on its prompt and seed.
    pub seeds: Vec<u64>,
    /// Token that ends a row, if the model has one.
    pub eos_token_id: Option<u32>,
    /// Keep generating past the end-of-sequence token.
    pub ignore_eos: bool,
    /// Stop strings (sampling only; searches ignore them). The token that completes one is kept.
    pub stop: StopStrings,
    /// A length budget in characters: a row stops at the first token that brings its
    /// generated text to this many characters (counted as UTF-8 sequences begun, through
    /// `stop.token_bytes`), and that token is kept; the caller cuts the text to the budget.
    /// Sampling only (searches stop at `max_new_tokens`), which still bounds every row.
    pub max_new_chars: Option<usize>,
    /// Checked before every step of sampling: once set, decoding stops with [`Cancelled`]
    /// (Ctrl-C during a batch of very long rows is honoured within one step).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Decodes every prompt with a built strategy: pipelines run the batch together; a search runs
/// each prompt alone and returns its best hypothesis (whose tokens are then streamed).
pub fn decode(
    model: &mut dyn LanguageModel,
    req: &GenerateRequest,
    decoding: &mut Decoding,
    mut on_token: impl FnMut(usize, u32),
) -> Result<Vec<Generation>, ModelError> {
    match decoding {
        Decoding::Sample(pipelines) => generate(model, req, pipelines, on_token),
        Decoding::Search { search, processors } => {
            let mut out = Vec::with_capacity(req.prompts.len());
            for (row, prompt) in req.prompts.iter().enumerate() {
                if cancel::is_set(req.cancel.as_deref()) {
                    return Err(Box::new(Cancelled));
                }
                if prompt.is_empty() {
                    return Err(format!("prompt {row} is empty: give at least one token").into());
                }
                let sreq = SearchRequest {
                    prompt,
                    max_new_tokens: req.max_new_tokens,
                    eos_token_id: req.eos_token_id,
                    ignore_eos: req.ignore_eos,
                    seed: req.seeds.get(row).copied().unwrap_or(0),
                    cancel: req.cancel.as_deref(),
                };
                processors.iter_mut().for_each(|p| p.reset());
                let best = search
                    .search(model, &sreq, processors)
                    .map_err(|e| match e.downcast::<UnusableRow>() {
                        Ok(u) => Box::new(UnusableRow { row, ..*u }) as ModelError,
                        Err(e) => e,
                    })?
                    .swap_remove(0);
                best.tokens.iter().for_each(|&t| on_token(row, t));
                out.push(best);
            }
            Ok(out)
        }
    }
}

/// Runs the batch to completion, choosing row `i`'s tokens with `pipelines[i]`.
/// `on_token(row, token)` is called as each token is accepted, so callers can stream.
pub fn generate(
    model: &mut dyn LanguageModel,
    req: &GenerateRequest,
    pipelines: &mut [Pipeline],
    mut on_token: impl FnMut(usize, u32),
) -> Result<Vec<Generation>, ModelError> {
    let n = req.prompts.len();
    if req.seeds.len() != n || pipelines.len() != n {
        return Err(format!(
            "{n} prompts but {} seeds and {} pipelines",
            req.seeds.len(),
            pipelines.len()
        )
        .into());
    }
    let stop = Arc::new(req.stop.clone());
    let mut batch: Batch<&mut Pipeline> = Batch::new();
    for (row, (prompt, pipeline)) in req.prompts.iter().zip(pipelines.iter_mut()).enumerate() {
        batch.add(NewRow {
            id: row,
            prompt: prompt.clone(),
            pipeline,
            seed: req.seeds[row],
            max_new_tokens: req.max_new_tokens,
            eos_token_id: req.eos_token_id,
            ignore_eos: req.ignore_eos,
            stop: stop.clone(),
            max_new_chars: req.max_new_chars,
        })?;
    }
    let mut out: Vec<Option<Generation>> = vec![None; n];
    let mut finish = |done: Vec<(usize, Generation)>| {
        for (id, g) in done {
            out[id] = Some(g);
        }
    };
    let result = (|| {
        finish(batch.advance(model)?);
        loop {
            finish(batch.select(model, |a| on_token(a.id, a.token))?);
            if batch.is_empty() {
                return Ok(());
            }
            if cancel::is_set(req.cancel.as_deref()) {
                return Err(Box::new(Cancelled) as ModelError);
            }
            finish(batch.advance(model)?);
        }
    })();
    drop(batch);
    result?;
    Ok(out
        .into_iter()
        .map(|g| g.expect("every row finishes"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::FinishReason;
    use crate::model::Logits;
    use crate::registry::{BuildContext, Registry};
    use crate::strategy::Strategy;

    /// A fake model whose logits depend on the last token and the row length:
    /// logit[v] = -((v + 3 * last + len) % V) with ties impossible, so greedy is predictable.
    struct Table {
        vocab: usize,
        max_row: Option<usize>,
        rows: Vec<Vec<u32>>,
        retains: usize,
        /// Run `for_each_row` on three threads (as the native engine runs it on its team).
        threads: bool,
    }

    impl Table {
        fn logits(&self) -> Logits {
            let mut data = Vec::new();
            for r in &self.rows {
                let last = *r.last().unwrap() as usize;
                for v in 0..self.vocab {
                    data.push(-(((v + 3 * last + r.len()) % self.vocab) as f32));
                }
            }
            Logits {
                data,
                vocab: self.vocab,
            }
        }
    }

    impl LanguageModel for Table {
        fn vocab_size(&self) -> usize {
            self.vocab
        }
        fn context_len(&self) -> usize {
            self.max_row.unwrap_or(1 << 20)
        }
        fn max_row_len(&self) -> Option<usize> {
            self.max_row
        }
        fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
            self.rows = prompts.to_vec();
            Ok(self.logits())
        }
        fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
            assert_eq!(tokens.len(), self.rows.len());
            for (r, &t) in self.rows.iter_mut().zip(tokens) {
                r.push(t);
            }
            Ok(self.logits())
        }
        fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
            self.retains += 1;
            self.rows = rows.iter().map(|&i| self.rows[i].clone()).collect();
            Ok(())
        }
        fn for_each_row(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
            if !self.threads {
                return (0..n).for_each(f);
            }
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                break;
                            }
                            f(i);
                            // Interleave the threads' rows.
                            std::thread::yield_now();
                        }
                    });
                }
            });
        }
    }

    fn table(vocab: usize) -> Table {
        Table {
            vocab,
            max_row: None,
            rows: vec![],
            retains: 0,
            threads: false,
        }
    }

    /// The greedy token by the table's formula: v with (v + 3 last + len) % V == 0.
    fn expected_greedy(prompt: &[u32], vocab: usize, n: usize) -> Vec<u32> {
        let mut seq = prompt.to_vec();
        let mut out = vec![];
        for _ in 0..n {
            let last = *seq.last().unwrap() as usize;
            let v = (vocab - (3 * last + seq.len()) % vocab) % vocab;
            seq.push(v as u32);
            out.push(v as u32);
        }
        out
    }

    fn req(prompts: Vec<Vec<u32>>, max_new: usize) -> GenerateRequest {
        let seeds = (0..prompts.len() as u64).collect();
        GenerateRequest {
            prompts,
            max_new_tokens: max_new,
            seeds,
            eos_token_id: None,
            ignore_eos: false,
            stop: StopStrings::default(),
            max_new_chars: None,
            cancel: None,
        }
    }

    const GREEDY: &str = "[selector]\nname = \"greedy\"";
    const SAMPLE: &str = "[[processors]]\nname = \"temperature\"\nt = 2.0\n[[processors]]\nname = \"top_k\"\nk = 5\n[selector]\nname = \"multinomial\"";

    fn pipes(spec: &str, n: usize) -> Vec<Pipeline> {
        let r = Registry::builtin();
        let cx = BuildContext::default();
        let s = Strategy::parse("t", "test", spec, &r, &cx).unwrap();
        s.pipelines(&r, &cx, n).unwrap()
    }

    fn run(m: &mut Table, r: &GenerateRequest, spec: &str) -> Vec<Generation> {
        generate(m, r, &mut pipes(spec, r.prompts.len()), |_, _| {}).unwrap()
    }

    #[test]
    fn rows_chains_on_the_models_threads_give_the_same_rows() {
        // 16 rows × 8192 tokens: the batch runs the rows' chains through `for_each_row` (here on
        // three threads). Every row's tokens, log-probabilities and entropies equal those of the
        // same row run alone (one row: its chain on this thread), to the bit.
        const SPREAD: &str = "[[processors]]\nname = \"temperature\"\nt = 900.0\n[[processors]]\nname = \"top_p\"\np = 0.9\n[selector]\nname = \"multinomial\"";
        let prompts: Vec<Vec<u32>> = (0..16u32).map(|i| vec![i * 7 + 1, i]).collect();
        let mut threaded = table(8192);
        threaded.threads = true;
        let together = run(&mut threaded, &req(prompts.clone(), 12), SPREAD);
        let bits = |g: &Generation| {
            (
                g.tokens.clone(),
                g.logprobs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                g.entropies.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                g.sampling_entropies
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>(),
                g.sampling_logprobs
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>(),
            )
        };
        let mut distinct = std::collections::HashSet::new();
        for (i, p) in prompts.iter().enumerate() {
            let mut alone_req = req(vec![p.clone()], 12);
            alone_req.seeds = vec![i as u64];
            let alone = run(&mut table(8192), &alone_req, SPREAD);
            assert_eq!(bits(&together[i]), bits(&alone[0]), "row {i}");
            distinct.extend(together[i].tokens.iter().copied());
        }
        // The draws are spread (the test would be weak on a near-greedy chain).
        assert!(distinct.len() > 100, "{}", distinct.len());
    }

    #[test]
    fn greedy_follows_the_table() {
        let mut m = table(11);
        let g = run(&mut m, &req(vec![vec![4, 2]], 6), GREEDY);
        assert_eq!(g[0].tokens, expected_greedy(&[4, 2], 11, 6));
        assert_eq!(g[0].finish_reason, FinishReason::Length);
        // The greedy token has logit 0; the others are -1..-10.
        let lse = (0..11).map(|i| (-(i as f64)).exp()).sum::<f64>().ln();
        let h: f64 = (0..11)
            .map(|i| (-(i as f64) - lse).exp() * (i as f64 + lse))
            .sum();
        for i in 0..6 {
            assert!((g[0].logprobs[i] + lse).abs() < 1e-9);
            assert!((g[0].entropies[i] - h).abs() < 1e-9);
            assert_eq!(g[0].sampling_entropies[i], 0.0);
            assert_eq!(g[0].sampling_logprobs[i], 0.0, "a deterministic choice");
        }
    }

    /// A set cancel flag stops decoding before the next step, with [`Cancelled`].
    #[test]
    fn a_set_cancel_flag_stops_before_the_next_step() {
        let mut r = req(vec![vec![1, 2]], 1_000_000);
        r.cancel = Some(Arc::new(AtomicBool::new(true)));
        let err = generate(&mut table(11), &r, &mut pipes(GREEDY, 1), |_, _| {}).unwrap_err();
        assert!(err.is::<Cancelled>(), "{err}");
        // Unset, the same request runs (here to a short cap).
        r.cancel = Some(Arc::new(AtomicBool::new(false)));
        r.max_new_tokens = 5;
        assert_eq!(run(&mut table(11), &r, GREEDY)[0].tokens.len(), 5);
    }

    /// The sampled distribution's log-probability of each token, by hand: the table's logits at
    /// a step are 0, -1, .., -(V-1) in some order; temperature 2 then top-5 keeps raw logits
    /// 0..-4, halved, so the token whose raw logit is -j has log-probability
    /// -j/2 - ln Σ_{i<5} e^(-i/2). `j` comes from the raw log-probability.
    #[test]
    fn sampled_logprobs_are_the_processed_distributions() {
        let g = run(&mut table(17), &req(vec![vec![1, 2], vec![5]], 30), SAMPLE);
        let lse_raw = (0..17).map(|i| (-(i as f64)).exp()).sum::<f64>().ln();
        let lse_top5 = (0..5).map(|i| (-(i as f64) / 2.0).exp()).sum::<f64>().ln();
        let mut seen = [0usize; 5];
        for row in &g {
            assert_eq!(row.sampling_logprobs.len(), row.tokens.len());
            for (raw, sampled) in row.logprobs.iter().zip(&row.sampling_logprobs) {
                let j = -(raw + lse_raw);
                assert!(
                    (j - j.round()).abs() < 1e-9 && j.round() < 5.0,
                    "raw logit {j}"
                );
                seen[j.round() as usize] += 1;
                let want = -j.round() / 2.0 - lse_top5;
                assert!((sampled - want).abs() < 1e-5, "{sampled} vs {want}");
            }
        }
        assert!(seen.iter().filter(|&&n| n > 0).count() >= 3, "{seen:?}");
    }

    #[test]
    fn batch_rows_match_single_rows_and_stop_independently() {
        let prompts = vec![vec![1], vec![3, 4, 5], vec![7, 7]];
        let eos = expected_greedy(&[3, 4, 5], 13, 3)[2];
        let mut r = req(prompts.clone(), 5);
        r.eos_token_id = Some(eos);
        let mut m = table(13);
        let mut streamed = vec![vec![]; 3];
        let mut p = pipes(GREEDY, 3);
        let batch = generate(&mut m, &r, &mut p, |row, t| streamed[row].push(t)).unwrap();
        assert!(m.retains >= 1, "finished rows are dropped from the model");
        for (i, p) in prompts.iter().enumerate() {
            let mut single = r.clone();
            single.prompts = vec![p.clone()];
            single.seeds = vec![r.seeds[i]];
            let alone = run(&mut table(13), &single, GREEDY);
            assert_eq!(batch[i], alone[0], "row {i}");
            assert_eq!(streamed[i], batch[i].tokens);
        }
        assert_eq!(batch[1].finish_reason, FinishReason::Eos);
        assert_eq!(batch[1].tokens.len(), 2);
    }

    #[test]
    fn sampling_rows_are_independent_of_batch() {
        let prompts = vec![vec![1, 2], vec![5]];
        let r = req(prompts.clone(), 20);
        let batch = run(&mut table(17), &r, SAMPLE);
        for i in 0..2 {
            let mut single = r.clone();
            single.prompts = vec![prompts[i].clone()];
            single.seeds = vec![r.seeds[i]];
            let alone = run(&mut table(17), &single, SAMPLE);
            assert_eq!(batch[i].tokens, alone[0].tokens);
        }
        // Same seed, same tokens; another seed, other tokens.
        assert_eq!(run(&mut table(17), &r, SAMPLE), batch);
        let mut other = r.clone();
        other.seeds = vec![100, 200];
        assert_ne!(
            run(&mut table(17), &other, SAMPLE)[0].tokens,
            batch[0].tokens
        );
        // The sampled distribution is the top 5 at temperature 2: its entropy is below the raw one's
        // only through the truncation, so both are positive and differ.
        assert!(
            batch[0]
                .sampling_entropies
                .iter()
                .all(|&h| h > 0.0 && h < 5f64.ln() + 1e-12)
        );
    }

    #[test]
    fn processors_see_prompt_and_generated_tokens() {
        // n = 1 blocks every token already in the row: with vocab 7 and a 2-token prompt,
        // 5 tokens can be generated, all distinct and none from the prompt.
        let spec =
            "[[processors]]\nname = \"no_repeat_ngram\"\nn = 1\n[selector]\nname = \"greedy\"";
        let g = run(&mut table(7), &req(vec![vec![0, 1]], 5), spec);
        let mut seen = vec![0, 1];
        seen.extend(&g[0].tokens);
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn stop_strings_end_rows_on_the_completing_token() {
        // Token t decodes to the letter 'a' + t: the greedy table sequence spells a word, and
        // the stop string is a piece of it that spans two tokens.
        let letters = Arc::new(|t: u32| vec![b'a' + t as u8]);
        let greedy = expected_greedy(&[4, 2], 11, 8);
        let word: Vec<u8> = greedy.iter().map(|&t| b'a' + t as u8).collect();
        let stop = String::from_utf8(word[3..5].to_vec()).unwrap();
        let mut r = req(vec![vec![4, 2]], 8);
        r.stop = StopStrings::new(vec!["zzz".into(), stop.clone()], letters.clone());
        let g = run(&mut table(11), &r, GREEDY);
        // The row ends on the token that completes the first occurrence.
        let first_end = word.windows(2).position(|w| w == stop.as_bytes()).unwrap() + 2;
        assert_eq!(g[0].tokens, greedy[..first_end].to_vec());
        assert_eq!(g[0].finish_reason, FinishReason::Stop);
        // A stop string that is never produced never stops the row.
        r.stop = StopStrings::new(vec!["zzz".into()], letters);
        let g = run(&mut table(11), &r, GREEDY);
        assert_eq!(g[0].finish_reason, FinishReason::Length);
        // Without token_bytes, stop strings are an error rather than ignored.
        r.stop.token_bytes = None;
        assert!(generate(&mut table(11), &r, &mut pipes(GREEDY, 1), |_, _| {}).is_err());
    }

    #[test]
    fn a_character_budget_ends_rows_on_the_token_that_reaches_it() {
        // Token t decodes to t + 1 characters ("é" is one character in two bytes), so rows
        // with different tokens spend the budget at different token counts.
        let chars = Arc::new(|t: u32| "é".repeat(t as usize + 1).into_bytes());
        let greedy = expected_greedy(&[4, 2], 11, 30);
        let mut r = req(vec![vec![4, 2]], 30);
        r.stop = StopStrings {
            strings: vec![],
            token_bytes: Some(chars),
        };
        for budget in [1, 7, 20] {
            r.max_new_chars = Some(budget);
            let g = run(&mut table(11), &r, GREEDY);
            let spent: Vec<usize> = greedy
                .iter()
                .scan(0, |sum, &t| {
                    *sum += t as usize + 1;
                    Some(*sum)
                })
                .collect();
            let n = spent.iter().position(|&c| c >= budget).unwrap() + 1;
            assert_eq!(g[0].tokens, greedy[..n].to_vec(), "budget {budget}");
            assert!(n == 1 || spent[n - 2] < budget);
            assert_eq!(g[0].finish_reason, FinishReason::Length);
        }
        // The token cap still bounds a row.
        r.max_new_chars = Some(10_000);
        assert_eq!(run(&mut table(11), &r, GREEDY)[0].tokens.len(), 30);
        // Without token_bytes, a budget is an error rather than ignored.
        r.stop.token_bytes = None;
        assert!(generate(&mut table(11), &r, &mut pipes(GREEDY, 1), |_, _| {}).is_err());
    }

    #[test]
    fn context_stop_when_the_model_cannot_slide() {
        let mut m = table(7);
        m.max_row = Some(5);
        let g = run(&mut m, &req(vec![vec![1, 2, 3]], 10), GREEDY);
        // Rows of length 3, 4, 5 are seen whole; the token predicted from 5 tokens is the last.
        assert_eq!(g[0].tokens.len(), 3);
        assert_eq!(g[0].finish_reason, FinishReason::Context);
    }

    #[test]
    fn empty_prompt_and_mismatched_pipelines_are_errors() {
        let r = req(vec![vec![]], 3);
        let e = generate(&mut table(5), &r, &mut pipes(GREEDY, 1), |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("empty"));
        let r = req(vec![vec![1]], 3);
        assert!(generate(&mut table(5), &r, &mut pipes(GREEDY, 2), |_, _| {}).is_err());
    }

    #[test]
    fn zero_new_tokens_never_touches_the_model() {
        let mut m = table(5);
        let g = run(&mut m, &req(vec![vec![1]], 0), GREEDY);
        assert!(g[0].tokens.is_empty());
        assert!(m.rows.is_empty());
    }
}

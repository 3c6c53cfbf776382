//! [`score_forced`]: a model's view of given continuations (human text), token by token, as the
//! decoding loop sees its own samples: each continuation token's log-probability and the
//! entropy of the distribution it was drawn against, with the same arithmetic as
//! [`crate::decode`] (raw logits, temperature 1), so a human reference gets the same
//! `mean_logprob` and `mean_entropy` a generated text would.

use crate::dist::lse_and_entropy;
use crate::model::{LanguageModel, ModelError};

/// One continuation's per-token figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForcedScore {
    /// Per continuation token: its log-probability under the model, given everything before.
    pub logprobs: Vec<f64>,
    /// Per continuation token: the entropy (nats) of the model's distribution at that step.
    pub entropies: Vec<f64>,
}

/// Feeds each prompt, then its continuation one token at a time, in one batch (rows leave as
/// their continuation ends), and scores every continuation token. Prompts must be non-empty.
pub fn score_forced(
    model: &mut dyn LanguageModel,
    prompts: &[Vec<u32>],
    continuations: &[Vec<u32>],
) -> Result<Vec<ForcedScore>, ModelError> {
    assert_eq!(
        prompts.len(),
        continuations.len(),
        "one continuation per prompt"
    );
    let mut out = vec![ForcedScore::default(); prompts.len()];
    // Rows still feeding, as indices into `prompts`.
    let mut live: Vec<usize> = (0..prompts.len()).collect();
    let mut logits = model.prefill(prompts)?;
    let mut step = 0;
    loop {
        // Score token `step` of every live row from the logits that predict it.
        for (slot, &i) in live.iter().enumerate() {
            if let Some(&tok) = continuations[i].get(step) {
                let raw = logits.row(slot);
                let (lse, h) = lse_and_entropy(raw);
                out[i].logprobs.push(f64::from(raw[tok as usize]) - lse);
                out[i].entropies.push(h);
            }
        }
        // Rows with a next token to predict feed this one.
        let keep: Vec<usize> = (0..live.len())
            .filter(|&slot| continuations[live[slot]].len() > step + 1)
            .collect();
        if keep.is_empty() {
            return Ok(out);
        }
        if keep.len() < live.len() {
            model.retain(&keep)?;
            live = keep.iter().map(|&slot| live[slot]).collect();
        }
        let tokens: Vec<u32> = live.iter().map(|&i| continuations[i][step]).collect();
        logits = model.step(&tokens)?;
        step += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Logits;

    const V: usize = 7;

    /// Logits as a pure function of a row's whole history.
    fn logits_of(history: &[u32]) -> Vec<f32> {
        let sum: u32 = history.iter().sum();
        (0..V)
            .map(|v| ((v as f32) * 0.7 + sum as f32 * 0.3 + history.len() as f32).sin() * 3.0)
            .collect()
    }

    struct History {
        rows: Vec<Vec<u32>>,
        retains: usize,
    }

    impl History {
        fn logits(&self) -> Logits {
            Logits {
                data: self.rows.iter().flat_map(|r| logits_of(r)).collect(),
                vocab: V,
            }
        }
    }

    impl LanguageModel for History {
        fn vocab_size(&self) -> usize {
            V
        }
        fn context_len(&self) -> usize {
            1 << 20
        }
        fn max_row_len(&self) -> Option<usize> {
            None
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
    }

    /// Each token's log-probability and entropy equal those of the model's logits given the
    /// whole history before it, computed here directly in f64, for rows of different lengths
    /// (none, one, several tokens) scored in one batch.
    #[test]
    fn every_continuation_token_is_scored_given_its_history() {
        let prompts = vec![vec![1, 2], vec![3], vec![4, 4, 4], vec![0]];
        let conts = vec![vec![5, 6, 0], vec![], vec![2], vec![1, 2, 3, 4, 5]];
        let mut model = History {
            rows: vec![],
            retains: 0,
        };
        let got = score_forced(&mut model, &prompts, &conts).unwrap();
        for (i, (p, c)) in prompts.iter().zip(&conts).enumerate() {
            assert_eq!(got[i].logprobs.len(), c.len(), "row {i}");
            for (j, &tok) in c.iter().enumerate() {
                let mut history = p.clone();
                history.extend(&c[..j]);
                let l: Vec<f64> = logits_of(&history).iter().map(|&x| f64::from(x)).collect();
                let lse = l.iter().map(|x| x.exp()).sum::<f64>().ln();
                let want_lp = l[tok as usize] - lse;
                let want_h: f64 = -l.iter().map(|x| (x - lse).exp() * (x - lse)).sum::<f64>();
                assert!(
                    (got[i].logprobs[j] - want_lp).abs() < 1e-6,
                    "row {i} token {j}"
                );
                assert!(
                    (got[i].entropies[j] - want_h).abs() < 1e-6,
                    "row {i} token {j}"
                );
            }
        }
        assert!(model.retains >= 2, "rows left as they ended");
    }
}

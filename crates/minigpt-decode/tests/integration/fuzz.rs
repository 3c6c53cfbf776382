//! Property tests: strategy files with random numbers (huge, tiny, negative, NaN, ±∞), searches
//! included, either fail to parse or check against the model's vocabulary, or decode a few
//! tokens on a small model without panicking or running past their bounds.

use minigpt_decode::{
    BuildContext, GenerateRequest, Hidden, LanguageModel, Logits, ModelError, Registry, Strategy,
    decode,
};
use proptest::prelude::*;
use proptest::strategy::{Strategy as _, ValueTree as _};

/// Logits that depend on the last token and the row length; hidden states `[1, token]` (for
/// contrastive search).
#[derive(Default)]
struct Small {
    rows: Vec<Vec<u32>>,
    record: bool,
    last: Option<Hidden>,
}

const VOCAB: usize = 12;

impl Small {
    /// The logits of every row, and the hidden states of its last `new` positions when asked.
    fn out_new(&mut self, new: usize) -> Logits {
        if self.record {
            let positions = self.rows.iter().map(Vec::len).min().unwrap_or(0).min(new);
            let mut data = Vec::new();
            for r in &self.rows {
                for &t in &r[r.len() - positions..] {
                    data.extend([1.0, t as f32]);
                }
            }
            self.last = Some(Hidden {
                data,
                rows: self.rows.len(),
                positions,
                dim: 2,
            });
        }
        self.out()
    }

    fn out(&self) -> Logits {
        let mut data = Vec::with_capacity(self.rows.len() * VOCAB);
        for r in &self.rows {
            let last = *r.last().unwrap() as usize;
            data.extend((0..VOCAB).map(|v| ((v * 7 + last * 3 + r.len()) % 11) as f32 - 5.0));
        }
        Logits { data, vocab: VOCAB }
    }
}

impl LanguageModel for Small {
    fn vocab_size(&self) -> usize {
        VOCAB
    }
    fn context_len(&self) -> usize {
        64
    }
    fn max_row_len(&self) -> Option<usize> {
        None
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        self.rows = prompts.to_vec();
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        Ok(self.out_new(longest))
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        Ok(self.out_new(1))
    }
    fn record_hidden(&mut self, on: bool) -> Result<(), ModelError> {
        self.record = on;
        Ok(())
    }
    fn last_hidden(&self) -> Option<&Hidden> {
        self.last.as_ref()
    }
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        self.rows = rows.iter().map(|&i| self.rows[i].clone()).collect();
        Ok(())
    }
}

/// A number as TOML: ordinary, huge, tiny, negative, NaN or infinite.
fn number() -> impl proptest::strategy::Strategy<Value = String> {
    prop_oneof![
        (-3i64..40).prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (-2.0f64..3.0).prop_map(|v| format!("{v:?}")),
        prop::sample::select(vec![
            "nan",
            "inf",
            "-inf",
            "1e300",
            "-1e300",
            "1e-300",
            "5e-324",
            "0.0",
            "-0.0",
            "1e38",
            "3.5e38",
            "9223372036854775807",
            "-9223372036854775808",
            "100000",
        ])
        .prop_map(String::from),
    ]
}

/// Three times in four a value from `range` (written as TOML), else any [`number`].
fn mostly<T>(
    range: impl proptest::strategy::Strategy<Value = T> + 'static,
) -> impl proptest::strategy::Strategy<Value = String>
where
    T: std::fmt::Debug + 'static,
{
    prop_oneof![3 => range.prop_map(|v| format!("{v:?}")), 1 => number()]
}

/// A strategy file: 0–3 processors with random numbers, then a selector or a search.
fn doc() -> impl proptest::strategy::Strategy<Value = String> {
    let processor = (
        prop::sample::select(vec![
            ("temperature", "t"),
            ("top_k", "k"),
            ("top_p", "p"),
            ("min_p", "p"),
            ("typical_p", "p"),
            ("epsilon", "epsilon"),
            ("eta", "eta"),
            ("top_n_sigma", "n"),
            ("repetition_penalty", "penalty"),
            ("no_repeat_ngram", "n"),
            ("min_new_tokens", "n"),
            ("dry", "multiplier"),
            ("xtc", "threshold"),
            ("frequency_penalty", "alpha"),
            ("presence_penalty", "alpha"),
        ]),
        number(),
    )
        .prop_map(|((name, key), v)| format!("[[processors]]\nname = \"{name}\"\n{key} = {v}\n"));
    let last = prop_oneof![
        Just("[selector]\nname = \"greedy\"\n".to_string()),
        Just("[selector]\nname = \"multinomial\"\n".to_string()),
        number().prop_map(|v| format!("[selector]\nname = \"mirostat_v2\"\ntau = {v}\n")),
        // Mostly usable sizes (so searches run), sometimes anything.
        (mostly(1i64..6), mostly(-2.0f64..2.0)).prop_map(|(b, l)| format!(
            "[search]\nname = \"beam_search\"\nnum_beams = {b}\nlength_penalty = {l}\n"
        )),
        (mostly(1i64..6), mostly(0.0f64..1.0)).prop_map(|(k, a)| format!(
            "[search]\nname = \"contrastive_search\"\ntop_k = {k}\npenalty_alpha = {a}\n"
        )),
    ];
    (prop::collection::vec(processor, 0..4), last).prop_map(|(p, l)| p.concat() + &l)
}

/// Decodes `text` if it parses and fits the vocabulary: `None` when refused, else whether
/// decoding succeeded; panics are the caller's failure.
fn try_decode(text: &str, seed: u64) -> Option<Result<Vec<usize>, String>> {
    let registry = Registry::builtin();
    let cx = BuildContext::default();
    let s = Strategy::parse("f", "fuzz.toml", text, &registry, &cx).ok()?;
    s.check_vocab(&registry, &cx, VOCAB).ok()?;
    let mut decoding = s.build(&registry, &cx, 2).unwrap();
    let req = GenerateRequest {
        prompts: vec![vec![1, 2], vec![3]],
        max_new_tokens: 6,
        seeds: vec![seed, seed ^ 1],
        eos_token_id: Some(0),
        ..Default::default()
    };
    Some(
        decode(&mut Small::default(), &req, &mut decoding, |_, _| {})
            .map(|gens| gens.iter().map(|g| g.tokens.len()).collect())
            .map_err(|e| e.to_string()),
    )
}

/// The generator reaches decoding often, searches included, so the property is not vacuous.
#[test]
fn the_generator_reaches_decoding() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut decoded, mut searches) = (0, 0);
    for _ in 0..500 {
        let text = doc().new_tree(&mut runner).unwrap().current();
        if let Some(Ok(_)) = try_decode(&text, 1) {
            decoded += 1;
            searches += usize::from(text.contains("[search]"));
        }
    }
    assert!(
        decoded >= 50 && searches >= 10,
        "{decoded} decoded, {searches} searches"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_numbers_never_panic_or_run_past_their_bounds(text in doc(), seed in any::<u64>()) {
        // A refusal or an error (a row no token can be chosen from) is allowed; a panic or a
        // row past its bound is not.
        if let Some(Ok(lengths)) = try_decode(&text, seed) {
            prop_assert!(lengths.iter().all(|&n| n <= 6), "{text}");
        }
    }
}

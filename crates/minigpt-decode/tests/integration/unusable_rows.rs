//! A row that no token can be chosen from ends the generation with an error naming the chain
//! and the step after which the row became unusable: for every selector and every search,
//! whether the model produced the row or a processor emptied it. No token is ever picked.

use minigpt_decode::registry::params;
use minigpt_decode::{
    BuildContext, GenerateRequest, Hidden, LanguageModel, Logits, LogitsProcessor, ModelError,
    PluginInfo, PluginKind, Registry, RowProblem, StepContext, Strategy, UnusableRow, decode,
};

/// Fixed logits at every step; hidden state `[1, token]` for contrastive search.
struct Fixed {
    logits: Vec<f32>,
    rows: Vec<Vec<u32>>,
    record: bool,
    last: Option<Hidden>,
}

impl Fixed {
    fn new(logits: Vec<f32>) -> Self {
        Self {
            logits,
            rows: vec![],
            record: false,
            last: None,
        }
    }
    fn out(&mut self, new_positions: usize) -> Logits {
        if self.record {
            let mut data = Vec::new();
            for r in &self.rows {
                for &t in &r[r.len() - new_positions..] {
                    data.extend([1.0, t as f32]);
                }
            }
            self.last = Some(Hidden {
                data,
                rows: self.rows.len(),
                positions: new_positions,
                dim: 2,
            });
        }
        Logits {
            data: self.logits.repeat(self.rows.len()),
            vocab: self.logits.len(),
        }
    }
}

impl LanguageModel for Fixed {
    fn vocab_size(&self) -> usize {
        self.logits.len()
    }
    fn context_len(&self) -> usize {
        1 << 20
    }
    fn max_row_len(&self) -> Option<usize> {
        None
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        self.rows = prompts.to_vec();
        Ok(self.out(prompts[0].len()))
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
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

/// A processor that breaks the contract: it masks every token.
struct Wipe;

impl std::fmt::Display for Wipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wipe")
    }
}

impl LogitsProcessor for Wipe {
    fn name(&self) -> &'static str {
        "wipe"
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        logits.fill(f32::NEG_INFINITY);
    }
}

#[derive(serde::Deserialize)]
struct NoParams {}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register_processor(
        PluginInfo {
            name: "wipe",
            kind: PluginKind::Processor,
            description: "Masks every token (a broken plugin, for tests).",
            ties: "",
            reference: "",
            params: &[],
        },
        |t, _| {
            let _: NoParams = params(t)?;
            Ok(Box::new(Wipe))
        },
    )
    .unwrap();
    r
}

/// The last line of every chain under test.
const LASTS: &[&str] = &[
    "[selector]\nname = \"greedy\"",
    "[selector]\nname = \"multinomial\"",
    "[selector]\nname = \"mirostat_v2\"",
    "[search]\nname = \"beam_search\"\nnum_beams = 2",
    "[search]\nname = \"contrastive_search\"\ntop_k = 2",
];

fn run(model_logits: Vec<f32>, processors: &str, last: &str) -> Result<Vec<u32>, UnusableRow> {
    let registry = registry();
    let text = format!("{processors}\n{last}\n");
    let s = Strategy::parse("t", "<test>", &text, &registry, &BuildContext::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut decoding = s.build(&registry, &BuildContext::default(), 1).unwrap();
    let req = GenerateRequest {
        prompts: vec![vec![1, 2]],
        max_new_tokens: 4,
        seeds: vec![7],
        eos_token_id: None,
        ..Default::default()
    };
    let mut streamed = Vec::new();
    let out = decode(
        &mut Fixed::new(model_logits),
        &req,
        &mut decoding,
        |_, t| streamed.push(t),
    );
    match out {
        Ok(g) => Ok(g[0].tokens.clone()),
        Err(e) => {
            let u = e
                .downcast::<UnusableRow>()
                .unwrap_or_else(|e| panic!("not an UnusableRow: {e}"));
            // Nothing was picked from the unusable row.
            assert_eq!(streamed.len(), u.step, "{u}");
            Err(*u)
        }
    }
}

#[test]
fn the_models_own_unusable_rows_are_errors() {
    let nan = f32::NAN;
    let neg = f32::NEG_INFINITY;
    for last in LASTS {
        let e = run(vec![neg; 5], "", last).unwrap_err();
        assert_eq!(e.problem, RowProblem::NoFiniteLogit, "{last}");
        assert_eq!(e.after, "the model's logits");
        assert_eq!((e.row, e.step), (0, 0));
        let e = run(vec![0.0, 1.0, nan, 0.5, neg], "", last).unwrap_err();
        assert_eq!(e.problem, RowProblem::NotANumber(2), "{last}");
        let e = run(vec![0.0, f32::INFINITY, 0.5], "", last).unwrap_err();
        assert_eq!(e.problem, RowProblem::PlusInfinity(1), "{last}");
        let msg = e.to_string();
        assert!(
            msg.contains("no token can be chosen") && msg.contains("the model's logits"),
            "{msg}"
        );
    }
}

#[test]
fn a_processor_that_empties_the_row_is_named() {
    let procs = "[[processors]]\nname = \"top_k\"\nk = 2\n[[processors]]\nname = \"wipe\"";
    for last in LASTS {
        let e = run(vec![0.0, 1.0, 0.5, -1.0], procs, last).unwrap_err();
        assert_eq!(e.problem, RowProblem::NoFiniteLogit, "{last}");
        assert_eq!(e.after, "`wipe`", "{last}");
        assert!(
            e.chain.starts_with("logits -> top_k(2) -> wipe -> "),
            "{}",
            e.chain
        );
        assert_eq!(e.step, 0);
    }
}

#[test]
fn a_penalty_that_overflows_float32_ends_in_an_error_not_token_zero() {
    // top_k(1) leaves token 3; each time it is generated, frequency_penalty subtracts 3e38.
    // After two of them the logit is 2 - 6e38 = -inf in float32: the row is empty.
    let procs = "[[processors]]\nname = \"top_k\"\nk = 1\n\
                 [[processors]]\nname = \"frequency_penalty\"\nalpha = 3e38";
    let e = run(vec![0.0, 1.0, 0.5, 2.0], procs, LASTS[1]).unwrap_err();
    assert_eq!((e.step, e.problem), (2, RowProblem::NoFiniteLogit));
    assert_eq!(e.after, "`frequency_penalty(3e38)`");
    // Without the overflow the same chain generates token 3 every step.
    let ok = "[[processors]]\nname = \"top_k\"\nk = 1\n\
              [[processors]]\nname = \"frequency_penalty\"\nalpha = 1.0";
    assert_eq!(run(vec![0.0, 1.0, 0.5, 2.0], ok, LASTS[1]), Ok(vec![3; 4]));
}

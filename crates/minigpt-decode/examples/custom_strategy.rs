//! A user crate's own logits processor, registered next to the built-ins and selected by name
//! from a strategy file.
//!
//!     cargo run --release -p minigpt-decode --example custom_strategy
//!
//! The processor is Gemma-2's logit soft-capping: l -> cap * tanh(l / cap).

use std::fmt;

use minigpt_decode::registry::params;
use minigpt_decode::{
    BuildContext, GenerateRequest, LanguageModel, Logits, LogitsProcessor, ModelError, ParamInfo,
    PluginInfo, PluginKind, Registry, StepContext, Strategy, generate,
};

/// 1. The plugin: parameters, validation, `Display`, and `process`.
struct SoftCap {
    cap: f32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftCapParams {
    cap: f64,
}

const SOFTCAP: PluginInfo = PluginInfo {
    name: "softcap",
    kind: PluginKind::Processor,
    description: "Soft-cap logits: l -> cap * tanh(l / cap) (Gemma 2).",
    ties: "",
    reference: "Gemma 2's final-logit soft-capping",
    params: &[ParamInfo {
        name: "cap",
        ty: "float > 0",
        default: None,
    }],
};

fn build_softcap(
    t: &toml::Table,
    _: &BuildContext<'_>,
) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: SoftCapParams = params(t)?;
    if !(p.cap.is_finite() && p.cap > 0.0) {
        return Err(format!("cap must be a number > 0 (got {})", p.cap));
    }
    Ok(Box::new(SoftCap { cap: p.cap as f32 }))
}

impl fmt::Display for SoftCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "softcap({})", self.cap)
    }
}

impl LogitsProcessor for SoftCap {
    fn name(&self) -> &'static str {
        SOFTCAP.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        for l in logits.iter_mut().filter(|l| l.is_finite()) {
            *l = self.cap * (*l / self.cap).tanh();
        }
    }
}

/// A stand-in model: the logits favour token (last + 1) mod 8 strongly.
struct Counter {
    rows: Vec<Vec<u32>>,
}

impl Counter {
    fn logits(&self) -> Logits {
        let mut data = Vec::new();
        for r in &self.rows {
            let next = (r.last().copied().unwrap_or(0) + 1) % 8;
            data.extend((0..8).map(|v| if v == next { 30.0 } else { 0.0 }));
        }
        Logits { data, vocab: 8 }
    }
}

impl LanguageModel for Counter {
    fn vocab_size(&self) -> usize {
        8
    }
    fn context_len(&self) -> usize {
        1024
    }
    fn max_row_len(&self) -> Option<usize> {
        None
    }
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        self.rows = prompts.to_vec();
        Ok(self.logits())
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError> {
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        Ok(self.logits())
    }
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        self.rows = rows.iter().map(|&i| self.rows[i].clone()).collect();
        Ok(())
    }
}

/// 2. Register it, 3. name it in a strategy file, 4. decode with it.
pub fn run() -> Result<(String, Vec<u32>), ModelError> {
    let mut registry = Registry::builtin();
    registry.register_processor(SOFTCAP, build_softcap)?;
    let toml = r#"
        description = "soft-capped sampling"
        [[processors]]
        name = "softcap"
        cap = 2.0
        [selector]
        name = "multinomial"
    "#;
    let cx = BuildContext::default();
    let strategy = Strategy::parse("softcap_2", "<example>", toml, &registry, &cx)?;
    let mut pipelines = strategy.pipelines(&registry, &cx, 1)?;
    let chain = pipelines[0].to_string();
    let req = GenerateRequest {
        prompts: vec![vec![0]],
        max_new_tokens: 12,
        seeds: vec![42],
        eos_token_id: None,
        ignore_eos: false,
        stop: Default::default(),
        max_new_chars: None,
        cancel: None,
    };
    let out = generate(
        &mut Counter { rows: vec![] },
        &req,
        &mut pipelines,
        |_, _| {},
    )?;
    Ok((chain, out[0].tokens.clone()))
}

#[allow(dead_code)] // the integration test includes this file and calls `run` instead
fn main() -> Result<(), ModelError> {
    let (chain, tokens) = run()?;
    println!("{chain}");
    println!("{tokens:?}");
    Ok(())
}

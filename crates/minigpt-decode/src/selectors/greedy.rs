//! `greedy`: the most likely token (the first on ties).

use std::fmt;

use crate::dist::argmax;
use crate::registry::{PluginInfo, PluginKind, params};
use crate::rng::Rng;
use crate::selector::{Choice, TokenSelector};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "greedy",
    kind: PluginKind::Selector,
    description: "The most likely token (argmax; the lowest id on ties). Ignores temperature.",
    ties: "the lowest id among tokens tied at the top (torch.argmax)",
    reference: "torch.argmax",
    params: &[],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

/// Argmax selector.
#[derive(Debug, Clone, Default)]
pub struct Greedy;

/// Builds it from a TOML table (no parameters).
pub fn build(t: &toml::Table) -> Result<Box<dyn TokenSelector>, String> {
    let _: Params = params(t)?;
    Ok(Box::new(Greedy))
}

impl fmt::Display for Greedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greedy")
    }
}

impl TokenSelector for Greedy {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn select(&mut self, logits: &mut [f32], _rng: &mut Rng) -> Choice {
        Choice {
            token: argmax(logits),
            entropy: 0.0,
            logprob: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_and_zero_entropy() {
        let mut g = Greedy;
        let c = g.select(&mut [0.1, 2.0, 2.0, f32::NEG_INFINITY], &mut Rng::new(0));
        assert_eq!(
            c,
            Choice {
                token: 1,
                entropy: 0.0,
                logprob: 0.0
            }
        );
        assert!(build(&toml::toml! { k = 1 }).is_err());
    }
}

//! The standard strategy files (`configs/decode/*.toml`), compiled into the crate: a sweep
//! config anywhere, or `generate --strategy NAME`, can name them, and an installed binary has
//! them. A file of the same name next to a config comes first.

use crate::registry::{BuildContext, Registry};
use crate::strategy::{Strategy, StrategyError};

/// `(name, TOML text)` of every built-in strategy, by name.
pub const BUILTIN_STRATEGIES: &[(&str, &str)] = &[
    (
        "beam_4",
        include_str!("../../../configs/decode/beam_4.toml"),
    ),
    (
        "contrastive_4_0.6",
        include_str!("../../../configs/decode/contrastive_4_0.6.toml"),
    ),
    (
        "dry_0.8",
        include_str!("../../../configs/decode/dry_0.8.toml"),
    ),
    (
        "epsilon_0.0003",
        include_str!("../../../configs/decode/epsilon_0.0003.toml"),
    ),
    (
        "eta_0.0009",
        include_str!("../../../configs/decode/eta_0.0009.toml"),
    ),
    (
        "greedy",
        include_str!("../../../configs/decode/greedy.toml"),
    ),
    (
        "min_p_0.05",
        include_str!("../../../configs/decode/min_p_0.05.toml"),
    ),
    (
        "mirostat_v2_5",
        include_str!("../../../configs/decode/mirostat_v2_5.toml"),
    ),
    (
        "no_repeat_3",
        include_str!("../../../configs/decode/no_repeat_3.toml"),
    ),
    (
        "repetition_penalty_1.2",
        include_str!("../../../configs/decode/repetition_penalty_1.2.toml"),
    ),
    (
        "sampling",
        include_str!("../../../configs/decode/sampling.toml"),
    ),
    (
        "top_k_40",
        include_str!("../../../configs/decode/top_k_40.toml"),
    ),
    (
        "top_n_sigma_1",
        include_str!("../../../configs/decode/top_n_sigma_1.toml"),
    ),
    (
        "top_p_0.9",
        include_str!("../../../configs/decode/top_p_0.9.toml"),
    ),
    (
        "top_p_0.95",
        include_str!("../../../configs/decode/top_p_0.95.toml"),
    ),
    (
        "typical_0.95",
        include_str!("../../../configs/decode/typical_0.95.toml"),
    ),
    (
        "xtc_0.1_0.5",
        include_str!("../../../configs/decode/xtc_0.1_0.5.toml"),
    ),
];

/// The TOML text of the built-in strategy `name`.
pub fn builtin_strategy_text(name: &str) -> Option<&'static str> {
    BUILTIN_STRATEGIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The names of the built-in strategies, comma-separated (for messages).
pub fn builtin_strategy_names() -> String {
    BUILTIN_STRATEGIES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Strategy {
    /// The built-in strategy `name`, parsed (`None`: there is none of that name).
    pub fn builtin(
        name: &str,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Option<Result<Self, StrategyError>> {
        let text = builtin_strategy_text(name)?;
        Some(Self::parse(
            name,
            &format!("built-in strategy {name}"),
            text,
            registry,
            cx,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is exactly the files of `configs/decode`, with their current text.
    #[test]
    fn the_list_is_the_shipped_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/decode");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let listed: Vec<(String, String)> = BUILTIN_STRATEGIES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(listed, files);
    }

    #[test]
    fn every_builtin_parses() {
        let registry = Registry::builtin();
        // Text tokens (dry's breakers) need a tokenizer: characters as ids will do.
        let encode = |s: &str| s.chars().map(|c| c as u32).collect::<Vec<u32>>();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        for (name, _) in BUILTIN_STRATEGIES {
            let s = Strategy::builtin(name, &registry, &cx)
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, *name);
        }
        assert!(Strategy::builtin("no_such", &registry, &BuildContext::default()).is_none());
    }
}

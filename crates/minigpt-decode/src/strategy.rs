//! Strategy files: a TOML description of a chain, validated against the registry.
//!
//! ```toml
//! description = "Nucleus sampling (Holtzman et al. 2020)"
//! [[processors]]
//! name = "top_p"
//! p = 0.9
//! [selector]
//! name = "multinomial"
//! ```

use std::path::Path;

use crate::pipeline::Pipeline;
use crate::processor::LogitsProcessor;
use crate::registry::{BuildContext, PluginKind, Registry};
use crate::search::SearchStrategy;

/// A strategy file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct StrategyError {
    /// The file (or `<flags>` for a chain built from command-line flags).
    pub source_name: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// One plugin of a chain: its registry name and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// Registry name.
    pub name: String,
    /// Parameters (the table without `name`).
    pub params: toml::Table,
}

impl PluginSpec {
    /// A plugin with parameters given as a TOML table.
    pub fn new(name: &str, params: toml::Table) -> Self {
        Self {
            name: name.to_string(),
            params,
        }
    }
}

/// What ends a chain: a per-token selector, or a whole-sequence search.
#[derive(Debug, Clone, PartialEq)]
pub enum Last {
    /// `[selector]`: one token per row per step.
    Selector(PluginSpec),
    /// `[search]`: beam or contrastive search over whole sequences.
    Search(PluginSpec),
}

/// A validated chain: processors in order, then exactly one selector or search.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// The strategy's name (a file's stem).
    pub name: String,
    /// One line for listings.
    pub description: String,
    /// Processors, in application order.
    pub processors: Vec<PluginSpec>,
    /// The final choice.
    pub last: Last,
}

/// A strategy built for decoding: per-row pipelines, or a search with its processors.
pub enum Decoding {
    /// One pipeline per row.
    Sample(Vec<Pipeline>),
    /// A search and the processors it applies to each hypothesis.
    Search {
        /// The search.
        search: Box<dyn SearchStrategy>,
        /// The chain's processors.
        processors: Vec<Box<dyn LogitsProcessor>>,
    },
}

const TOP_KEYS: &str = "description, processors, selector, search";

impl Strategy {
    /// Reads and validates a strategy file; its stem is the strategy's name.
    pub fn load(
        path: &Path,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Self, StrategyError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| StrategyError {
            source_name: source_name.clone(),
            message: format!("cannot read the strategy file: {e}"),
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| source_name.clone(), |s| s.to_string_lossy().into_owned());
        Self::parse(&name, &source_name, &text, registry, cx)
    }

    /// Parses and validates strategy TOML. `source_name` names it in errors.
    pub fn parse(
        name: &str,
        source_name: &str,
        text: &str,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Self, StrategyError> {
        let err = |message: String| StrategyError {
            source_name: source_name.to_string(),
            message,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(format!("not valid TOML: {}", e.message())))?;
        for key in doc.keys() {
            if !["description", "processors", "selector", "search"].contains(&key.as_str()) {
                return Err(err(format!(
                    "unknown key `{key}`; allowed keys: {TOP_KEYS}"
                )));
            }
        }
        let description = match doc.get("description") {
            None => String::new(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(err("`description` must be a string".into())),
        };
        let mut processors = Vec::new();
        match doc.get("processors") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("processors[{i}]");
                    let spec = plugin_table(item, &at).map_err(&err)?;
                    if registry.kind_of(&spec.name) == Some(PluginKind::Selector) {
                        return Err(err(format!(
                            "{at}: `{}` is a selector; a chain has exactly one selector, in [selector]",
                            spec.name
                        )));
                    }
                    processors.push(spec);
                }
            }
            Some(_) => {
                return Err(err(
                    "`processors` must be an array of tables ([[processors]] with a `name`)".into(),
                ));
            }
        }
        let last = match (doc.get("selector"), doc.get("search")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "both [selector] and [search]: a chain ends in exactly one of them".into(),
                ));
            }
            (None, None) => {
                return Err(err(format!(
                    "no [selector]: a chain needs exactly one, one of {} (or a [search]: {})",
                    registry.known(PluginKind::Selector),
                    registry.known(PluginKind::Search)
                )));
            }
            (Some(toml::Value::Array(_)), _) => {
                return Err(err(
                    "exactly one selector: write a single [selector] table, not [[selector]]"
                        .into(),
                ));
            }
            (_, Some(toml::Value::Array(_))) => {
                return Err(err(
                    "exactly one search: write a single [search] table, not [[search]]".into(),
                ));
            }
            (Some(v), None) => Last::Selector(plugin_table(v, "selector").map_err(&err)?),
            (None, Some(v)) => Last::Search(plugin_table(v, "search").map_err(&err)?),
        };
        let s = Self {
            name: name.to_string(),
            description,
            processors,
            last,
        };
        s.build(registry, cx, 1).map_err(|e| StrategyError {
            source_name: source_name.to_string(),
            ..e
        })?;
        Ok(s)
    }

    fn processors(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Vec<Box<dyn LogitsProcessor>>, StrategyError> {
        self.processors
            .iter()
            .enumerate()
            .map(|(i, p)| {
                registry
                    .processor(&p.name, &p.params, cx)
                    .map_err(|e| self.err(format!("processors[{i}] ({}): {e}", p.name)))
            })
            .collect()
    }

    fn err(&self, message: String) -> StrategyError {
        StrategyError {
            source_name: self.name.clone(),
            message,
        }
    }

    /// A fresh pipeline (one per row: plugins keep per-row state). Search strategies have none.
    pub fn pipeline(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Pipeline, StrategyError> {
        match &self.last {
            Last::Selector(sel) => {
                let procs = self.processors(registry, cx)?;
                let s = registry
                    .selector(&sel.name, &sel.params)
                    .map_err(|e| self.err(format!("selector ({}): {e}", sel.name)))?;
                Ok(Pipeline::new(procs, s))
            }
            Last::Search(s) => Err(self.err(format!(
                "`{}` is a search strategy: it decodes whole sequences, not one token per row",
                s.name
            ))),
        }
    }

    /// `n` fresh pipelines, one per row.
    pub fn pipelines(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
        n: usize,
    ) -> Result<Vec<Pipeline>, StrategyError> {
        (0..n).map(|_| self.pipeline(registry, cx)).collect()
    }

    /// Builds the strategy for `n` rows: pipelines, or the search.
    pub fn build(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
        n: usize,
    ) -> Result<Decoding, StrategyError> {
        match &self.last {
            Last::Selector(_) => Ok(Decoding::Sample(self.pipelines(registry, cx, n)?)),
            Last::Search(s) => {
                let processors = self.processors(registry, cx)?;
                let search = registry
                    .search(&s.name, &s.params)
                    .map_err(|e| self.err(format!("search ({}): {e}", s.name)))?;
                Ok(Decoding::Search { search, processors })
            }
        }
    }

    /// Refuses settings that do not fit a model of `vocab` tokens (token ids beyond it, more
    /// beams or contrastive candidates than tokens), before anything is decoded.
    pub fn check_vocab(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
        vocab: usize,
    ) -> Result<(), StrategyError> {
        let checked = match self.build(registry, cx, 1)? {
            Decoding::Sample(p) => p[0].check_vocab(vocab),
            Decoding::Search { search, processors } => processors
                .iter()
                .map(|p| {
                    p.check_vocab(vocab)
                        .map_err(|e| format!("{}: {e}", p.name()))
                })
                .chain([search
                    .check_vocab(vocab)
                    .map_err(|e| format!("search ({}): {e}", search.name()))])
                .collect::<Result<(), String>>(),
        };
        checked.map_err(|e| self.err(e))
    }

    /// The chain as text: `logits -> top_p(0.9) -> multinomial`.
    pub fn chain(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<String, StrategyError> {
        Ok(match self.build(registry, cx, 1)? {
            Decoding::Sample(p) => p[0].to_string(),
            Decoding::Search { search, processors } => {
                crate::search::chain_text(&processors, search.as_ref())
            }
        })
    }

    /// True for a search strategy (it decodes whole sequences, one prompt at a time).
    pub fn is_search(&self) -> bool {
        matches!(self.last, Last::Search(_))
    }

    /// True when the strategy does not sample (greedy selector or a search), so temperature
    /// does not apply.
    pub fn is_deterministic(&self) -> bool {
        match &self.last {
            Last::Selector(s) => s.name == "greedy",
            Last::Search(_) => true,
        }
    }

    /// The same chain at temperature `t`: the `temperature` processor's value is replaced, or
    /// one is put first when the chain has none.
    pub fn with_temperature(&self, t: f64) -> Self {
        let mut s = self.clone();
        let mut params = toml::Table::new();
        params.insert("t".into(), toml::Value::Float(t));
        match s.processors.iter_mut().find(|p| p.name == "temperature") {
            Some(p) => p.params = params,
            None => s
                .processors
                .insert(0, PluginSpec::new("temperature", params)),
        }
        s
    }
}

/// A `{ name = "...", ...params }` table.
fn plugin_table(v: &toml::Value, at: &str) -> Result<PluginSpec, String> {
    let toml::Value::Table(t) = v else {
        return Err(format!("{at} must be a table with a `name` key"));
    };
    let name = match t.get("name") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("{at}: `name` must be a string")),
        None => return Err(format!("{at} has no `name` key")),
    };
    let mut params = t.clone();
    params.remove("name");
    Ok(PluginSpec { name, params })
}

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
use crate::registry::{BuildContext, PluginKind, Registry};

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

/// A validated chain: processors in order, then the selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// The strategy's name (a file's stem).
    pub name: String,
    /// One line for listings.
    pub description: String,
    /// Processors, in application order.
    pub processors: Vec<PluginSpec>,
    /// The final choice.
    pub selector: PluginSpec,
}

const TOP_KEYS: &str = "description, processors, selector";

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
            if !["description", "processors", "selector"].contains(&key.as_str()) {
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
        let selector = match doc.get("selector") {
            None => {
                return Err(err(format!(
                    "no [selector]: a chain needs exactly one, one of {}",
                    registry.known(PluginKind::Selector)
                )));
            }
            Some(toml::Value::Array(_)) => {
                return Err(err(
                    "exactly one selector: write a single [selector] table, not [[selector]]"
                        .into(),
                ));
            }
            Some(v) => plugin_table(v, "selector").map_err(&err)?,
        };
        let s = Self {
            name: name.to_string(),
            description,
            processors,
            selector,
        };
        s.pipeline(registry, cx).map_err(|e| StrategyError {
            source_name: source_name.to_string(),
            ..e
        })?;
        Ok(s)
    }

    /// A fresh pipeline (one per row: plugins keep per-row state).
    pub fn pipeline(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Pipeline, StrategyError> {
        let err = |message: String| StrategyError {
            source_name: self.name.clone(),
            message,
        };
        let mut procs = Vec::with_capacity(self.processors.len());
        for (i, p) in self.processors.iter().enumerate() {
            let built = registry
                .processor(&p.name, &p.params, cx)
                .map_err(|e| err(format!("processors[{i}] ({}): {e}", p.name)))?;
            procs.push(built);
        }
        let sel = registry
            .selector(&self.selector.name, &self.selector.params)
            .map_err(|e| err(format!("selector ({}): {e}", self.selector.name)))?;
        Ok(Pipeline::new(procs, sel))
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

    /// True when the selector is `greedy` (temperature does not apply).
    pub fn is_greedy(&self) -> bool {
        self.selector.name == "greedy"
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

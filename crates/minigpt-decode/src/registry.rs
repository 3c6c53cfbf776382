//! The plugin registry: an explicit list of built-ins, name → constructor from a TOML table.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::processor::LogitsProcessor;
use crate::search::SearchStrategy;
use crate::selector::TokenSelector;

/// What kind of plugin a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Rewrites logits; any number, in the user's order.
    Processor,
    /// Chooses the token; exactly one, last.
    Selector,
    /// Drives the model over whole sequences (beam search); replaces the selector.
    Search,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Processor => "processor",
            Self::Selector => "selector",
            Self::Search => "search",
        })
    }
}

/// One parameter of a plugin, for `minigpt strategies`.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    /// TOML key.
    pub name: &'static str,
    /// TOML type and allowed range, e.g. `float in (0, 1]`.
    pub ty: &'static str,
    /// Default value, or `None` when the key is required.
    pub default: Option<&'static str>,
}

/// A plugin's name, kind, one-line description and parameters.
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo {
    /// Registry name (the `name` key in a strategy file).
    pub name: &'static str,
    /// Processor or selector.
    pub kind: PluginKind,
    /// One line.
    pub description: &'static str,
    /// How tokens tied at a cut are treated (empty for plugins that cut nothing).
    pub ties: &'static str,
    /// The implementation it is tested against, with every deliberate difference.
    pub reference: &'static str,
    /// Parameters, in documentation order.
    pub params: &'static [ParamInfo],
}

/// Text to token ids, as the model's tokenizer does it.
pub type EncodeFn<'a> = &'a dyn Fn(&str) -> Vec<u32>;

/// What constructors may need beyond their parameters.
#[derive(Clone, Copy, Default)]
pub struct BuildContext<'a> {
    /// Encodes a string to token ids (for `logit_bias` keys given as text).
    pub encode: Option<EncodeFn<'a>>,
}

/// Builds a processor from its TOML table (without the `name` key), or says what is wrong.
pub type ProcessorCtor =
    fn(&toml::Table, &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String>;
/// Builds a selector from its TOML table (without the `name` key), or says what is wrong.
pub type SelectorCtor = fn(&toml::Table) -> Result<Box<dyn TokenSelector>, String>;
/// Builds a search strategy from its TOML table (without the `name` key).
pub type SearchCtor = fn(&toml::Table) -> Result<Box<dyn SearchStrategy>, String>;

#[derive(Clone, Copy)]
enum Ctor {
    Processor(ProcessorCtor),
    Selector(SelectorCtor),
    Search(SearchCtor),
}

/// A registered plugin.
#[derive(Clone, Copy)]
struct Entry {
    info: PluginInfo,
    ctor: Ctor,
}

/// Every plugin a strategy file may name.
#[derive(Clone)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry (see [`Registry::builtin`] for the usual one).
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds a logits processor. A name that is already taken is an error.
    pub fn register_processor(
        &mut self,
        info: PluginInfo,
        ctor: ProcessorCtor,
    ) -> Result<(), String> {
        self.add(info, Ctor::Processor(ctor))
    }

    /// Adds a token selector. A name that is already taken is an error.
    pub fn register_selector(
        &mut self,
        info: PluginInfo,
        ctor: SelectorCtor,
    ) -> Result<(), String> {
        self.add(info, Ctor::Selector(ctor))
    }

    /// Adds a search strategy. A name that is already taken is an error.
    pub fn register_search(&mut self, info: PluginInfo, ctor: SearchCtor) -> Result<(), String> {
        self.add(info, Ctor::Search(ctor))
    }

    fn add(&mut self, info: PluginInfo, ctor: Ctor) -> Result<(), String> {
        if self.get(info.name).is_some() {
            return Err(format!(
                "a plugin named {:?} is already registered",
                info.name
            ));
        }
        let kind = match ctor {
            Ctor::Processor(_) => PluginKind::Processor,
            Ctor::Selector(_) => PluginKind::Selector,
            Ctor::Search(_) => PluginKind::Search,
        };
        self.entries.push(Entry {
            info: PluginInfo { kind, ..info },
            ctor,
        });
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.info.name == name)
    }

    /// Every plugin, in registration order.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    /// Names of the plugins of one kind, comma-separated (for error messages).
    pub fn known(&self, kind: PluginKind) -> String {
        self.entries
            .iter()
            .filter(|e| e.info.kind == kind)
            .map(|e| e.info.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The kind of a registered name.
    pub fn kind_of(&self, name: &str) -> Option<PluginKind> {
        self.get(name).map(|e| e.info.kind)
    }

    /// Builds the processor `name` from `params`.
    pub fn processor(
        &self,
        name: &str,
        params: &toml::Table,
        cx: &BuildContext<'_>,
    ) -> Result<Box<dyn LogitsProcessor>, String> {
        match self.get(name).map(|e| e.ctor) {
            Some(Ctor::Processor(f)) => f(params, cx),
            Some(Ctor::Selector(_)) => Err(format!(
                "{name:?} is a selector, not a processor: put it in [selector]"
            )),
            Some(Ctor::Search(_)) => Err(format!(
                "{name:?} is a search strategy, not a processor: put it in [search]"
            )),
            None => Err(format!(
                "unknown processor {name:?}; known processors: {}",
                self.known(PluginKind::Processor)
            )),
        }
    }

    /// Builds the selector `name` from `params`.
    pub fn selector(
        &self,
        name: &str,
        params: &toml::Table,
    ) -> Result<Box<dyn TokenSelector>, String> {
        match self.get(name).map(|e| e.ctor) {
            Some(Ctor::Selector(f)) => f(params),
            Some(Ctor::Processor(_)) => Err(format!(
                "{name:?} is a processor, not a selector: put it in [[processors]]"
            )),
            Some(Ctor::Search(_)) => Err(format!(
                "{name:?} is a search strategy, not a selector: put it in [search] instead of [selector]"
            )),
            None => Err(format!(
                "unknown selector {name:?}; known selectors: {}",
                self.known(PluginKind::Selector)
            )),
        }
    }

    /// Builds the search strategy `name` from `params`.
    pub fn search(
        &self,
        name: &str,
        params: &toml::Table,
    ) -> Result<Box<dyn SearchStrategy>, String> {
        match self.get(name).map(|e| e.ctor) {
            Some(Ctor::Search(f)) => f(params),
            Some(_) => Err(format!(
                "{name:?} is not a search strategy; known search strategies: {}",
                self.known(PluginKind::Search)
            )),
            None => Err(format!(
                "unknown search strategy {name:?}; known search strategies: {}",
                self.known(PluginKind::Search)
            )),
        }
    }
}

/// Reads a plugin's parameters from its table: unknown keys and wrong types are errors.
pub fn params<T: DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into::<T>()
        .map_err(|e| e.to_string().trim().replace('\n', " "))
}

/// A token named in a strategy file: a decimal id (`"50256"`), or text that the model's
/// tokenizer encodes to exactly one token (`" the"`).
pub fn resolve_token(key: &str, cx: &BuildContext<'_>) -> Result<u32, String> {
    if let Ok(id) = key.parse::<u32>() {
        return Ok(id);
    }
    let enc = cx.encode.ok_or_else(|| {
        format!("token {key:?} is text, but no tokenizer is available: use a token id")
    })?;
    match enc(key)[..] {
        [id] => Ok(id),
        ref ids => Err(format!(
            "token {key:?} encodes to {} tokens {ids:?}; it must be exactly one",
            ids.len()
        )),
    }
}

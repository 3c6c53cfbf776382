//! [`RepoId`]: a Hugging Face model repository, optionally at a revision (`gpt2@main`).

use std::fmt;

/// A model repository on the Hub: `name` or `owner/name`, with an optional `@revision` (a
/// branch, tag or commit; `main` when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// `name` or `owner/name`.
    pub id: String,
    /// A branch, tag or commit, when one was given.
    pub revision: Option<String>,
}

impl RepoId {
    /// Parses `id[@revision]` with the Hub's rules for ids (those of `huggingface_hub`'s
    /// `validate_repo_id`): one or two parts of letters, digits, `-`, `_` and `.`, at most 96
    /// characters, no `--` or `..`, no part starting or ending with `-` or `.`. `None` when
    /// `spec` is not one.
    pub fn parse(spec: &str) -> Option<Self> {
        let (id, revision) = match spec.split_once('@') {
            Some((_, rev))
                if rev.is_empty() || rev.contains(|c: char| c.is_whitespace() || c == '@') =>
            {
                return None;
            }
            Some((id, rev)) => (id, Some(rev.to_string())),
            None => (spec, None),
        };
        let parts: Vec<&str> = id.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
        };
        let ok = (1..=2).contains(&parts.len())
            && parts.iter().all(|p| part_ok(p))
            && id.len() <= 96
            && !id.contains("--")
            && !id.contains("..");
        ok.then(|| Self {
            id: id.to_string(),
            revision,
        })
    }

    /// The revision asked for (`main` when none was).
    pub fn revision_or_main(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }

    /// The repository's own name (`gpt2-medium` for `openai-community/gpt2-medium`), for
    /// tables and folder names.
    pub fn short_name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.revision {
            Some(r) => write!(f, "{}@{r}", self.id),
            None => f.write_str(&self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        let r = RepoId::parse("openai-community/gpt2-medium@v1.0").unwrap();
        assert_eq!(r.id, "openai-community/gpt2-medium");
        assert_eq!(r.revision.as_deref(), Some("v1.0"));
        assert_eq!(r.short_name(), "gpt2-medium");
        assert_eq!(r.to_string(), "openai-community/gpt2-medium@v1.0");
        let g = RepoId::parse("gpt2").unwrap();
        assert_eq!((g.id.as_str(), g.revision_or_main()), ("gpt2", "main"));
        assert!(RepoId::parse("distilbert/distilgpt2").is_some());
    }

    #[test]
    fn refuses_what_the_hub_refuses() {
        for bad in [
            "",
            "a/b/c",
            "./models/x",
            "../gpt2",
            "/abs/path",
            "gpt2@",
            "gpt 2",
            "-gpt2",
            "gpt2.",
            "a--b",
            "a..b",
            "gpt2@a b",
            "models\\gpt2",
        ] {
            assert_eq!(RepoId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(RepoId::parse(&"a".repeat(97)), None);
        assert!(RepoId::parse(&"a".repeat(96)).is_some());
    }
}

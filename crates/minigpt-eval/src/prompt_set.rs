//! [`PromptSet`]: a run's prompts and, when the config gives them, the human continuation of
//! each (the `human` reference row of `summary.csv`). Prompts come from a text file (one per
//! line), a JSONL file (`prompt` and `reference` fields), inline `items`, or positions sampled
//! from the held-out end of a corpus, as Holtzman et al. 2020 take contexts and their true
//! continuations from held-out documents.

use std::path::{Path, PathBuf};

use minigpt_decode::Rng;
use serde::{Deserialize, Serialize};

/// `[prompts]`: a file (one prompt per line, or JSONL with `prompt` and `reference`), the
/// prompts inline, or prompts sampled from the held-out end of a corpus with their true
/// continuations ([`crate::prompt_set::PromptSet`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// One prompt per line (empty lines skipped; `\n` in a line stands for a line break), or,
    /// for a `.jsonl` file, one `{"prompt": …, "reference": …}` object per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Prompts given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// A text to sample prompts and their human continuations from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<PathBuf>,
    /// The share at the corpus' end that positions come from (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heldout_fraction: Option<f64>,
    /// Prompts sampled from the corpus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Characters of each sampled prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_chars: Option<usize>,
    /// Characters of each human continuation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_chars: Option<usize>,
    /// Seeds the sampled positions (default: the experiment's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Prompts {
    /// Exactly one source, and the corpus keys only with a corpus; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let sources = [
            self.file.is_some(),
            self.items.is_some(),
            self.corpus.is_some(),
        ];
        match sources.iter().filter(|&&s| s).count() {
            0 => {
                return Err(
                    "prompts: give `file` (one prompt per line, or JSONL), `items`, or `corpus`"
                        .into(),
                );
            }
            1 => {}
            _ => {
                return Err(
                    "prompts: give one of `file`, `items` and `corpus`, not several".into(),
                );
            }
        }
        let corpus_keys = [
            ("heldout_fraction", self.heldout_fraction.is_some()),
            ("count", self.count.is_some()),
            ("prompt_chars", self.prompt_chars.is_some()),
            ("continuation_chars", self.continuation_chars.is_some()),
            ("seed", self.seed.is_some()),
        ];
        if self.corpus.is_none() {
            if let Some((key, _)) = corpus_keys.iter().find(|(_, set)| *set) {
                return Err(format!("prompts.{key} applies to `corpus` prompts only"));
            }
        } else {
            for key in ["count", "prompt_chars", "continuation_chars"] {
                let set = corpus_keys.iter().any(|(k, s)| *k == key && *s);
                if !set {
                    return Err(format!("prompts.{key} is required with prompts.corpus"));
                }
            }
        }
        Ok(())
    }
}

/// The prompts of a run, in order, and their human continuations when known.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSet {
    /// The prompts.
    pub prompts: Vec<String>,
    /// The true continuation of each prompt (as many as prompts), if the config gives them.
    pub references: Option<Vec<String>>,
}

/// `[prompts]` with `corpus`: where and how to sample prompts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorpusSampling {
    /// The share of the corpus at its end that positions are taken from (the part a model
    /// trained on the rest never saw), in (0, 1].
    pub heldout_fraction: f64,
    /// Prompts to take.
    pub count: usize,
    /// Characters of each prompt.
    pub prompt_chars: usize,
    /// Characters of each human continuation.
    pub continuation_chars: usize,
    /// Seeds the choice of positions.
    pub seed: u64,
}

impl PromptSet {
    /// The prompts `p` names (paths already relative to the config's folder); `seed` is the
    /// experiment's, used when `p.seed` is not given.
    /// Errors name the key or file and what to do.
    pub fn load(p: &Prompts, seed: u64) -> Result<Self, String> {
        let set = if let Some(corpus) = &p.corpus {
            let text = read(corpus, "prompts.corpus")?;
            let sampling = CorpusSampling {
                heldout_fraction: p.heldout_fraction.unwrap_or(0.1),
                count: p.count.unwrap_or(0),
                prompt_chars: p.prompt_chars.unwrap_or(0),
                continuation_chars: p.continuation_chars.unwrap_or(0),
                seed: p.seed.unwrap_or(seed),
            };
            sample_corpus(&text, &sampling)
                .map_err(|m| format!("prompts.corpus {}: {m}", corpus.display()))?
        } else if let Some(file) = &p.file {
            let text = read(file, "prompts.file")?;
            if file.extension().is_some_and(|e| e == "jsonl") {
                from_jsonl(&text).map_err(|m| format!("prompts.file {}: {m}", file.display()))?
            } else {
                Self {
                    prompts: text
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| l.replace("\\n", "\n"))
                        .collect(),
                    references: None,
                }
            }
        } else {
            Self {
                prompts: p.items.clone().unwrap_or_default(),
                references: None,
            }
        };
        if set.prompts.is_empty() {
            return Err("prompts: the prompt list is empty: give at least one prompt".into());
        }
        if let Some(i) = set.prompts.iter().position(|p| p.is_empty()) {
            return Err(format!(
                "prompts: prompt {i} is empty: every prompt needs some text"
            ));
        }
        Ok(set)
    }
}

fn read(path: &Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{key} {}: cannot read it: {e}", path.display()))
}

/// One line of a JSONL prompt file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlPrompt {
    prompt: String,
    #[serde(default)]
    reference: Option<String>,
}

/// Prompts from JSONL lines `{"prompt": …, "reference": …}` (blank lines skipped); the
/// references must be on every line or on none.
fn from_jsonl(text: &str) -> Result<PromptSet, String> {
    let mut prompts = vec![];
    let mut references = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: JsonlPrompt = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}: {e} (each line is {{\"prompt\": \"…\", \"reference\": \"…\"}})",
                i + 1
            )
        })?;
        prompts.push(p.prompt);
        references.push((i + 1, p.reference));
    }
    let given = references.iter().filter(|(_, r)| r.is_some()).count();
    if given > 0 && given < references.len() {
        let (line, _) = references
            .iter()
            .find(|(_, r)| r.is_none())
            .expect("one lacks");
        return Err(format!(
            "line {line} has no \"reference\" while others do: give every prompt its reference, or none"
        ));
    }
    Ok(PromptSet {
        prompts,
        references: (given > 0).then(|| references.into_iter().flat_map(|(_, r)| r).collect()),
    })
}

/// Prompts and their true continuations at `s.count` positions of the held-out end of
/// `text`: positions at the start of a line, chosen in a seeded
/// random order, whose prompt and continuation windows do not overlap; returned in text order.
pub fn sample_corpus(text: &str, s: &CorpusSampling) -> Result<PromptSet, String> {
    if !(s.heldout_fraction > 0.0 && s.heldout_fraction <= 1.0) {
        return Err(format!(
            "heldout_fraction must be in (0, 1] (got {})",
            s.heldout_fraction
        ));
    }
    for (key, v) in [
        ("count", s.count),
        ("prompt_chars", s.prompt_chars),
        ("continuation_chars", s.continuation_chars),
    ] {
        if v == 0 {
            return Err(format!("prompts.{key} must be at least 1"));
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let keep = ((chars.len() as f64) * s.heldout_fraction).round() as usize;
    let start = chars.len() - keep.min(chars.len());
    let span = s.prompt_chars + s.continuation_chars;
    let mut starts: Vec<usize> = (start..chars.len().saturating_sub(span - 1))
        .filter(|&i| i == 0 || chars[i - 1] == '\n')
        .filter(|&i| !chars[i].is_whitespace())
        .collect();
    // A seeded Fisher-Yates shuffle, then the first windows that do not overlap.
    let mut rng = Rng::new(s.seed);
    for i in (1..starts.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        starts.swap(i, j);
    }
    let mut taken: Vec<usize> = vec![];
    for p in starts {
        if taken.len() == s.count {
            break;
        }
        if taken.iter().all(|&q| p + span <= q || q + span <= p) {
            taken.push(p);
        }
    }
    if taken.len() < s.count {
        return Err(format!(
            "its held-out part (the last {} characters) has room for only {} of the {} prompts \
             (non-overlapping, each {} + {} characters from a line start); lower prompts.count \
             or the lengths, or raise prompts.heldout_fraction",
            keep,
            taken.len(),
            s.count,
            s.prompt_chars,
            s.continuation_chars
        ));
    }
    taken.sort_unstable();
    let text_of = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    Ok(PromptSet {
        prompts: taken
            .iter()
            .map(|&p| text_of(p, p + s.prompt_chars))
            .collect(),
        references: Some(
            taken
                .iter()
                .map(|&p| text_of(p + s.prompt_chars, p + span))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(count: usize) -> CorpusSampling {
        CorpusSampling {
            heldout_fraction: 0.5,
            count,
            prompt_chars: 4,
            continuation_chars: 6,
            seed: 7,
        }
    }

    #[test]
    fn corpus_prompts_come_from_held_out_line_starts_with_their_true_continuations() {
        // 20 training lines, then 20 held-out lines of 12 characters each ("Hnn:abcdefg\n").
        let mut text = String::new();
        for i in 0..20 {
            text.push_str(&format!("T{i:02}:trainxx\n"));
        }
        let held = text.chars().count();
        for i in 0..20 {
            text.push_str(&format!("H{i:02}:heldout\n"));
        }
        assert_eq!(text.chars().count(), 2 * held);
        let set = sample_corpus(&text, &sampling(5)).unwrap();
        assert_eq!(set.prompts.len(), 5);
        let refs = set.references.clone().unwrap();
        for (p, r) in set.prompts.iter().zip(&refs) {
            assert!(p.starts_with('H') && p.ends_with(':'), "{p:?}");
            assert_eq!(r, "heldou", "the 6 characters after the prompt");
            let at = text.find(&format!("{p}{r}")).unwrap();
            assert!(at >= held, "from the held-out half");
        }
        let mut sorted = set.prompts.clone();
        sorted.sort();
        assert_eq!(set.prompts, sorted, "in text order");
        assert_eq!(sample_corpus(&text, &sampling(5)).unwrap(), set, "seeded");
        let other = CorpusSampling {
            seed: 8,
            ..sampling(5)
        };
        assert_ne!(sample_corpus(&text, &other).unwrap(), set);
        // 20 held-out lines, windows of 10 characters inside 12-character lines: all 20 fit.
        assert_eq!(
            sample_corpus(&text, &sampling(20)).unwrap().prompts.len(),
            20
        );
        let err = sample_corpus(&text, &sampling(21)).unwrap_err();
        assert!(err.contains("room for only 20 of the 21 prompts"), "{err}");
        let bad = CorpusSampling {
            heldout_fraction: 0.0,
            ..sampling(1)
        };
        assert!(
            sample_corpus(&text, &bad)
                .unwrap_err()
                .contains("heldout_fraction")
        );
    }

    #[test]
    fn jsonl_prompts_carry_references_on_every_line_or_none() {
        let set = from_jsonl(
            "{\"prompt\": \"To be\", \"reference\": \" or not\"}\n\n{\"prompt\": \"A\", \"reference\": \"B\"}\n",
        )
        .unwrap();
        assert_eq!(set.prompts, ["To be", "A"]);
        assert_eq!(set.references.unwrap(), [" or not", "B"]);
        let none = from_jsonl("{\"prompt\": \"x\"}\n{\"prompt\": \"y\"}").unwrap();
        assert_eq!(none.references, None);
        let err = from_jsonl("{\"prompt\": \"x\", \"reference\": \"r\"}\n{\"prompt\": \"y\"}")
            .unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = from_jsonl("{\"prompt\": \"x\", \"text\": \"r\"}").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}

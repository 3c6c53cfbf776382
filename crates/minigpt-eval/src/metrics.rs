//! Metrics of generated text (defined in the README's "Experiments"). Words are the
//! continuation split on Unicode whitespace; n-grams are of consecutive words. Every function
//! is small, pure and tested on hand-counted text; `scripts/metrics_reference.py` recomputes
//! the pooled ones independently.

use std::collections::{HashMap, HashSet};

/// The words of a text: split on Unicode whitespace.
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// `(unique, total)` n-grams of one word sequence (every window of `n` consecutive words).
pub fn ngram_counts(words: &[&str], n: usize) -> (usize, usize) {
    assert!(n >= 1, "n-grams need n >= 1");
    if words.len() < n {
        return (0, 0);
    }
    let unique: HashSet<&[&str]> = words.windows(n).collect();
    (unique.len(), words.len() + 1 - n)
}

/// rep-n: `100 · (1 − unique n-grams / n-grams)`; `None` without any n-gram.
pub fn rep_n(words: &[&str], n: usize) -> Option<f64> {
    let (u, t) = ngram_counts(words, n);
    (t > 0).then(|| 100.0 * (1.0 - u as f64 / t as f64))
}

/// Diversity: `∏_{n=2..4} (1 − rep_n / 100)`; `None` when rep-4 is (fewer than 4 words).
pub fn diversity(words: &[&str]) -> Option<f64> {
    (2..=4).try_fold(1.0, |acc, n| {
        rep_n(words, n).map(|r| acc * (1.0 - r / 100.0))
    })
}

/// distinct-n: `unique n-grams / n-grams`; `None` without any n-gram.
pub fn distinct_n(words: &[&str], n: usize) -> Option<f64> {
    let (u, t) = ngram_counts(words, n);
    (t > 0).then(|| u as f64 / t as f64)
}

/// Share of the continuation's words that already occur among the `window` words before them
/// (the prompt's words count as before); `None` for an empty continuation.
pub fn repetition_rate(prompt: &[&str], continuation: &[&str], window: usize) -> Option<f64> {
    if continuation.is_empty() {
        return None;
    }
    let all: Vec<&str> = prompt.iter().chain(continuation).copied().collect();
    let start = prompt.len();
    let repeated = (start..all.len())
        .filter(|&i| all[i.saturating_sub(window)..i].contains(&all[i]))
        .count();
    Some(repeated as f64 / continuation.len() as f64)
}

/// The fewest characters a loop must span to count (a short run like "!!!" or "ha ha ha" does
/// not).
pub const LOOP_MIN_CHARS: usize = 24;

/// True when the text ends in a loop (Holtzman et al. 2020's degenerate repetition): its end
/// is one block of characters repeated at least 3 times in a row, spanning at least
/// [`LOOP_MIN_CHARS`] characters. The last copy may be cut short ("the cat the cat the cat
/// the ca" ends in a loop), so texts cut off mid-word by `max_new_tokens` are judged fairly.
pub fn ends_in_loop(text: &str) -> bool {
    let s: Vec<char> = text.chars().collect();
    let n = s.len();
    // For a period p, the periodic suffix is the longest m with s[i] = s[i − p] for the last m
    // positions; the run then spans m + p characters, (m + p) / p copies of the block.
    (1..=n / 3).any(|p| {
        let m = (p..n).rev().take_while(|&i| s[i] == s[i - p]).count();
        let span = m + p;
        span >= 3 * p && span >= LOOP_MIN_CHARS
    })
}

/// The longest phrase (in tokens) [`holtzman_repetition`] looks for.
pub const HOLTZMAN_MAX_N: usize = 90;

/// How a text ends in repetition, as [`holtzman_repetition`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repetition {
    /// Tokens in the repeated phrase.
    pub phrase_len: usize,
    /// Copies of it, back to back, at the end of the text.
    pub times: usize,
}

/// Holtzman et al. 2020's repetition check, exactly as their reference code (`degen`,
/// `metrics/repetition.py`, lines 39-61): over the generated token ids with a final `eos`
/// removed, for n = 1..=90 count how many copies of the last n tokens end the text back to
/// back; take the n with the most copies (the smallest n on ties); the text repeats when that
/// count is above 1 and n ≥ 3 or the count is above 50. `None` when it does not repeat (and for
/// no tokens, where degen's code would fail).
///
/// Unlike [`ends_in_loop`] (characters; at least 3 copies spanning [`LOOP_MIN_CHARS`]; the
/// last copy may be cut short), this counts whole token phrases: two copies of a 3-token phrase
/// already repeat, and a cut-off last copy ends the run.
pub fn holtzman_repetition(tokens: &[u32], eos: Option<u32>) -> Option<Repetition> {
    let seq = match tokens.split_last() {
        None => return None,
        Some((last, rest)) if Some(*last) == eos => rest,
        Some(_) => tokens,
    };
    let len = seq.len();
    // Copies of the last n tokens at the end (1 when fewer than 2n tokens).
    let copies = |n: usize| {
        let mut times = 1;
        while n * (times + 1) <= len
            && seq[len - n * (times + 1)..len - n * times] == seq[len - n..]
        {
            times += 1;
        }
        times
    };
    let mut best = Repetition {
        phrase_len: 1,
        times: copies(1),
    };
    for n in 2..=HOLTZMAN_MAX_N {
        let times = copies(n);
        if times > best.times {
            best = Repetition {
                phrase_len: n,
                times,
            };
        }
    }
    (best.times > 1 && (best.phrase_len >= 3 || best.times > 50)).then_some(best)
}

/// Zipf coefficient of a set of texts: minus the least-squares slope of log frequency against
/// log rank over all word types (rank 1 = most frequent); `None` with fewer than 2 types.
pub fn zipf_coefficient(texts: &[Vec<&str>]) -> Option<f64> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in texts.iter().flatten() {
        *counts.entry(w).or_default() += 1;
    }
    zipf_of_counts(counts.into_values().collect())
}

/// The Zipf coefficient of word types with these frequencies (any order, no zeros); `None`
/// with fewer than 2 types.
pub fn zipf_of_counts(mut freqs: Vec<usize>) -> Option<f64> {
    if freqs.len() < 2 {
        return None;
    }
    freqs.sort_unstable_by(|a, b| b.cmp(a));
    let pts: Vec<(f64, f64)> = freqs
        .iter()
        .enumerate()
        .map(|(r, &f)| (((r + 1) as f64).ln(), (f as f64).ln()))
        .collect();
    let k = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    Some(-sxy / sxx)
}

fn ngram_multiset<'a>(words: &'a [&'a str], n: usize) -> HashMap<&'a [&'a str], usize> {
    let mut m = HashMap::new();
    if words.len() >= n {
        for g in words.windows(n) {
            *m.entry(g).or_default() += 1;
        }
    }
    m
}

/// Sentence BLEU-4 of `hyp` against `refs`, exactly as NLTK's `sentence_bleu` with uniform
/// weights and `SmoothingFunction().method1` (Texygen's Self-BLEU): clipped n-gram precisions,
/// a zero count replaced by ε = 0.1 over the hypothesis' n-gram count (at least 1), 0 when no
/// unigram matches, brevity penalty against the reference length closest to the hypothesis'
/// (the shorter on a tie).
pub fn bleu4(hyp: &[&str], refs: &[&[&str]]) -> f64 {
    let refs: Vec<Grams> = refs.iter().map(|r| Grams::of(r)).collect();
    Grams::of(hyp).bleu4(refs.iter())
}

/// A text's 1- to 4-gram counts, built once per text: Self-BLEU scores every text against
/// every other, and rebuilding the references' counts per pair made it the slowest part of a
/// 200-prompt summary (half its time in hashing, `perf record`).
struct Grams<'a> {
    counts: [HashMap<&'a [&'a str], usize>; 4],
    len: usize,
}

impl<'a> Grams<'a> {
    fn of(words: &'a [&'a str]) -> Self {
        Self {
            counts: [1, 2, 3, 4].map(|n| ngram_multiset(words, n)),
            len: words.len(),
        }
    }

    /// [`bleu4`] of this text against `refs`.
    fn bleu4<'r>(&self, refs: impl Iterator<Item = &'r Grams<'a>> + Clone) -> f64
    where
        'a: 'r,
    {
        const EPS: f64 = 0.1;
        let mut log_sum = 0.0;
        for (n, counts) in self.counts.iter().enumerate() {
            // Clipping needs the references' largest count of this text's n-grams only.
            let clipped: usize = counts
                .iter()
                .map(|(g, &c)| {
                    let max_ref = refs
                        .clone()
                        .map(|r| r.counts[n].get(g).copied().unwrap_or(0))
                        .max()
                        .unwrap_or(0);
                    c.min(max_ref)
                })
                .sum();
            let denom = counts.values().sum::<usize>().max(1) as f64;
            if n == 0 && clipped == 0 {
                return 0.0;
            }
            let p = if clipped == 0 {
                EPS / denom
            } else {
                clipped as f64 / denom
            };
            log_sum += 0.25 * p.ln();
        }
        let c = self.len;
        let r = refs
            .map(|r| r.len)
            .min_by_key(|&len| (len.abs_diff(c), len))
            .unwrap_or(0);
        let bp = if c > r {
            1.0
        } else if c == 0 {
            0.0
        } else {
            (1.0 - r as f64 / c as f64).exp()
        };
        bp * log_sum.exp()
    }
}

/// Self-BLEU-4 of a group of texts (Zhu et al. 2018): the mean over texts of [`bleu4`] of each
/// against all the others; `None` for fewer than 2 texts.
pub fn self_bleu4(texts: &[Vec<&str>]) -> Option<f64> {
    if texts.len() < 2 {
        return None;
    }
    let grams: Vec<Grams> = texts.iter().map(|t| Grams::of(t)).collect();
    let total: f64 = (0..texts.len())
        .map(|i| {
            let refs = grams.iter().enumerate().filter(move |&(j, _)| j != i);
            grams[i].bleu4(refs.map(|(_, g)| g))
        })
        .sum();
    Some(total / texts.len() as f64)
}

/// The most texts of a cell that Self-BLEU across prompts compares (each against all the
/// others of other prompts: the cost grows with their square).
pub const SELF_BLEU_ACROSS_TEXTS: usize = 300;

/// Self-BLEU-4 across prompts (Holtzman et al. 2020, Texygen: each generation against the
/// generations for other contexts): the mean over texts of [`bleu4`] of `texts[i]` against
/// every text whose `prompt_of` differs; texts with no such text are left out, and `None`
/// when none is left. Copies of a text for one prompt (a deterministic strategy's samples)
/// change nothing: they are never each other's references.
pub fn self_bleu4_across(texts: &[Vec<&str>], prompt_of: &[usize]) -> Option<f64> {
    assert_eq!(texts.len(), prompt_of.len(), "one prompt per text");
    let grams: Vec<Grams> = texts.iter().map(|t| Grams::of(t)).collect();
    let scores: Vec<f64> = (0..texts.len())
        .filter_map(|i| {
            let refs = grams
                .iter()
                .zip(prompt_of)
                .filter(move |&(_, &p)| p != prompt_of[i])
                .map(|(g, _)| g);
            refs.clone().next().is_some().then(|| grams[i].bleu4(refs))
        })
        .collect();
    (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
}

/// Pooled n-gram metrics of a set of texts, as SimCTG's `measure_repetition_and_diversity`
/// pools them: unique and total n-grams are counted per text and summed over the texts
/// before the ratio (so an n-gram repeated across texts is not a repetition). Unlike SimCTG's
/// code, every n-gram of a text counts (its loop drops each text's last one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pooled {
    /// rep-2, rep-3, rep-4 (percent).
    pub rep: [Option<f64>; 3],
    /// `∏ (1 − rep_n / 100)`.
    pub diversity: Option<f64>,
    /// distinct-1 and distinct-2: unique n-grams over the whole set (Li et al. 2016) / n-grams.
    pub distinct: [Option<f64>; 2],
}

/// See [`Pooled`].
pub fn pooled(texts: &[Vec<&str>]) -> Pooled {
    let rep = [2, 3, 4].map(|n| {
        let (u, t) = texts
            .iter()
            .map(|w| ngram_counts(w, n))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        (t > 0).then(|| 100.0 * (1.0 - u as f64 / t as f64))
    });
    let diversity = rep
        .iter()
        .try_fold(1.0, |acc, r| r.map(|r| acc * (1.0 - r / 100.0)));
    let distinct = [1, 2].map(|n| {
        let mut set: HashSet<&[&str]> = HashSet::new();
        let mut total = 0;
        for w in texts {
            if w.len() >= n {
                set.extend(w.windows(n));
                total += w.len() + 1 - n;
            }
        }
        (total > 0).then(|| set.len() as f64 / total as f64)
    });
    Pooled {
        rep,
        diversity,
        distinct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn words_split_on_unicode_whitespace() {
        assert_eq!(
            words(" a\tb\u{3000}c\n\nd\u{a0}e "),
            vec!["a", "b", "c", "d", "e"]
        );
        assert!(words("   ").is_empty());
    }

    #[test]
    fn rep_and_distinct_by_hand() {
        // "a b a b a": bigrams ab ba ab ba (2 unique of 4), trigrams aba bab aba (2 of 3),
        // 4-grams abab baba (2 of 2), unigrams a b (2 of 5).
        let w = words("a b a b a");
        close(rep_n(&w, 2).unwrap(), 50.0);
        close(rep_n(&w, 3).unwrap(), 100.0 / 3.0);
        close(rep_n(&w, 4).unwrap(), 0.0);
        close(diversity(&w).unwrap(), 0.5 * (2.0 / 3.0) * 1.0);
        close(distinct_n(&w, 1).unwrap(), 0.4);
        close(distinct_n(&w, 2).unwrap(), 0.5);
        // Too short for the n-gram: empty, not zero.
        let short = words("to be");
        assert_eq!(rep_n(&short, 3), None);
        assert_eq!(diversity(&short), None);
        close(rep_n(&short, 2).unwrap(), 0.0);
        assert_eq!(distinct_n(&[], 1), None);
    }

    #[test]
    fn repetition_rate_looks_back_32_words_including_the_prompt() {
        // Continuation "the cat the the": "the" (in the prompt), "cat" (no), "the" (yes),
        // "the" (yes) → 3 of 4.
        let prompt = words("look at the");
        let cont = words("the cat the the");
        close(repetition_rate(&prompt, &cont, 32).unwrap(), 0.75);
        let cont = words("cat sat the");
        close(repetition_rate(&prompt, &cont, 32).unwrap(), 1.0 / 3.0);
        // Window: with 2 words of look-back, "the" at distance 3 is forgotten.
        close(
            repetition_rate(&words("the x"), &words("y the"), 2).unwrap(),
            0.0,
        );
        close(
            repetition_rate(&words("the x"), &words("y the"), 3).unwrap(),
            0.5,
        );
        assert_eq!(repetition_rate(&prompt, &[], 32), None);
    }

    #[test]
    fn loops_at_the_end() {
        assert!(ends_in_loop(
            "Once upon a time the cat the cat the cat the cat"
        ));
        // A cut-off last copy still counts.
        assert!(ends_in_loop(
            "x: I am the king. I am the king. I am the king. I am th"
        ));
        // Three copies of a 5-character block span only 15 characters.
        assert!(!ends_in_loop("intro: ha ha ha ha ha "));
        // Two copies are not a loop, nor is a repetition that stops before the end.
        assert!(!ends_in_loop("I am the king of it. I am the king of it. "));
        assert!(!ends_in_loop(
            "the cat the cat the cat the cat the cat and then the dog ran away"
        ));
        assert!(ends_in_loop(&"!".repeat(24)));
        assert!(!ends_in_loop(&"!".repeat(23)));
        assert!(!ends_in_loop(""));
    }

    #[test]
    fn zipf_of_an_exact_power_law() {
        // Frequencies 12, 6, 4, 3 = 12 / rank: slope −1.
        let text = ["a"; 12]
            .iter()
            .chain(&["b"; 6])
            .chain(&["c"; 4])
            .chain(&["d"; 3])
            .copied()
            .collect::<Vec<_>>();
        close(zipf_coefficient(&[text]).unwrap(), 1.0);
        // 8, 2 over ranks 1, 2: slope = ln(2/8) / ln 2 = −2.
        let (a, b) = (vec!["x"; 8], vec!["y"; 2]);
        close(zipf_coefficient(&[a, b]).unwrap(), 2.0);
        assert_eq!(zipf_coefficient(&[vec!["z"; 5]]), None);
    }

    #[test]
    fn bleu_by_hand() {
        let hyp = words("the cat sat on the mat");
        // Identical reference: every precision 1, no brevity penalty.
        close(bleu4(&hyp, &[&hyp]), 1.0);
        // No shared word: 0.
        close(bleu4(&hyp, &[&words("a dog ran")]), 0.0);
        // Reference "the cat sat on a mat": unigrams 5/6 (the hypothesis' two "the" are
        // clipped to the reference's one), bigrams: the-cat cat-sat sat-on match (3/5),
        // trigrams the-cat-sat cat-sat-on (2/4), 4-grams the-cat-sat-on (1/3); equal lengths.
        let r = words("the cat sat on a mat");
        let want =
            ((5.0f64 / 6.0).ln() + (0.6f64).ln() + (0.5f64).ln() + (1.0f64 / 3.0).ln()) / 4.0;
        close(bleu4(&hyp, &[&r]), want.exp());
        // A zero 4-gram count is smoothed to 0.1 / (number of hypothesis 4-grams), and a
        // shorter hypothesis pays exp(1 − r/c): hyp "the cat sat x" (4 words) vs the 6-word ref.
        let h2 = words("the cat sat x");
        let p = [3.0 / 4.0, 2.0 / 3.0, 1.0 / 2.0, 0.1 / 1.0];
        let want = p.iter().map(|x: &f64| x.ln()).sum::<f64>() / 4.0;
        close(bleu4(&h2, &[&r]), (1.0 - 6.0 / 4.0f64).exp() * want.exp());
        // The closest reference length decides the penalty (the shorter on a tie).
        let (r5, r3) = (words("the cat sat y z"), words("the cat sat"));
        let with_both = bleu4(&h2, &[&r5, &r3]);
        let p = [3.0 / 4.0, 2.0 / 3.0, 1.0 / 2.0, 0.1 / 1.0];
        let want = p.iter().map(|x: &f64| x.ln()).sum::<f64>() / 4.0;
        close(with_both, want.exp()); // c = 4 > r = 3: no penalty
    }

    #[test]
    fn self_bleu_of_identical_and_disjoint_texts() {
        let t = words("to be or not to be");
        close(self_bleu4(&[t.clone(), t.clone(), t.clone()]).unwrap(), 1.0);
        let u = words("all the world is a stage");
        close(self_bleu4(&[t.clone(), u]).unwrap(), 0.0);
        assert_eq!(self_bleu4(&[t]), None);
    }

    #[test]
    fn pooling_sums_counts_before_the_ratio() {
        // Text 1 "a b a b" bigrams ab ba ab: 2 unique of 3; text 2 "a b": 1 of 1. Pooled rep-2
        // = 100 (1 − 3/4) = 25 (an average of per-text values would give 16.7); the shared
        // bigram "a b" across texts is no repetition. Trigrams: 2 of 2 and none.
        let texts = vec![words("a b a b"), words("a b")];
        let p = pooled(&texts);
        close(p.rep[0].unwrap(), 25.0);
        close(p.rep[1].unwrap(), 0.0);
        close(p.rep[2].unwrap(), 0.0);
        close(p.diversity.unwrap(), 0.75);
        // distinct over the whole set: unigrams {a, b} of 6, bigrams {ab, ba} of 4.
        close(p.distinct[0].unwrap(), 2.0 / 6.0);
        close(p.distinct[1].unwrap(), 0.5);
        let none = pooled(&[words("x")]);
        assert_eq!(none.rep, [None, None, None]);
        assert_eq!(none.diversity, None);
    }
}

#!/usr/bin/env python3
"""Independent Python implementation of minigpt's text metrics (defined in the README's "Experiments"), run on the
committed texts in tests/fixtures/metrics/texts.json; writes tests/fixtures/metrics/reference.json,
which a Rust test (crates/minigpt-eval/tests/metrics_reference.rs) compares with minigpt's values
(<= 1e-9). Not part of CI.

    /tmp/hfvenv/bin/pip install nltk numpy
    /tmp/hfvenv/bin/python scripts/metrics_reference.py

Self-BLEU (within a group, and across prompts: texts 2k and 2k + 1 stand for prompt k) uses NLTK's sentence_bleu (uniform 4-gram weights, SmoothingFunction().method1, as
Texygen); Zipf uses numpy.polyfit; rep-n / distinct-n are written out from their definitions.
"""
import json
import os
from collections import Counter

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "metrics")


def ngrams(words, n):
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def rep(words, n):
    g = ngrams(words, n)
    return None if not g else 100.0 * (1.0 - len(set(g)) / len(g))


def distinct(words, n):
    g = ngrams(words, n)
    return None if not g else len(set(g)) / len(g)


def pooled(texts):
    out = {}
    for n in (2, 3, 4):
        uniq = sum(len(set(ngrams(w, n))) for w in texts)
        total = sum(len(ngrams(w, n)) for w in texts)
        out[f"rep_{n}"] = None if total == 0 else 100.0 * (1.0 - uniq / total)
    reps = [out[f"rep_{n}"] for n in (2, 3, 4)]
    out["diversity"] = None if None in reps else float(np.prod([1.0 - r / 100.0 for r in reps]))
    for n in (1, 2):
        allg = [g for w in texts for g in ngrams(w, n)]
        out[f"distinct_{n}"] = None if not allg else len(set(allg)) / len(allg)
    return out


def self_bleu(texts):
    if len(texts) < 2:
        return None
    smooth = SmoothingFunction().method1
    scores = [sentence_bleu([t for j, t in enumerate(texts) if j != i], h, weights=(0.25,) * 4,
                            smoothing_function=smooth) for i, h in enumerate(texts)]
    return float(np.mean(scores))


def self_bleu_across(texts, prompt_of):
    """Each text against the texts of the other prompts (Holtzman et al. 2020's Self-BLEU:
    generations for different contexts), averaged; None when no text has such a reference."""
    smooth = SmoothingFunction().method1
    scores = []
    for i, h in enumerate(texts):
        refs = [t for j, t in enumerate(texts) if prompt_of[j] != prompt_of[i]]
        if refs:
            scores.append(sentence_bleu(refs, h, weights=(0.25,) * 4, smoothing_function=smooth))
    return float(np.mean(scores)) if scores else None


def zipf(texts):
    counts = Counter(w for t in texts for w in t)
    if len(counts) < 2:
        return None
    freqs = np.array(sorted(counts.values(), reverse=True), dtype=np.float64)
    ranks = np.arange(1, len(freqs) + 1, dtype=np.float64)
    slope, _ = np.polyfit(np.log(ranks), np.log(freqs), 1)
    return float(-slope)


groups = json.load(open(os.path.join(FIX, "texts.json"), encoding="utf-8"))["groups"]
result = []
for g in groups:
    words = [t.split() for t in g]  # str.split(): Unicode whitespace, like Rust's split_whitespace
    result.append({
        "rows": [{"rep_2": rep(w, 2), "rep_3": rep(w, 3), "rep_4": rep(w, 4),
                  "distinct_1": distinct(w, 1), "distinct_2": distinct(w, 2)} for w in words],
        "pooled": pooled(words),
        "self_bleu4": self_bleu(words),
        # Texts 2k and 2k + 1 stand for two samples of prompt k.
        "self_bleu4_across": self_bleu_across(words, [i // 2 for i in range(len(words))]),
        "zipf": zipf(words),
    })
with open(os.path.join(FIX, "reference.json"), "w") as f:
    json.dump({"groups": result}, f, indent=1)
print(json.dumps([{k: r[k] for k in ("self_bleu4", "zipf")} for r in result]))

#!/usr/bin/env python3
"""Reference fixtures for minigpt-decode's logits processors and the Mirostat-2 truncation.

Run by a developer, never by CI (CI only reads the JSON this writes):

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers numpy
    /tmp/hfvenv/bin/python scripts/make_decoding_fixtures.py

The llama.cpp ports below follow llama.cpp as vendored by llama-cpp-python 0.3.36
(vendor/llama.cpp/src/llama-sampler.cpp); the source is only needed to read them, not to run this.

Writes tests/fixtures/decoding/processors.json: random float32 logits rows (numpy default_rng with
fixed seeds, V = 7, 1000 and 50257, plus one V = 4 row; kinds normal / peaked / tied / masked) and,
for each case, the output the REFERENCE implementation gives for one of 16 processors:

  * transformers (transformers.generation.logits_process) for temperature, top_k, top_p, min_p,
    typical_p, epsilon, eta, repetition_penalty, no_repeat_ngram, logit_bias (SequenceBias with
    single-token sequences) and min_new_tokens;
  * numpy ports of llama.cpp for top_n_sigma, xtc, dry, frequency_penalty and presence_penalty;

and, under "mirostat", the Mirostat-2 truncation (kept tokens, renormalised probabilities, one
chosen token and the updated mu) from a port of llama_sampler_mirostat_v2_apply.

Every reference runs in float64 on the exact float64 image of the float32 row; outputs are
rounded to float32 for storage. Random float parameters are drawn on a 2^-16 grid (logit biases on
a 1/32 grid), so they are exact in float32 and in float64 (transformers keeps SequenceBias biases
in float32; llama.cpp keeps its parameters in float); a few hand-made cases use the brief's round
values (0.8, 0.6, 0.2). Random parameters that would put a decision within 1e-9 of its threshold
are redrawn, so the fixture tests definitions, not rounding. "expected" is always the reference's
own output, also where it has no finite entry ("compare": "keeps_max"). The script is
deterministic (fixed seeds, one torch thread): two runs give byte-identical JSON.
"""
import base64
import json
import math
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    MinNewTokensLengthLogitsProcessor,
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "decoding", "processors.json")
SEED = 20250611
NEG_INF = -math.inf
MARGIN = 1e-9  # decisions closer than this to their threshold are redrawn

SRC = "llama-sampler.cpp"
LINES = {
    "softmax": "293-319",
    "xtc": "2344-2375",
    "mirostat_v2": "2573-2599",
    "penalties": "2950-2980",
    "top_n_sigma": "3237-3274",
    "dry": "3386-3591",
    "dry_testing": "3690-3716",
}

PROCESSORS = [
    "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta", "repetition_penalty",
    "no_repeat_ngram", "logit_bias", "min_new_tokens", "top_n_sigma", "xtc", "dry",
    "frequency_penalty", "presence_penalty",
]

REFERENCE = {
    "temperature": "transformers TemperatureLogitsWarper",
    "top_k": "transformers TopKLogitsWarper",
    "top_p": "transformers TopPLogitsWarper",
    "min_p": "transformers MinPLogitsWarper",
    "typical_p": "transformers TypicalLogitsWarper",
    "epsilon": "transformers EpsilonLogitsWarper",
    "eta": "transformers EtaLogitsWarper (epsilon tensor built in float64)",
    "repetition_penalty": "transformers RepetitionPenaltyLogitsProcessor (on the last `window` tokens; 0 = all, prompt included)",
    "no_repeat_ngram": "transformers NoRepeatNGramLogitsProcessor (all tokens, prompt included)",
    "logit_bias": "transformers SequenceBiasLogitsProcessor (single-token sequences)",
    "min_new_tokens": "transformers MinNewTokensLengthLogitsProcessor",
    "top_n_sigma": f"llama.cpp llama_sampler_top_n_sigma_apply ({SRC} lines {LINES['top_n_sigma']})",
    "xtc": f"llama.cpp llama_sample_xtc_apply ({SRC} lines {LINES['xtc']}), random draw removed",
    "dry": f"llama.cpp llama_sampler_dry_apply ({SRC} lines {LINES['dry']}), single-token breakers",
    "frequency_penalty": f"llama.cpp llama_sampler_penalties_apply ({SRC} lines {LINES['penalties']}), penalty_repeat=1, generated tokens only",
    "presence_penalty": f"llama.cpp llama_sampler_penalties_apply ({SRC} lines {LINES['penalties']}), penalty_repeat=1, generated tokens only",
}


class Redraw(Exception):
    """The drawn parameters put a decision too close to its threshold (or overflow float32)."""


# --------------------------------------------------------------------------------------------
# helpers

def q16(x):
    """Rounds to the 2^-16 grid: exact in float32 (for |x| < 256) and with a finite decimal form."""
    return round(float(x) * 65536.0) / 65536.0


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


def b64_f32(a):
    return b64(np.asarray(a, dtype="<f4").tobytes())


def softmax64(x):
    """Softmax over a float64 row; -inf entries get exactly 0."""
    m = np.max(x)
    e = np.exp(x - m)
    return e / e.sum()


def f32_exact(x):
    return float(np.float32(x)) == float(x)


@contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def hf_call(proc, x64, ids):
    input_ids = torch.tensor([list(ids)], dtype=torch.long).reshape(1, len(ids))
    scores = torch.from_numpy(x64.copy()).reshape(1, -1)
    assert scores.dtype == torch.float64
    out = proc(input_ids, scores)
    assert out.dtype == torch.float64, out.dtype
    return out[0].numpy().astype(np.float64).copy()


# --------------------------------------------------------------------------------------------
# numpy ports of llama.cpp (float64). `cur_p` is the whole row (token id = index); llama.cpp's
# arrays usually do not hold masked tokens, so where it matters (xtc, mirostat) the ports only
# look at the finite entries.

def llama_softmax_sorted(ids, logits):
    """follows llama-sampler.cpp lines 293-319, llama_sampler_softmax_impl (do_sort = true):
    sort by logit descending (stable here: lower id first among ties), p = exp(l - max) / sum."""
    order = np.argsort(-logits[ids], kind="stable")
    ids = ids[order]
    lg = logits[ids]
    max_l = lg[0]
    p = np.exp(lg - max_l)
    cum_sum = p.sum()
    return ids, p / cum_sum


def llama_top_n_sigma(logits, n):
    """follows llama-sampler.cpp lines 3237-3274, llama_sampler_top_n_sigma_apply:
    mean and population std over the logits that are not -inf, mask logit < max - n*std."""
    out = logits.copy()
    if n <= 0.0 or out.size <= 1:
        return out
    # find max logit and calculate mean
    mx = out[0]
    logits_sum = 0.0
    valid_count = 0
    for i in range(out.size):
        if out[i] != NEG_INF:
            mx = max(mx, out[i])
            logits_sum += out[i]
            valid_count += 1
    mean = logits_sum / valid_count if valid_count > 0 else 0.0
    # calculate standard deviation
    acc = 0.0
    for i in range(out.size):
        if out[i] != NEG_INF:
            acc += (out[i] - mean) ** 2
    std = math.sqrt(acc / valid_count) if valid_count > 0 else 0.0
    # apply mask
    for i in range(out.size):
        if out[i] < mx - (n * std):
            out[i] = NEG_INF
    return out


def llama_xtc(logits, threshold, probability, min_keep=1):
    """follows llama-sampler.cpp lines 2344-2375, llama_sample_xtc_apply, with the random draw
    removed: probability <= 0 never acts, any other probability (the fixture uses 1.0) always
    acts. cur_p holds the finite tokens only (p = 0 tokens never count as above the threshold).
    Sorting is stable by id among ties, so of a tied least-likely group the highest id survives."""
    out = logits.copy()
    ids = np.nonzero(np.isfinite(logits))[0]
    if probability <= 0.0 or threshold > 0.5 or ids.size < 2:
        return out
    # (std::uniform_real_distribution draw and `chance > probability` test removed)
    ids, p = llama_softmax_sorted(ids, logits)
    pos_last = 0
    for i in range(ids.size):
        if p[i] >= threshold:
            pos_last = i
        else:
            break
    if ids.size - pos_last >= min_keep and pos_last > 0:
        # cur_p->data += pos_last: the pos_last most likely tokens are dropped
        out[ids[:pos_last]] = NEG_INF
    return out


def llama_penalties(logits, last_tokens, penalty_repeat, penalty_freq, penalty_present):
    """follows llama-sampler.cpp lines 2950-2980, llama_sampler_penalties_apply (token_count is
    built from `last_tokens` as llama_sampler_penalties_accept, lines 2919-2948, does):
    repeat penalty (multiply if logit <= 0, else divide), then
    logit -= count * penalty_freq + (count > 0) * penalty_present."""
    out = logits.copy()
    if penalty_repeat == 1.0 and penalty_freq == 0.0 and penalty_present == 0.0:
        return out  # is_disabled()
    token_count = {}
    for t in last_tokens:
        token_count[t] = token_count.get(t, 0) + 1
    for i in range(out.size):
        if i not in token_count:
            continue
        count = token_count[i]
        if out[i] <= 0:
            out[i] *= penalty_repeat
        else:
            out[i] /= penalty_repeat
        out[i] -= float(count) * penalty_freq + float(count > 0) * penalty_present
    return out


def llama_dry(logits, last_tokens_all, dry_multiplier, dry_base, dry_allowed_length,
              dry_penalty_last_n, breakers):
    """follows llama-sampler.cpp lines 3386-3591, llama_sampler_dry_apply, with the sequence
    breakers set up as llama_sampler_init_dry_testing (lines 3690-3716) does for single-token
    breakers (head token, empty tail).

    Convention of the project: dry_penalty_last_n == 0 means the whole sequence (llama.cpp uses
    -1 for that at the API level; at this level 0 disables DRY); otherwise the ring buffer holds
    the last dry_penalty_last_n tokens. rat(i) is the i-th token from the end (rat(0) = last).
    The max exponent is computed in float32 (C++ float / std::log(float), truncated to int); the
    penalty multiplier * base^exp in float64 (std::pow(float, int) promotes to double)."""
    out = logits.copy()
    if dry_multiplier == 0.0 or dry_base < 1.0:
        return out
    last_tokens = list(last_tokens_all) if dry_penalty_last_n == 0 else list(last_tokens_all)[-dry_penalty_last_n:]
    breaker_heads = set(int(b) for b in breakers)  # dry_processed_breakers: head -> [] (tail)

    def rat(i):
        return last_tokens[len(last_tokens) - 1 - i]

    last_n_repeat = len(last_tokens)  # min(last_tokens.size(), penalty_last_n)
    if last_n_repeat <= dry_allowed_length:
        return out

    dry_repeat_count = [0] * last_n_repeat
    dry_max_token_repeat = {}

    # Step 1: restart sequences limit the maximum repetition length.
    rep_limit = last_n_repeat
    for i in range(last_n_repeat):
        token = rat(i)
        if token not in breaker_heads:
            continue
        longest_match = -1
        seq_len = 0  # single-token breaker: empty tail, trivially matches
        if seq_len > longest_match and seq_len <= i:
            longest_match = seq_len
        if longest_match >= 0:
            rep_limit = i - longest_match
            break
    if rep_limit < dry_allowed_length:
        return out

    # Step 2: reverse Z-algorithm over the last N tokens.
    last = last_n_repeat - 1
    rt = 0
    lt = 0
    for k in range(1, last_n_repeat):
        if k > rt:
            n = 0
            while n + k < last_n_repeat and rat(n) == rat(n + k):
                n += 1
            dry_repeat_count[last - k] = min(n, rep_limit)
            if n > 0:
                lt = k
                rt = k + n - 1
        else:
            p = k - lt
            right_part_len = rt - k + 1
            if dry_repeat_count[last - p] < right_part_len:
                n = min(dry_repeat_count[last - p], rep_limit)
                dry_repeat_count[last - k] = n
            else:
                i = rt + 1
                while i < last_n_repeat and rat(i) == rat(i - k):
                    i += 1
                n = min(i - k, rep_limit)
                dry_repeat_count[last - k] = n
                lt = k
                rt = i - 1

    # Step 3: maximum repeat length that emitting each following token would extend.
    for i in range(last_n_repeat - 1):
        repeat_len = dry_repeat_count[i]
        if repeat_len >= dry_allowed_length:
            token = rat(last_n_repeat - 2 - i)
            if token not in dry_max_token_repeat or dry_max_token_repeat[token] < repeat_len:
                dry_max_token_repeat[token] = repeat_len

    # Step 4: penalties, with the exponent clamped against float overflow.
    FLOAT_MAX_LOG = np.float32(88.7228391)
    max_exponent = 0
    if np.float32(dry_base) > np.float32(1.000001):
        max_exponent = int(FLOAT_MAX_LOG / np.log(np.float32(dry_base)))
    for tok in range(out.size):
        if tok in dry_max_token_repeat:
            is_single_token_breaker = tok in breaker_heads
            if not is_single_token_breaker:
                repeat_exp = dry_max_token_repeat[tok] - dry_allowed_length
                if max_exponent > 0 and repeat_exp > max_exponent:
                    repeat_exp = max_exponent
                penalty = float(dry_multiplier) * (float(dry_base) ** repeat_exp)
                out[tok] -= penalty
    return out


def llama_mirostat_v2(logits, tau, eta, mu):
    """follows llama-sampler.cpp lines 2573-2599, llama_sampler_mirostat_v2_apply: softmax
    (sorted), keep the prefix with -log2(p) <= mu (at least the most likely token), renormalise
    (softmax over the kept logits) and update mu from the chosen token. llama_sample_dist's random
    draw is replaced by a deterministic choice: the kept token with the largest renormalised
    probability, lowest id on ties."""
    ids = np.nonzero(np.isfinite(logits))[0]
    ids, p = llama_softmax_sorted(ids, logits)
    size = 0
    while size < ids.size and not (-math.log2(p[size]) > mu):  # std::find_if(... > mu)
        size += 1
    if size == 0:
        size = 1
    ids, p = llama_softmax_sorted(ids[:size], logits)
    idx = 0  # sorted descending, stable: the largest p, lowest id among ties
    observed_surprise = -math.log2(p[idx])
    e = observed_surprise - tau
    mu_after = mu - eta * e
    order = np.argsort(ids, kind="stable")
    return ids[order], p[order], int(ids[idx]), mu_after


def self_test_ports():
    """The ports against llama.cpp's own vectors (vendor/llama.cpp/tests/test-sampling.cpp lines
    370-397): logits = logf(p), apply, softmax over the survivors, |p - expected| < 1e-5."""
    def lg(probs):
        return np.log(np.asarray(probs, dtype=np.float32)).astype(np.float64)

    def check(out, expected):
        fin = np.isfinite(out)
        got = softmax64(out)
        exp = np.asarray(expected, dtype=np.float64)
        if exp.size == out.size:
            assert np.all(np.abs(got - exp) < 1e-5), (got, exp)
        else:  # survivors only, in order
            assert np.all(np.abs(got[fin] - exp) < 1e-5), (got, exp)

    # XTC: survivors keep their old p (no renormalisation in the test)
    for t, keep in [(0.09, [3]), (0.19, [2, 3]), (0.29, [1, 2, 3]), (0.39, [0, 1, 2, 3])]:
        out = llama_xtc(lg([0.4, 0.3, 0.2, 0.1]), t, 0.99, min_keep=0)
        assert list(np.nonzero(np.isfinite(out))[0]) == keep, (t, out)
    # penalties
    five = [0.2] * 5
    check(llama_penalties(lg(five), [0], 50.0, 0.0, 0.0), [0, 0.25, 0.25, 0.25, 0.25])
    check(llama_penalties(lg(five), [0, 1, 2], 50.0, 0.0, 0.0), [0, 0, 0, 0.5, 0.5])
    check(llama_penalties(lg(five), [0, 1, 2, 0, 0], 50.0, 0.0, 0.0), [0, 0, 0, 0.5, 0.5])
    check(llama_penalties(lg(five), [0], 1.0, 5.0, 5.0), [0.000011, 0.249997, 0.249997, 0.249997, 0.249997])
    check(llama_penalties(lg(five), [0, 1, 2], 1.0, 5.0, 5.0), [0.000023, 0.000023, 0.000023, 0.499966, 0.499966])
    check(llama_penalties(lg(five), [0, 1, 2, 0, 0], 1.0, 5.0, 5.0), [0.0, 0.000023, 0.000023, 0.499977, 0.499977])
    # DRY
    four = [0.25] * 4
    check(llama_dry(lg(four), [0, 1], 1.0, 1.1, 2, 4, []), four)
    check(llama_dry(lg(four), [0, 1, 2, 0, 1], 1.0, 1.1, 2, 5, []), [0.296923, 0.296923, 0.109232, 0.296923])
    check(llama_dry(lg(five), [0, 1, 3, 4, 0, 1], 1.0, 1.1, 2, 6, ["3"]), five)
    check(llama_dry(lg(five), [0, 1, 2, 0, 1], 2.0, 1.1, 2, 5, []), [0.241818, 0.241818, 0.032727, 0.241818, 0.241818])
    check(llama_dry(lg(five), [0, 1, 2, 3, 4, 0, 1], 1.0, 1.1, 4, 7, []), five)
    # top-n-sigma
    check(llama_top_n_sigma(lg([0.1, 0.2, 0.3, 0.4]), 1.0), [0.0, 0.0, 0.428571, 0.571429])
    check(llama_top_n_sigma(lg([0.1, 0.2, 0.3, 0.4]), 0.0), [0.1, 0.2, 0.3, 0.4])
    check(llama_top_n_sigma(lg([0.1, 0.2, 0.3, 0.4]), 3.0), [0.1, 0.2, 0.3, 0.4])
    # DRY against a naive definition (longest suffix repeat followed by each token)
    rng = np.random.default_rng(7)
    for _ in range(300):
        toks = [int(t) for t in rng.integers(0, 4, rng.integers(0, 40))]
        allowed = int(rng.integers(1, 4))
        out = llama_dry(np.zeros(4), toks, 1.0, 2.0, allowed, 0, [])
        naive = np.zeros(4)
        best = {}
        L = len(toks)
        for j in range(L - 1):  # token toks[j+1] follows the prefix ending at j
            n = 0
            while n <= j and toks[j - n] == toks[L - 1 - n] and j - n >= 0 and L - 1 - n > j - n:
                n += 1
            if n >= allowed:
                best[toks[j + 1]] = max(best.get(toks[j + 1], 0), n)
        if L > allowed:
            for t, n in best.items():
                naive[t] -= 2.0 ** (n - allowed)
        assert np.array_equal(out, naive), (toks, allowed, out, naive)


# --------------------------------------------------------------------------------------------
# references, one per processor: (x64 row, case) -> float64 output row

def reference(proc, x64, params, tokens, prompt_len, eos):
    if proc == "temperature":
        return hf_call(TemperatureLogitsWarper(float(params["t"])), x64, tokens)
    if proc == "top_k":
        return hf_call(TopKLogitsWarper(int(params["k"])), x64, tokens)
    if proc == "top_p":
        return hf_call(TopPLogitsWarper(float(params["p"])), x64, tokens)
    if proc == "min_p":
        return hf_call(MinPLogitsWarper(float(params["p"])), x64, tokens)
    if proc == "typical_p":
        return hf_call(TypicalLogitsWarper(mass=float(params["p"])), x64, tokens)
    if proc == "epsilon":
        return hf_call(EpsilonLogitsWarper(float(params["epsilon"])), x64, tokens)
    if proc == "eta":
        # EtaLogitsWarper keeps epsilon in torch.tensor(epsilon) (the default dtype, float32) and
        # takes its sqrt there; built under a float64 default the whole reference is float64.
        with default_dtype(torch.float64):
            w = EtaLogitsWarper(epsilon=float(params["eta"]), device="cpu")
        assert w.epsilon.dtype == torch.float64
        return hf_call(w, x64, tokens)
    if proc == "repetition_penalty":
        w = params["window"]
        ids = tokens if w == 0 else tokens[-w:]
        return hf_call(RepetitionPenaltyLogitsProcessor(float(params["penalty"])), x64, ids)
    if proc == "no_repeat_ngram":
        return hf_call(NoRepeatNGramLogitsProcessor(int(params["n"])), x64, tokens)
    if proc == "logit_bias":
        seq = [[[int(t)], NEG_INF if b == "-inf" else float(b)] for t, b in params["bias"].items()]
        return hf_call(SequenceBiasLogitsProcessor(sequence_bias=seq), x64, tokens)
    if proc == "min_new_tokens":
        w = MinNewTokensLengthLogitsProcessor(prompt_length_to_skip=int(prompt_len),
                                              min_new_tokens=int(params["n"]), eos_token_id=int(eos))
        return hf_call(w, x64, tokens)
    if proc == "top_n_sigma":
        return llama_top_n_sigma(x64, params["n"])
    if proc == "xtc":
        return llama_xtc(x64, params["threshold"], params["probability"])
    if proc == "dry":
        return llama_dry(x64, tokens, params["multiplier"], params["base"], params["allowed_length"],
                         params["penalty_last_n"], params["breakers"])
    if proc == "frequency_penalty":
        return llama_penalties(x64, tokens[prompt_len:], 1.0, params["alpha"], 0.0)
    if proc == "presence_penalty":
        return llama_penalties(x64, tokens[prompt_len:], 1.0, 0.0, params["alpha"])
    raise ValueError(proc)


# --------------------------------------------------------------------------------------------
# margin checks: a continuous parameter must not put any decision within MARGIN of its threshold

def check_margin(proc, x64, params):
    fin = np.isfinite(x64)
    if proc == "top_p":
        p = np.sort(softmax64(x64)[fin])  # ascending, as TopPLogitsWarper
        cum = np.cumsum(p)
        if np.min(np.abs(cum - (1.0 - params["p"]))) < MARGIN:
            raise Redraw
    elif proc == "min_p":
        if params["p"] == 0.0:
            return
        probs = softmax64(x64)
        mx = np.max(x64)
        sel = fin & (x64 != mx)
        if sel.any() and np.min(np.abs(probs[sel] / probs.max() - params["p"])) < MARGIN:
            raise Redraw
    elif proc in ("epsilon", "eta"):
        probs = softmax64(x64)
        if proc == "epsilon":
            cut = params["epsilon"]
        else:
            lp = x64 - (np.max(x64) + np.log(np.sum(np.exp(x64 - np.max(x64)))))
            ent = -np.sum(np.where(fin, probs * np.where(fin, lp, 0.0), 0.0))
            cut = min(params["eta"], math.sqrt(params["eta"]) * math.exp(-ent))
        if np.min(np.abs(probs[fin] / cut - 1.0)) < MARGIN:
            raise Redraw
    elif proc == "typical_p":
        m = np.max(x64)
        lp = x64 - (m + np.log(np.sum(np.exp(x64 - m))))
        probs = np.exp(lp)
        ent = -np.sum(np.where(fin, lp, 0.0) * probs)
        s = np.abs(-lp - ent)
        order = np.argsort(s, kind="stable")
        cum = np.cumsum(probs[order])
        if np.min(np.abs(cum[fin[order]] - params["p"])) < MARGIN:
            raise Redraw
        last_ind = min(int(np.sum(cum < params["p"])), s.size - 1)
        s_star = s[order][last_ind]
        near = fin & (np.abs(s - s_star) <= MARGIN)
        if len(set(x64[near].tolist())) > 1:  # distinct logits (mirror images around the entropy)
            raise Redraw
    elif proc == "top_n_sigma":
        v = x64[fin]
        mx = v.max()
        thr = mx - params["n"] * math.sqrt(np.mean((v - v.mean()) ** 2))
        w = v[v != mx]
        if w.size and np.min(np.abs(w - thr)) < MARGIN * (1.0 + abs(thr)):
            raise Redraw
    elif proc == "xtc":
        if params["threshold"] == 0.0:
            return
        probs = softmax64(x64)[fin]
        if np.min(np.abs(probs - params["threshold"])) < MARGIN:
            raise Redraw


# --------------------------------------------------------------------------------------------
# rows and histories

class Rows:
    def __init__(self):
        self.rows = []

    def add(self, kind, logits):
        logits = np.asarray(logits, dtype=np.float32)
        assert logits.ndim == 1 and np.isfinite(logits).any() and not np.isnan(logits).any()
        assert not np.isposinf(logits).any()
        self.rows.append({"id": len(self.rows), "kind": kind, "vocab": int(logits.size), "logits": logits})
        return len(self.rows) - 1

    def x32(self, rid):
        return self.rows[rid]["logits"]


def gen_row(rng, kind, V):
    if kind == "normal":
        return rng.normal(0.0, rng.uniform(0.5, 3.0), V).astype(np.float32)
    if kind == "peaked":
        if rng.random() < 0.3:
            return rng.normal(0.0, 8.0, V).astype(np.float32)
        x = rng.normal(0.0, rng.uniform(0.5, 3.0), V)
        for t in rng.choice(V, size=int(rng.integers(1, 4)), replace=False):
            x[t] += rng.uniform(10.0, 20.0)
        return x.astype(np.float32)
    if kind == "tied":
        u = rng.random()
        if u < 0.15:
            return np.full(V, [0.0, 1.0, -2.5, 0.5][int(rng.integers(0, 4))], dtype=np.float32)
        sets = [[0.0, 0.5, 1.0, 2.0], [0.0, 1.0], [-1.0, 0.0, 1.0, 2.0, 3.0], [0.25, 0.5, 4.0]]
        vals = np.asarray(sets[int(rng.integers(0, len(sets)))], dtype=np.float32)
        return vals[rng.integers(0, vals.size, V)]
    if kind == "masked":
        x = rng.normal(0.0, rng.uniform(0.5, 3.0), V).astype(np.float32)
        n_mask = int(round(rng.uniform(0.3, 0.7) * V))
        n_mask = min(max(n_mask, 1), V - 1)
        x[rng.choice(V, size=n_mask, replace=False)] = -np.inf
        return x
    raise ValueError(kind)


def gen_history(rng, V, L=None, tail_p=0.6):
    """A token list (prompt first) with copied stretches, ending in one with probability tail_p."""
    if L is None:
        u = rng.random()
        L = 0 if u < 0.05 else min(300, int(math.exp(rng.uniform(0.0, math.log(301.0)))))
    toks = []
    tail = 0
    if L >= 6 and rng.random() < tail_p:
        tail = int(rng.integers(2, min(30, L // 2) + 1))
    while len(toks) < L - tail:
        if len(toks) >= 2 and rng.random() < 0.35:
            s = int(rng.integers(0, len(toks) - 1))
            n = int(rng.integers(1, min(25, len(toks) - s) + 1))
            toks.extend(toks[s:s + n])
        else:
            toks.append(int(rng.integers(0, V)))
    toks = toks[:L - tail]
    if tail:
        s = int(rng.integers(0, len(toks) - tail + 1))
        toks.extend(toks[s:s + tail])
    assert len(toks) == L and all(0 <= t < V for t in toks)
    return toks


# --------------------------------------------------------------------------------------------
# parameter draws (x64: the row; may look at it so that cuts land somewhere interesting)

def sorted_probs(x64):
    return np.sort(softmax64(x64)[np.isfinite(x64)])[::-1]


def draw_params(proc, rng, x64, tokens):
    V = x64.size
    aware = rng.random() < 0.5
    p_desc = sorted_probs(x64)
    nf = p_desc.size
    j = int(rng.integers(0, max(1, min(nf - 1, 40))))  # a rank for data-aware cuts

    def between(a, b):
        return q16(a + (b - a) * rng.uniform(0.2, 0.8))

    if proc == "temperature":
        return {"t": q16(math.exp(rng.uniform(math.log(0.1), math.log(3.0))))}
    if proc == "top_k":
        if V > 300 and rng.random() < 0.7:
            return {"k": int(rng.integers(1, 301))}
        return {"k": int(rng.integers(1, V + 3))}
    if proc == "top_p":
        if aware and nf >= 2:
            cum = np.cumsum(p_desc)
            p = between(cum[j], cum[j + 1]) if j + 1 < nf else q16(rng.uniform(0.01, 0.99))
        else:
            p = q16(rng.uniform(0.01, 0.99))
        return {"p": min(max(p, 2.0 ** -16), 1.0 - 2.0 ** -16)}
    if proc == "min_p":
        u = rng.random()
        if u < 0.06:
            return {"p": 0.0}
        if u < 0.12:
            return {"p": 1.0}
        if aware and nf >= 2 and j + 1 < nf:
            r = p_desc / p_desc[0]
            return {"p": between(r[j + 1], r[j])}
        return {"p": q16(rng.uniform(0.0, 1.0))}
    if proc == "typical_p":
        return {"p": min(max(q16(rng.uniform(0.02, 0.98)), 2.0 ** -16), 1.0 - 2.0 ** -16)}
    if proc == "epsilon":
        if aware and j + 1 < nf and p_desc[j + 1] < 0.3:
            e = between(p_desc[j + 1], min(p_desc[j], 0.3))
        else:
            e = q16(math.exp(rng.uniform(math.log(1e-4), math.log(0.3))))
        return {"epsilon": min(max(e, 2.0 ** -16), 0.3)}
    if proc == "eta":
        e = q16(math.exp(rng.uniform(math.log(2e-4), math.log(0.3))))
        if aware and j + 1 < nf:
            # aim the cutoff min(eta, sqrt(eta) * exp(-H)) between two neighbouring probabilities
            fin = np.isfinite(x64)
            pr = softmax64(x64)[fin]
            ent = -float(np.sum(pr * np.log(pr)))
            c = p_desc[j + 1] * (p_desc[j] / p_desc[j + 1]) ** rng.uniform(0.2, 0.8)
            cand = c if c <= math.exp(-2.0 * ent) else (c * math.exp(ent)) ** 2
            if 2.0 ** -16 <= cand <= 0.3:
                e = q16(cand)
        return {"eta": min(max(e, 2.0 ** -16), 0.3)}
    if proc == "repetition_penalty":
        pen = q16(rng.uniform(0.5, 2.0))
        return {"penalty": pen, "window": 0 if rng.random() < 0.5 else int(rng.integers(1, 21))}
    if proc == "no_repeat_ngram":
        return {"n": int(rng.integers(1, 5))}
    if proc == "logit_bias":
        nk = int(rng.integers(1, 6))
        pool = list(range(V)) if V <= 64 else None
        keys = set()
        while len(keys) < min(nk, V):
            u = rng.random()
            if u < 0.3 and tokens:
                keys.add(int(tokens[int(rng.integers(0, len(tokens)))]))
            elif u < 0.45:
                keys.add(int(np.argmax(x64)))
            else:
                keys.add(int(rng.integers(0, V)) if pool is None else int(rng.choice(pool)))
        bias = {}
        for t in sorted(keys):
            bias[str(t)] = "-inf" if rng.random() < 0.25 else round(rng.uniform(-10.0, 10.0) * 32.0) / 32.0
        return {"bias": bias}
    if proc == "min_new_tokens":
        return {"n": int(rng.integers(0, 6))}
    if proc == "top_n_sigma":
        return {"n": max(q16(rng.uniform(0.0, 3.0)), 2.0 ** -10)}
    if proc == "xtc":
        prob = 0.0 if rng.random() < 0.12 else 1.0
        if (aware or rng.random() < 0.6 or V > 10000) and nf >= 2:
            jj = int(rng.integers(0, min(nf - 1, 4)))
            hi = min(p_desc[jj], 0.5)
            lo = p_desc[jj + 1]
            thr = between(lo, hi) if lo < hi else q16(rng.uniform(0.0, 0.5))
        elif rng.random() < 0.08:
            thr = 0.0
        else:
            thr = q16(rng.uniform(0.0, 0.5))
        return {"threshold": min(thr, 0.5), "probability": prob}
    if proc == "dry":
        allowed = int(rng.integers(1, 5))
        nb = 0 if (not tokens or rng.random() < 0.5) else int(rng.integers(1, 3))
        # breakers are tokens of the history; most of them chosen among those whose last
        # occurrence is far enough back that DRY still acts
        last_at = {t: len(tokens) - 1 - i for i, t in enumerate(tokens)}  # distance from the end
        far = sorted(t for t, dist in last_at.items() if dist >= allowed + 2)
        br = []
        for _ in range(nb):
            if far and rng.random() < 0.7:
                b = str(far[int(rng.integers(0, len(far)))])
            else:
                b = str(tokens[int(rng.integers(0, len(tokens)))])
            if b not in br:
                br.append(b)
        return {
            "multiplier": q16(rng.uniform(0.2, 2.0)),
            "base": q16(rng.uniform(1.1, 3.0)),
            "allowed_length": allowed,
            "penalty_last_n": 0 if rng.random() < 0.4 else int(rng.integers(5, 101)),
            "breakers": br,
        }
    if proc in ("frequency_penalty", "presence_penalty"):
        return {"alpha": q16(rng.uniform(-1.0, 2.0))}
    raise ValueError(proc)


# --------------------------------------------------------------------------------------------
# expected outputs

def encode_expected(x32, out64):
    assert not np.isnan(out64).any() and not np.isposinf(out64).any()
    out32 = out64.astype(np.float32)
    if (np.isfinite(out64) & ~np.isfinite(out32)).any():
        raise Redraw  # a finite float64 result beyond float32's range
    kept = np.isfinite(out32)
    assert not (kept & ~np.isfinite(x32)).any()
    changed = kept & (out32 != x32)
    V = x32.size
    if changed.sum() > V / 8:
        return {"dense": b64_f32(out32)}, kept
    idx = np.nonzero(changed)[0]
    return {
        "kept": b64(np.packbits(kept, bitorder="little").tobytes()),
        "changed_idx": [int(i) for i in idx],
        "changed_val": b64_f32(out32[idx]),
    }, kept


def tie_split(x32, kept):
    """True when some finite input value has tokens both kept and removed."""
    fin = np.isfinite(x32)
    kv = set(x32[fin & kept].tolist())
    rv = set(x32[fin & ~kept].tolist())
    return bool(kv & rv)


class Builder:
    def __init__(self, rows):
        self.rows = rows
        self.cases = []
        self.mirostat = []

    def case(self, proc, params, rid, tokens, prompt_len, eos, note=None, check=True):
        x32 = self.rows.x32(rid)
        V = x32.size
        assert 0 <= prompt_len <= len(tokens) and 0 <= eos < V
        assert all(0 <= t < V for t in tokens)
        x64 = x32.astype(np.float64)
        if check:
            check_margin(proc, x64, params)
        out64 = reference(proc, x64, params, list(tokens), prompt_len, eos)
        expected, kept = encode_expected(x32, out64)
        if not kept.any():
            compare = "keeps_max"
        elif proc in ("top_p", "xtc") and tie_split(x32, kept):
            compare = "count"
        else:
            compare = "same"
        c = {"processor": proc, "params": params, "row": rid, "tokens": [int(t) for t in tokens],
             "prompt_len": int(prompt_len), "eos": int(eos), "reference": REFERENCE[proc],
             "compare": compare}
        if note:
            c["note"] = note
        c["expected"] = expected
        self.cases.append(c)
        return c

    def random_case(self, proc, rng, rid, tokens=None):
        x32 = self.rows.x32(rid)
        V = x32.size
        x64 = x32.astype(np.float64)
        for _ in range(100):
            tail_p = 0.9 if proc in ("dry", "no_repeat_ngram") else 0.6
            L = None
            if proc == "dry" and rng.random() < 0.85:  # mostly histories long enough to repeat
                L = int(math.exp(rng.uniform(math.log(12.0), math.log(301.0))))
            toks = gen_history(rng, V, L=L, tail_p=tail_p) if tokens is None else tokens
            L = len(toks)
            params = draw_params(proc, rng, x64, toks)
            if proc == "min_new_tokens":
                gen = min(L, max(0, params["n"] + int(rng.integers(-3, 2))))
                prompt_len = L - gen
            else:
                prompt_len = int(rng.integers(0, L + 1))
            u = rng.random() if proc != "min_new_tokens" else 0.5 + 0.5 * rng.random()
            if u < 0.3:
                eos = V - 1
            elif u < 0.5:
                eos = 0
            else:
                finite = np.nonzero(np.isfinite(x32))[0]
                eos = int(rng.choice(finite)) if rng.random() < 0.8 else int(rng.integers(0, V))
            try:
                return self.case(proc, params, rid, toks, prompt_len, eos)
            except Redraw:
                continue
        raise RuntimeError(f"no usable parameters for {proc} on row {rid}")

    def mirostat_case(self, rid, tau, eta, mu, note=None):
        x64 = self.rows.x32(rid).astype(np.float64)
        fin = np.isfinite(x64)
        surprise = -np.log2(softmax64(x64)[fin])
        if np.min(np.abs(surprise - mu)) < MARGIN:
            raise Redraw
        if not (surprise <= mu).any():
            top = np.max(x64)
            if np.sum(x64 == top) > 1:
                raise Redraw  # which of the tied maxima survives would be a sort-order choice
        kept, probs, chosen, mu_after = llama_mirostat_v2(x64, tau, eta, mu)
        m = {"row": rid, "tau": tau, "eta": eta, "mu": mu,
             "reference": f"llama.cpp llama_sampler_mirostat_v2_apply ({SRC} lines {LINES['mirostat_v2']}), "
                          "chosen = most likely kept token (lowest id on ties)",
             "kept": [int(t) for t in kept], "probs": [float(p) for p in probs],
             "chosen": chosen, "mu_after": float(mu_after)}
        if note:
            m["note"] = note
        self.mirostat.append(m)
        return m


# --------------------------------------------------------------------------------------------

KINDS = ["normal", "peaked", "tied", "masked"]


def build():
    self_test_ports()
    rng = np.random.default_rng(SEED)
    rows = Rows()
    B = Builder(rows)

    # the four V=50257 rows (one per kind) and a pool of V=1000 rows
    big = {k: rows.add(k, gen_row(rng, k, 50257)) for k in KINDS}
    pool = {k: [rows.add(k, gen_row(rng, k, 1000)) for _ in range(8)] for k in KINDS}

    # ---- must-have cases -------------------------------------------------------------------
    # 1. typical_p on [1, 1, 1, 1], p = 0.5
    r = rows.add("tied", [1.0, 1.0, 1.0, 1.0])
    B.case("typical_p", {"p": 0.5}, r, [], 0, 3, check=False,
           note="all logits equal: transformers keeps all 4 tokens")
    r7 = rows.add("tied", [1.0] * 7)
    B.case("typical_p", {"p": 0.5}, r7, [2, 3], 1, 6, check=False,
           note="all logits equal (V=7): transformers keeps every token")

    # 2. DRY: a 30-token block repeated 8 times (the current repeat is 210 tokens long)
    brng = np.random.default_rng(SEED + 2)
    block = [int(t) for t in brng.choice(1000, size=30, replace=False)]
    hist = block * 8
    dry_row = pool["normal"][0]
    dp = {"multiplier": 0.8, "base": 1.75, "allowed_length": 2, "penalty_last_n": 0, "breakers": []}
    B.case("dry", dp, dry_row, hist, 10, 999, check=False,
               note="repeat of 210 tokens: exponent 208 clamped to max_exponent 158, penalty 0.8*1.75^158 ~ 2e38 stays finite")
    hist2 = [int(t) for t in brng.integers(0, 1000, 20)] + block * 7
    br = str(block[5])
    B.case("dry", dict(dp, breakers=[br]), dry_row, hist2, 0, 999, check=False,
           note="long repeat cut by a sequence breaker that occurs inside the repeated block")
    B.case("dry", dict(dp, penalty_last_n=64), dry_row, hist, 10, 999, check=False,
           note="long repeat seen through a 64-token window")

    # 3. the reference leaves no finite logit
    r = rows.add("masked", [-np.inf, 0.25, -np.inf, 1.25, -np.inf, -np.inf, -0.5])
    B.case("no_repeat_ngram", {"n": 2}, r, [5, 1, 2, 5, 3, 4, 5, 6, 0, 5], 3, 6, check=False,
           note="every finite token is banned (5->1, 5->3, 5->6): no finite logit left")
    r = rows.add("masked", [-np.inf, 0.5, 0.5, -np.inf, -np.inf, -np.inf, -np.inf])
    B.case("no_repeat_ngram", {"n": 1}, r, [1, 2, 0], 0, 6, check=False,
           note="n=1 bans every token seen; both finite tokens (tied at the max) are banned")
    r = rows.add("masked", [-np.inf] * 6 + [0.75])
    B.case("min_new_tokens", {"n": 4}, r, [1, 2, 3, 4, 5], 3, 6, check=False,
           note="EOS is the only finite token and 2 < 4 new tokens: no finite logit left")
    r = rows.add("masked", [1.0, -np.inf, 1.0, -np.inf, -0.25, -np.inf, -np.inf])
    B.case("logit_bias", {"bias": {"0": "-inf", "2": "-inf", "4": "-inf", "5": 1.5}}, r, [0, 4], 1, 6,
           check=False, note="every finite token biased by -inf: no finite logit left (input max tied: tokens 0 and 2)")
    # 4. top_p and xtc with the cut inside a group of tied tokens
    r = rows.add("tied", [2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    c = B.case("top_p", {"p": 0.6}, r, [], 0, 6, note="cut inside the group of four 1.0 logits")
    assert c["compare"] == "count"
    r = rows.add("tied", [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    c = B.case("xtc", {"threshold": 0.2, "probability": 1.0}, r, [], 0, 6,
               note="three tied tokens above the threshold: one of them (the reference's sort picks which) survives")
    assert c["compare"] == "count"
    c = B.case("xtc", {"threshold": 0.0625, "probability": 1.0}, r, [], 0, 6,
               note="all tokens above the threshold: one of the four tied least likely survives")
    assert c["compare"] == "count"
    c = B.case("xtc", {"threshold": 0.2, "probability": 0.0}, r, [], 0, 6, note="probability 0: never acts")
    assert c["compare"] == "same"

    # ---- random cases ----------------------------------------------------------------------
    for proc in PROCESSORS:
        prng = np.random.default_rng([SEED, PROCESSORS.index(proc)])
        for i in range(40):  # V=7, a fresh row per case
            kind = KINDS[i % 4]
            rid = rows.add(kind, gen_row(prng, kind, 7))
            B.random_case(proc, prng, rid)
        for i in range(15):  # V=1000, rows from the pool
            kind = KINDS[i % 4]
            B.random_case(proc, prng, pool[kind][int(prng.integers(0, 8))])
        if proc == "temperature":
            big_kinds = ["normal"]
        else:
            s = PROCESSORS.index(proc) % 4
            big_kinds = [KINDS[s], KINDS[(s + 1) % 4], KINDS[(s + 2) % 4]]
        for kind in big_kinds:  # V=50257
            B.random_case(proc, prng, big[kind])

    # ---- mirostat --------------------------------------------------------------------------
    mrng = np.random.default_rng(SEED + 5)

    def mirostat_random(rid, n_tries=100, no_pass=False, max_kept=None):
        x64 = rows.x32(rid).astype(np.float64)
        s = np.sort(-np.log2(softmax64(x64)[np.isfinite(x64)]))
        for _ in range(n_tries):
            tau = q16(mrng.uniform(1.0, 10.0))
            eta = q16(mrng.uniform(0.05, 1.0))
            if no_pass:
                mu = q16(s[0] * mrng.uniform(0.1, 0.9))
                if mu <= 0 or mu >= s[0]:
                    mu = q16(s[0] / 2) if s[0] > 2.0 ** -15 else None
                if mu is None or mu <= 0:
                    raise Redraw
            else:
                hi = s.size - 1 if max_kept is None else min(s.size - 1, max_kept - 1)
                jj = int(mrng.integers(0, hi + 1))
                lo_v = s[jj]
                hi_v = s[jj + 1] if jj + 1 < s.size else s[jj] + 2.0
                mu = q16(lo_v + (hi_v - lo_v) * mrng.uniform(0.2, 0.8))
            try:
                return B.mirostat_case(rid, tau, eta, mu,
                                       note="no token has -log2(p) <= mu: the most likely one is kept" if no_pass else None)
            except Redraw:
                continue
        raise Redraw

    for i in range(24):
        kind = KINDS[i % 4]
        while True:
            rid = rows.add(kind, gen_row(mrng, kind, 7))
            try:
                mirostat_random(rid, no_pass=(i % 6 == 5))
                break
            except Redraw:
                rows.rows.pop()
    for i in range(8):
        kind = KINDS[i % 4]
        mirostat_random(pool[kind][int(mrng.integers(0, 8))], no_pass=(i == 3), max_kept=400)
    for kind in ["peaked", "normal"]:
        mirostat_random(big[kind], max_kept=300)
    mirostat_random(big["normal"], no_pass=True)
    r = rows.add("peaked", [0.0, 12.0, 0.5, -1.0, 0.25, 0.0, 1.0])
    B.mirostat_case(r, 5.0, 0.125, 2.0 ** -20, note="no token passes (mu tiny): the most likely one is kept")

    return rows, B


def main():
    rows, B = build()
    doc = {
        "generator": "scripts/make_decoding_fixtures.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
            "llama_cpp": "llama-cpp-python 0.3.36 (vendor/llama.cpp/src/llama-sampler.cpp)",
        },
        "rows": [{"id": r["id"], "kind": r["kind"], "vocab": r["vocab"], "logits": b64_f32(r["logits"])}
                 for r in rows.rows],
        "cases": B.cases,
        "mirostat": B.mirostat,
    }
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
        f.write("\n")
    counts = {}
    for c in B.cases:
        counts.setdefault(c["processor"], {}).setdefault(c["compare"], 0)
        counts[c["processor"]][c["compare"]] += 1
    print(f"wrote {OUT}: {len(text) + 1} bytes, {len(rows.rows)} rows, {len(B.cases)} cases, "
          f"{len(B.mirostat)} mirostat", file=sys.stderr)
    for p in PROCESSORS:
        print(f"  {p:20s} {counts.get(p, {})}", file=sys.stderr)


if __name__ == "__main__":
    main()

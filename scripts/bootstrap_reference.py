#!/usr/bin/env python3
"""The bootstrap intervals of minigpt's summary (crates/minigpt-eval/src/bootstrap.rs), computed
independently in numpy on a small hand-made cell: the same resampling rule (a xoshiro256++
stream seeded through SplitMix64; prompt k of a resample is the (next_u64 mod P)-th prompt;
1000 resamples), the metrics written out from their definitions, and numpy.percentile (its
default linear method) for the 2.5th and 97.5th percentiles. Writes
tests/fixtures/bootstrap/reference.json, which crates/minigpt-eval/tests/bootstrap_reference.rs
compares with minigpt's intervals.

    /tmp/minigpt-peers-venv/bin/python scripts/bootstrap_reference.py   # any Python with numpy
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "bootstrap", "reference.json")
M = (1 << 64) - 1
SEED = 0x000B_0075_78A9   # bootstrap::SEED
RESAMPLES = 1000


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    def __init__(self, seed):
        st = seed
        self.s = []
        for _ in range(4):
            st, v = splitmix64(st)
            self.s.append(v)

    def next_u64(self):
        s = self.s
        result = (rotl((s[0] + s[3]) & M, 23) + s[0]) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def resamples(p):
    rng = Xoshiro(SEED)
    out = []
    for _ in range(RESAMPLES):
        counts = [0] * p
        for _ in range(p):
            counts[rng.next_u64() % p] += 1
        out.append(counts)
    return out


def interval(values):
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]


# A cell: 4 prompts × 2 samples; texts of words, with n_tokens per row.
ROWS = [
    (0, "the cat sat on the mat the cat sat", 9),
    (0, "a dog ran in the park", 6),
    (1, "to be or not to be that is the question", 10),
    (1, "to be or not to be to be or not", 10),
    (2, "all the world is a stage", 6),
    (2, "and all the men and women merely players", 8),
    (3, "we go we go we go we go", 8),
    (3, "now is the winter of our discontent", 7),
]


def pooled_rep2(weights):
    uniq = total = 0
    for p, text, _ in ROWS:
        w = text.split()
        g = [tuple(w[i:i + 2]) for i in range(len(w) - 1)]
        uniq += weights[p] * len(set(g))
        total += weights[p] * len(g)
    return None if total == 0 else 100.0 * (1.0 - uniq / total)


def pooled_distinct1(weights):
    seen, total = set(), 0
    for p, text, _ in ROWS:
        if weights[p]:
            w = text.split()
            seen.update(w)
            total += weights[p] * len(w)
    return None if total == 0 else len(seen) / total


def mean_n_tokens(weights):
    n = sum(weights[p] for p, _, _ in ROWS)
    return sum(weights[p] * t for p, _, t in ROWS) / n


def main():
    draws = resamples(4)
    values_per_prompt = [0.5, 2.0, -1.0, 4.0]
    out = {
        "seed": SEED, "resamples": RESAMPLES,
        "first_draws": draws[:3],
        "prompt_values": values_per_prompt,
        "weighted_mean": interval(
            [sum(c * v for c, v in zip(w, values_per_prompt)) / sum(w) for w in draws]),
        "rows": [{"prompt": p, "text": t, "n_tokens": n} for p, t, n in ROWS],
        "intervals": {
            "pooled_rep_2": interval([pooled_rep2(w) for w in draws]),
            "pooled_distinct_1": interval([pooled_distinct1(w) for w in draws]),
            "mean_n_tokens": interval([mean_n_tokens(w) for w in draws]),
        },
        # The cell's own value (every prompt once): the resampled interval above misses it.
        "pooled_distinct_1_whole": pooled_distinct1([1, 1, 1, 1]),
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out["intervals"]))


if __name__ == "__main__":
    main()

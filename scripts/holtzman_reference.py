#!/usr/bin/env python3
"""The Holtzman et al. 2020 repetition check, ported line by line from the paper's reference code
(github.com/ari-holtzman/degen, metrics/repetition.py, commit 0acfd2d, lines 39-61), run on
hand-made token sequences that sit on its boundaries; writes tests/fixtures/metrics/holtzman.json,
which a Rust test (crates/minigpt-eval/tests/holtzman_reference.rs) compares with minigpt's
`holtzman_repetition`. Pure Python, no packages:

    python3 scripts/holtzman_reference.py

The one deviation: degen reads `gen[-1]` unguarded (an empty generation raises); here an empty
one is not repeating.
"""
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "metrics", "holtzman.json")
SEP = 50256  # degen line 28: GPT-2's <|endoftext|>
MAX_N = 90   # degen line 31


def repetition(tokens, sep=SEP, max_n=MAX_N):
    gen = list(tokens)
    if not gen:
        return None
    if gen[-1] == sep:                      # lines 40-41
        gen.pop(-1)
    rev_gen = list(reversed(gen))           # line 42
    last_n_repeats = [0] * max_n            # line 43
    for n in range(1, max_n + 1):           # lines 45-50
        n_repeat = 1
        while len(rev_gen[n * n_repeat:n * (n_repeat + 1)]) == n and \
                rev_gen[n * n_repeat:n * (n_repeat + 1)] == rev_gen[:n]:
            n_repeat += 1
        last_n_repeats[n - 1] = n_repeat
    max_repeated_n = max(range(max_n), key=lambda x: last_n_repeats[x])  # line 51
    if last_n_repeats[max_repeated_n] > 1 and \
            (max_repeated_n + 1 >= 3 or last_n_repeats[max_repeated_n] > 50):  # line 53
        return {"phrase_length": max_repeated_n + 1, "times": last_n_repeats[max_repeated_n]}
    return None


def cases():
    c = [
        ("empty", []),
        ("one token", [7]),
        ("only the end-of-text token", [SEP]),
        ("bigram twice: n < 3, 2 copies", [1, 2, 1, 2]),
        ("trigram twice: n = 3 counts", [9, 5, 6, 7, 5, 6, 7]),
        ("trigram twice then end-of-text (removed)", [9, 5, 6, 7, 5, 6, 7, SEP]),
        ("end-of-text inside the phrase is kept", [4, 5, 6, SEP, 5, 6, SEP, 5, 6]),
        ("one token 50 times: not > 50", [3] + [8] * 50),
        ("one token 51 times: > 50", [3] + [8] * 51),
        ("bigram 50 times", [3] + [1, 2] * 50),
        ("bigram 51 times", [3] + [1, 2] * 51),
        ("tie n=1 and n=3 at 2 copies: the smaller n wins, not repeating", [4, 2, 1, 1, 2, 1, 1]),
        ("n=1 beats n=3 with more copies", [2, 1, 1, 1, 1, 1, 1]),
        ("a 90-token phrase twice", [1000] + list(range(90)) * 2),
        ("a 91-token phrase twice: past max_n", [1000] + list(range(91)) * 2),
        ("a phrase 3 times with a cut-off last copy", [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]),
        ("4-gram three times", [0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]),
    ]
    rng = random.Random(1234)
    for i in range(12):
        vocab = rng.choice([2, 3, 5, 50])
        seq = [rng.randrange(vocab) for _ in range(rng.randrange(1, 300))]
        if i % 3 == 0:
            phrase = [rng.randrange(vocab) for _ in range(rng.randrange(1, 12))]
            seq += phrase * rng.randrange(2, 8)
        if i % 4 == 1:
            seq.append(SEP)
        c.append((f"random {i} (vocabulary {vocab})", seq))
    return c


def main():
    out = {"source": "github.com/ari-holtzman/degen metrics/repetition.py@0acfd2d lines 39-61",
           "eos": SEP, "max_n": MAX_N,
           "cases": [{"name": n, "tokens": t, "repetition": repetition(t)} for n, t in cases()]}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    rep = sum(1 for c in out["cases"] if c["repetition"])
    print(f"wrote {OUT}: {len(out['cases'])} cases, {rep} repeating")


if __name__ == "__main__":
    main()

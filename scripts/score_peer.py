#!/usr/bin/env python3
"""`minigpt score` against Hugging Face's perplexity guide (transformers docs, "Perplexity of
fixed-length models": windows of max_length tokens, advancing `stride`, each scoring only the
tokens the previous window did not) on one text and one model, in one run: perplexity, seconds,
and the speed ratio. Not part of CI.

    /tmp/hfvenv/bin/python scripts/score_peer.py [MODEL_DIR] [TEXT_FILE] [STRIDE]
    # defaults: models/minigpt-shakespeare, data/tinyshakespeare.txt, n_positions // 2

The two perplexities differ slightly: the guide's first window predicts max_length - 1 tokens
and every later one sees one token less context than minigpt's (which scores the token right
after each window's input). Character-level models only (char_vocab.json). THREADS (default 2)
sets both sides' threads.
"""
import json
import math
import os
import subprocess
import sys
import time

import torch
from transformers import GPT2LMHeadModel

model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/minigpt-shakespeare"
text_file = sys.argv[2] if len(sys.argv) > 2 else "data/tinyshakespeare.txt"
threads = int(os.environ.get("THREADS", "2"))
minigpt = os.environ.get("MINIGPT", "target/release/minigpt")
config = json.load(open(os.path.join(model_dir, "config.json")))
max_length = config["n_positions"]
stride = int(sys.argv[3]) if len(sys.argv) > 3 else max_length // 2

text = open(text_file, encoding="utf-8").read()
chars = json.load(open(os.path.join(model_dir, "char_vocab.json")))["chars"]
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([[index[c] for c in text]])

# minigpt, as a user runs it.
env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
t0 = time.perf_counter()
out = subprocess.run([minigpt, "score", "--model", model_dir, "--file", text_file, "--json",
                      "--stride", str(stride)], check=True, capture_output=True, text=True,
                     env=env).stdout
ours_s = time.perf_counter() - t0
ours = json.loads(out)
assert ours["tokens"] == ids[0].tolist(), "minigpt's character ids differ from char_vocab.json"

# The guide's loop, verbatim but for the device and threads.
torch.set_num_threads(threads)
model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
seq_len = ids.size(1)
nll_sum, n_tokens, prev_end = 0.0, 0, 0
t0 = time.perf_counter()
with torch.inference_mode():
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        loss = model(input_ids, labels=target_ids).loss
        valid = (target_ids != -100).sum().item() - target_ids.size(0)
        nll_sum += loss.item() * valid
        n_tokens += valid
        prev_end = end
        if end == seq_len:
            break
hf_s = time.perf_counter() - t0

print(f"text: {text_file}, {seq_len} tokens; model {model_dir}; windows of {max_length} "
      f"advancing {stride}; {threads} threads")
print(f"minigpt score:             perplexity {ours['perplexity']:.4f} in {ours_s:.2f} s "
      f"(whole process, load included)")
print(f"transformers (the guide):  perplexity {math.exp(nll_sum / n_tokens):.4f} in {hf_s:.2f} s "
      f"(the loop alone)")
print(f"minigpt is {hf_s / ours_s:.2f}x as fast")

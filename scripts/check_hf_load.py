#!/usr/bin/env python3
"""Check that a model directory written by `minigpt train` loads in Hugging Face transformers
unchanged (`GPT2LMHeadModel.from_pretrained`) and that its log-probabilities equal
`minigpt score --json` on a text. Not part of CI.

    /tmp/hfvenv/bin/python scripts/check_hf_load.py models/minigpt-shakespeare "ROMEO:\nBut soft"

Character-level models (char_vocab.json) are tokenised here by the same rule as minigpt (one id
per character, in the file's order); GPT-2 BPE models use the ids minigpt prints.
"""
import json
import os
import subprocess
import sys

import torch
from transformers import GPT2LMHeadModel

model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/minigpt-shakespeare"
text = (sys.argv[2] if len(sys.argv) > 2 else "ROMEO:\nBut soft, what light").encode().decode("unicode_escape")
minigpt = os.environ.get("MINIGPT", "target/release/minigpt")

out = subprocess.run([minigpt, "score", "--model", model_dir, "--text", text, "--json", "--stride", "1"],
                     check=True, capture_output=True, text=True).stdout
ours = json.loads(out)
ids = ours["tokens"]
vocab_file = os.path.join(model_dir, "char_vocab.json")
if os.path.exists(vocab_file):
    chars = json.load(open(vocab_file))["chars"]
    assert ids == [chars.index(c) for c in text], "minigpt's character ids differ from char_vocab.json"

model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
n = model.config.n_positions
assert len(ids) <= n, f"keep the text within the context ({n} tokens) for this check"
with torch.no_grad():
    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
theirs = [float(logp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
diff = max(abs(a - b) for a, b in zip(ours["logprobs"], theirs))
print(f"{model_dir}: {len(ids)} tokens, max |Δ logprob| = {diff:.2e} (transformers vs minigpt score)")
sys.exit(0 if diff <= 1e-4 else 1)

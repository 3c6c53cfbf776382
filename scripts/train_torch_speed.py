#!/usr/bin/env python3
"""Training throughput of PyTorch (2 threads) on the same model shape and batch as a minigpt
training config, for a side-by-side tokens/s figure. Not part of CI.

    /tmp/hfvenv/bin/python scripts/train_torch_speed.py /tmp/tspeed/train.toml --steps 25

The model is transformers' GPT2LMHeadModel with the config's sizes and activation (the
architecture minigpt trains), AdamW with the config's learning rate, weight decay and beta2, dropout as configured,
gradient-norm clipping, character-level batches of the config's corpus.
"""
import argparse
import time
import tomllib

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ap = argparse.ArgumentParser()
ap.add_argument("config")
ap.add_argument("--steps", type=int, default=25)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)
cfg = tomllib.load(open(args.config, "rb"))
m, t = cfg["model"], cfg["train"]
import os
path = os.path.join(os.path.dirname(os.path.abspath(args.config)), cfg["data"]["path"])  # as minigpt resolves it
text = open(path, encoding="utf-8").read()
chars = sorted(set(text))
data = torch.tensor([chars.index(c) for c in text[: int(len(text) * 0.9)]], dtype=torch.long)
model = GPT2LMHeadModel(GPT2Config(vocab_size=len(chars), n_positions=m["block_size"], n_embd=m["n_embd"],
                                   n_layer=m["n_layer"], n_head=m["n_head"], resid_pdrop=m.get("dropout", 0.0),
                                   activation_function=m.get("activation", "gelu"),
                                   embd_pdrop=m.get("dropout", 0.0), attn_pdrop=0.0)).train()
opt = torch.optim.AdamW(model.parameters(), lr=t["learning_rate"], betas=(0.9, t.get("beta2", 0.99)),
                        weight_decay=t.get("weight_decay", 0.0))
b, block = t["batch_size"], m["block_size"]
g = torch.Generator().manual_seed(0)


def step():
    ix = torch.randint(len(data) - block - 1, (b,), generator=g)
    x = torch.stack([data[i:i + block] for i in ix])
    y = torch.stack([data[i + 1:i + block + 1] for i in ix])
    logits = model(x).logits
    loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if t.get("grad_clip", 0) > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
    opt.step()
    return loss.item()


step()  # warm-up
start = time.perf_counter()
for _ in range(args.steps):
    loss = step()
secs = time.perf_counter() - start
print(f"PyTorch {torch.__version__}, {args.threads} threads, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, "
      f"batch {b}x{block}: {args.steps * b * block / secs:.0f} tokens/s ({secs / args.steps * 1e3:.0f} ms/step), last loss {loss:.3f}")

#!/usr/bin/env python3
"""Hugging Face transformers (PyTorch) on the same measurements as `minigpt bench`: prefill
tokens/s of random prompts, then greedy decode tokens/s with the KV cache, best of N repeats.

    /tmp/hfvenv/bin/python scripts/bench_hf.py /tmp/gpt2-random --threads 2 --batch 1,8

Decode is timed two ways: a hand-written loop over `model(...)` with `past_key_values` (the
same work as minigpt's loop) and `model.generate` (what users call; adds its own overhead).
"""
import argparse
import time

import torch
from transformers import GPT2LMHeadModel

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--prompt-len", type=int, default=128)
ap.add_argument("--new-tokens", type=int, default=64)
ap.add_argument("--batch", default="1,8")
ap.add_argument("--repeats", type=int, default=3)
args = ap.parse_args()

torch.set_num_threads(args.threads)
model = GPT2LMHeadModel.from_pretrained(args.model, dtype=torch.float32).eval()
vocab = model.config.vocab_size
print(f"transformers on {args.model}, torch {torch.__version__}, {args.threads} threads, "
      f"prompt {args.prompt_len} tokens, {args.new_tokens} decode steps, best of {args.repeats}")
print(f"{'batch':>6} {'prefill tok/s':>14} {'decode tok/s':>14} {'ms/decode step':>16} {'TTFT ms':>10} {'generate() tok/s':>18}")
g = torch.Generator().manual_seed(0)
for b in [int(x) for x in args.batch.split(",")]:
    ids = torch.randint(0, vocab, (b, args.prompt_len), generator=g)
    best_p = best_d = best_g = float("inf")
    with torch.inference_mode():
        for rep in range(args.repeats + 1):  # the first round is a warm-up
            t0 = time.perf_counter()
            out = model(ids, use_cache=True, logits_to_keep=1)
            t1 = time.perf_counter()
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(args.new_tokens):
                out = model(nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t2 = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
            t3 = time.perf_counter()
            if rep > 0:
                best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
                best_g = min(best_g, (t3 - t2) - (t1 - t0))
    print(f"{b:>6} {b * args.prompt_len / best_p:>14.1f} {b * args.new_tokens / best_d:>14.1f} "
          f"{best_d * 1e3 / args.new_tokens:>16.2f} {best_p * 1e3:>10.1f} {b * args.new_tokens / best_g:>18.1f}")

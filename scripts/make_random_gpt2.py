#!/usr/bin/env python3
"""Write a randomly initialised GPT-2-124M directory (transformers' default GPT2Config) for
benchmarks: config.json + model.safetensors (F32), no tokenizer files (minigpt then uses its
built-in GPT-2 vocabulary).

    /tmp/hfvenv/bin/python scripts/make_random_gpt2.py /tmp/gpt2-random
"""
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpt2-random"
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config()).eval()
model.save_pretrained(out, safe_serialization=True)
print(f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")

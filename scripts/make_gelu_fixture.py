#!/usr/bin/env python3
"""Parity fixture for the exact-erf GELU (`activation_function: "gelu"`, nanoGPT's `nn.GELU()`,
the activation minigpt trains with): a small random character-level GPT-2 in transformers and
its full logits on one sequence. Run by a developer, never by CI.

    /tmp/hfvenv/bin/python scripts/make_gelu_fixture.py

Writes tests/fixtures/tiny-char-gelu/ (config.json, model.safetensors) and
tests/fixtures/reference/tiny-char-gelu.json (ids, logits [T][V] in float32 from transformers).
As in make_gpt2_fixture.py, weights are rounded to float16 first (stored F16, computed in f32),
and initialised large (std 0.2, the MLP's output projection ×8) so that the MLP inputs reach the range where erf and tanh
GELUs differ by far more than the test's tolerance.
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
torch.set_num_threads(2)
torch.manual_seed(4)

cfg = GPT2Config(vocab_size=40, n_positions=32, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
                 activation_function="gelu", bos_token_id=None, eos_token_id=None)
model = GPT2LMHeadModel(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.normal_(0.0, 0.05)
        elif ".ln_" in name or name.startswith("transformer.ln_f"):
            p.normal_(1.0, 0.1)
        elif name.endswith("mlp.c_proj.weight"):
            p.mul_(8.0)  # amplify the MLP's output, and with it the activations' difference
        p.copy_(p.half().float())
out = os.path.join(FIX, "tiny-char-gelu")
os.makedirs(out, exist_ok=True)
cfg.save_pretrained(out)
sd = {k.removeprefix("transformer."): v.half().contiguous()
      for k, v in model.state_dict().items() if k != "lm_head.weight" and not k.endswith(".attn.bias")}
save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})

ids = torch.randint(0, cfg.vocab_size, (24,), generator=torch.Generator().manual_seed(5)).tolist()
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
    # The same weights with GPT-2's tanh GELU: how far apart the two activations put the logits.
    model.config.activation_function = "gelu_new"
    for block in model.transformer.h:
        from transformers.activations import ACT2FN
        block.mlp.act = ACT2FN["gelu_new"]
    tanh_logits = model(torch.tensor([ids])).logits[0]
gap = (logits - tanh_logits).abs().max().item()
with open(os.path.join(FIX, "reference", "tiny-char-gelu.json"), "w") as f:
    json.dump({"ids": ids, "logits": logits.tolist(), "max_abs_gap_to_gelu_new": gap}, f)
print("max |logits(gelu) - logits(gelu_new)| =", gap)

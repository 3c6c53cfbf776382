#!/usr/bin/env python3
"""Build the GPT-2 family parity fixtures under tests/fixtures/family/ (run by a developer,
never by CI).

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python scripts/make_gpt2_family_fixtures.py

One small random checkpoint per published GPT-2 configuration (gpt2, gpt2-medium, gpt2-large,
gpt2-xl, distilgpt2), each with that family's config.json keys as the Hub publishes them
(legacy `n_ctx` next to `n_positions`, distilgpt2's generation and label keys, gpt2-xl's
`output_past`, …) and its head count, but a small vocabulary, context and head width and 3
blocks (distilgpt2 keeps its 6) so the files stay small. A last variant, `ctx-only`, spells the context only as `n_ctx`
(as very old configs do); transformers then ignores it and uses GPT2Config's default
n_positions (1024), which minigpt must do too.

For each: config.json, model.safetensors (F16 values, the reference computed in float32; without the `transformer.` prefix as the Hub's
files are), and reference.json with the logits transformers' GPT2LMHeadModel computes for one
token sequence (float32).
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "family")
torch.set_num_threads(2)

COMMON = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
}

# name: (published keys beyond COMMON, n_layer and n_head as published). Shrunk: vocab 96,
# context 48, head width 4 (n_embd = 4 n_head), 3 blocks (distilgpt2 keeps its 6).
FAMILY = {
    "gpt2": ({}, 12, 12),
    "gpt2-medium": ({"n_special": 0, "predict_special_tokens": True}, 24, 16),
    "gpt2-large": ({}, 36, 20),
    "gpt2-xl": ({"output_past": True}, 48, 25),
    "distilgpt2": ({
        "_num_labels": 1, "do_sample": False, "eos_token_ids": None, "finetuning_task": None,
        "id2label": {"0": "LABEL_0"}, "is_decoder": False, "label2id": {"LABEL_0": 0},
        "length_penalty": 1.0, "max_length": 20, "num_beams": 1, "num_labels": 1,
        "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False,
        "output_past": True, "pruned_heads": {}, "repetition_penalty": 1.0, "temperature": 1.0,
        "top_k": 50, "top_p": 1.0, "torchscript": False, "use_bfloat16": False,
    }, 6, 12),
}
VOCAB, CTX, HEAD_DIM = 96, 48, 4


def build(name, published, n_layer, n_head, ctx_only=False):
    n_embd = HEAD_DIM * n_head
    layers = n_layer if name == "distilgpt2" else min(n_layer, 3)
    raw = dict(COMMON, **published, vocab_size=VOCAB, n_embd=n_embd, n_head=n_head,
               n_layer=layers, n_ctx=CTX, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    if not ctx_only:
        raw["n_positions"] = CTX
    # transformers reads the same dict from config.json.
    cfg = GPT2Config.from_dict(raw)
    torch.manual_seed(sum(map(ord, name)))
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bias"):
                p.normal_(0.0, 0.05)
            elif ".ln_" in pname or pname.startswith("transformer.ln_f"):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.2)
            # Rounded to float16, so the F16 file holds the weights exactly while the reference
            # is computed in float32.
            p.copy_(p.half().float())
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(raw, f, indent=2, sort_keys=True)
    sd = {k.removeprefix("transformer."): v.half().contiguous()
          for k, v in model.state_dict().items()
          if k != "lm_head.weight" and not k.endswith(".attn.bias")}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    ids = [(7 * i + 3) % VOCAB for i in range(20)]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    ref = {
        "source": f"transformers {__import__('transformers').__version__} GPT2LMHeadModel, float32",
        "n_positions": cfg.n_positions,
        "input_ids": ids,
        "logits": [[float(x) for x in row] for row in logits],
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "layers", layers, "heads", n_head, "n_embd", n_embd, "n_positions", cfg.n_positions)


for name, (published, n_layer, n_head) in FAMILY.items():
    build(name, published, n_layer, n_head)
build("ctx-only", {}, 2, 12, ctx_only=True)

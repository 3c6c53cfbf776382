#!/usr/bin/env python3
"""Build the Hugging Face parity fixtures under tests/fixtures/ (run by a developer, never by CI).

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors tokenizers
    /tmp/hfvenv/bin/python scripts/make_gpt2_fixture.py

Writes:
  tests/fixtures/tiny-gpt2/            config.json + model.safetensors (F16 values, see below)
  tests/fixtures/reference/tiny-gpt2.json        token ids, log-probs, greedy continuations
  tests/fixtures/reference/tiny-gpt2-logits.safetensors   full logits of one sequence [T, V]
  tests/fixtures/tokenizer/gpt2-ids.json         GPT-2 ids of tricky strings (Hugging Face)
  tests/fixtures/tokenizer/small-bpe/            a small byte-level BPE (tokenizer.json,
                                                 vocab.json, merges.txt) and its ids

The model's weights are rounded to float16 before anything is computed, so the F16 file holds
them exactly while every reference is computed in float32 (the file stays small, the tolerance
stays 1e-4). The GPT-2 vocabulary comes from tiktoken-rs's encoder.json / vocab.bpe in cargo's
registry (GPT-2's own files), so nothing is downloaded.
"""
import glob
import json
import os
import sys

import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
torch.set_num_threads(2)

TRICKY = [
    "Hello world",
    "café naïve Zoë résumé Ångström",
    "😀 👍🏽 family: 👨‍👩‍👧 flags 🇫🇷",
    "日本語のテキスト、中文字符和한국어",
    "a    b     c",
    "   leading and trailing   ",
    "line one\n\nline two\r\n\tindented\n",
    "it's don't we're I've they'll he'd I'm 'S 'LL",
    "1234567890 3.14159 1,000,000 2024-11-27",
    "mixed: <|endoftext|> after the special token",
    "symbols !@#$%^&*()_+-=[]{}|;:'\",.<>/?`~",
    "",
    " ",
    "\n",
]


def gpt2_assets():
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/tiktoken-rs-*/assets")))
    if not hits:
        sys.exit("tiktoken-rs is not in cargo's registry: run `cargo fetch` first")
    return os.path.join(hits[-1], "encoder.json"), os.path.join(hits[-1], "vocab.bpe")


def tokenizer_fixtures():
    enc, bpe = gpt2_assets()
    tok = GPT2TokenizerFast(vocab=enc, merges=bpe)
    assert tok.encode("Hello world") == [15496, 995], tok.encode("Hello world")
    out = os.path.join(FIX, "tokenizer")
    os.makedirs(out, exist_ok=True)
    cases = [{"text": s, "ids": tok.encode(s)} for s in TRICKY]
    for c in cases:
        assert tok.decode(c["ids"]) == c["text"], c
    with open(os.path.join(out, "gpt2-ids.json"), "w") as f:
        json.dump({"source": f"transformers GPT2TokenizerFast on {os.path.basename(enc)} + vocab.bpe", "cases": cases}, f, ensure_ascii=False, indent=1)

    # A small byte-level BPE trained by Hugging Face tokenizers, saved in both layouts.
    small = os.path.join(out, "small-bpe")
    os.makedirs(small, exist_ok=True)
    corpus = [s * 3 for s in TRICKY] + [
        "The quick brown fox jumps over the lazy dog. " * 20,
        "To be, or not to be, that is the question: " * 20,
    ]
    bl = ByteLevelBPETokenizer()
    bl.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"])
    bl.save(os.path.join(small, "tokenizer.json"))
    bl.save_model(small)  # vocab.json + merges.txt
    small_cases = [{"text": s, "ids": bl.encode(s).ids} for s in TRICKY]
    with open(os.path.join(small, "ids.json"), "w") as f:
        json.dump({"source": "tokenizers ByteLevelBPETokenizer (vocab 400)", "cases": small_cases}, f, ensure_ascii=False, indent=1)
    return tok


def model_fixture(tok):
    torch.manual_seed(20261127)
    cfg = GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     initializer_range=0.2)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Non-trivial LayerNorm and bias values, so a swapped gamma/beta or a dropped bias shows.
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                p.normal_(1.0, 0.1)
            p.copy_(p.half().float())
    out = os.path.join(FIX, "tiny-gpt2")
    os.makedirs(out, exist_ok=True)
    cfg.save_pretrained(out)
    sd = {k.removeprefix("transformer."): v.half().contiguous()
          for k, v in model.state_dict().items() if k != "lm_head.weight" and not k.endswith(".attn.bias")}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})

    n_pos = cfg.n_positions

    def logits_of(ids):
        with torch.no_grad():
            return model(torch.tensor([ids])).logits[0]

    def margin(row):
        top = torch.topk(row, 2).values
        return float(top[0] - top[1])

    ref = {"n_positions": n_pos}
    seq = tok.encode("The quick brown fox jumps over the lazy")[:8]
    full = logits_of(seq)
    ref["logits_input_ids"] = seq
    save_file({"logits": full.contiguous()}, os.path.join(FIX, "reference", "tiny-gpt2-logits.safetensors"))

    text = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer"
    ids = tok.encode(text)
    assert len(ids) <= n_pos
    lp = torch.log_softmax(logits_of(ids).double(), -1)
    ref["score_text"] = text
    ref["score_ids"] = ids
    ref["score_logprobs"] = [float(lp[i, ids[i + 1]]) for i in range(len(ids) - 1)]

    # Longer than the context: token i is predicted from the n_positions tokens before it.
    long_text = " ".join(["Once upon a time there was a model that read only sixty-four tokens."] * 12)
    long_ids = tok.encode(long_text)
    assert len(long_ids) > 2 * n_pos
    long_lp = []
    for i in range(1, len(long_ids)):
        window = long_ids[max(0, i - n_pos):i]
        row = torch.log_softmax(logits_of(window)[-1].double(), -1)
        long_lp.append(float(row[long_ids[i]]))
    ref["long_ids"] = long_ids
    ref["long_logprobs"] = long_lp

    prompt = tok.encode("Machine learning is")
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False,
                             pad_token_id=50256, eos_token_id=None)[0].tolist()[len(prompt):]
    # The same tokens without a cache, checking each step's margin so that float noise cannot flip it.
    seq2 = list(prompt)
    for t in gen:
        row = logits_of(seq2)[-1]
        assert int(row.argmax()) == t and margin(row) > 1e-3, margin(row)
        seq2.append(t)
    ref["greedy_prompt"] = prompt
    ref["greedy_tokens"] = gen

    # nanoGPT's loop well past the context: no cache, each step sees the last n_positions tokens.
    seq3 = list(prompt)
    min_margin = 1e9
    for _ in range(2 * n_pos + 20):
        row = logits_of(seq3[-n_pos:])[-1]
        min_margin = min(min_margin, margin(row))
        seq3.append(int(row.argmax()))
    assert min_margin > 1e-4, min_margin
    ref["window_greedy_tokens"] = seq3[len(prompt):]
    ref["window_min_margin"] = min_margin
    with open(os.path.join(FIX, "reference", "tiny-gpt2.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("greedy:", gen)
    print("window min margin:", min_margin)


def beam_fixture():
    """Hugging Face beam search on the saved tiny model (loaded back from its F16 file)."""
    model = GPT2LMHeadModel.from_pretrained(os.path.join(FIX, "tiny-gpt2"), dtype=torch.float32).eval()
    prompt = [37573, 4673, 318]  # "Machine learning is"
    cases = []
    for num_beams, n_ret, lp, early in [(4, 1, 1.0, False), (3, 3, 1.0, False), (5, 2, 2.0, True)]:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=12, num_beams=num_beams,
                                 num_return_sequences=n_ret, length_penalty=lp, early_stopping=early,
                                 do_sample=False, pad_token_id=50256, eos_token_id=None,
                                 output_scores=True, return_dict_in_generate=True)
        seqs = [row[len(prompt):].tolist() for row in out.sequences]
        cases.append({"num_beams": num_beams, "num_return_sequences": n_ret, "length_penalty": lp,
                      "early_stopping": early, "sequences": seqs,
                      "scores": [float(x) for x in out.sequences_scores]})
    with open(os.path.join(FIX, "reference", "tiny-gpt2-beam.json"), "w") as f:
        json.dump({"prompt": prompt, "max_new_tokens": 12, "cases": cases}, f, indent=1)
    print("beam:", [c["scores"] for c in cases])


if __name__ == "__main__":
    os.makedirs(os.path.join(FIX, "reference"), exist_ok=True)
    if sys.argv[1:] == ["--beam-only"]:
        beam_fixture()
    else:
        model_fixture(tokenizer_fixtures())
        beam_fixture()

#!/usr/bin/env python3
"""MAUVE's feature reference: the final-layer hidden state at the last token, from transformers.

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python scripts/make_hidden_fixture.py

Loads the committed tiny GPT-2 (tests/fixtures/tiny-gpt2) in float32 and writes
tests/fixtures/reference/tiny-gpt2-hidden.json: token sequences and, for each, the vector
mauve-text's featurize_tokens_from_model takes, `outputs.hidden_states[-1][:, -1, :]`, i.e.
after the final LayerNorm (ln_f). A sequence longer than n_positions is read as its last
n_positions tokens, as minigpt does (mauve-text truncates the text beforehand instead).
"""
import json
import os

import torch
from transformers import GPT2Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "tests", "fixtures", "tiny-gpt2")
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "tiny-gpt2-hidden.json")
torch.set_num_threads(2)


def main():
    model = GPT2Model.from_pretrained(MODEL, torch_dtype=torch.float32).eval()
    n = model.config.n_positions
    g = torch.Generator().manual_seed(18)
    lengths = [1, 2, 7, 33, n, n + 37]
    texts = [torch.randint(0, model.config.vocab_size, (k,), generator=g).tolist() for k in lengths]
    hidden = []
    with torch.no_grad():
        for ids in texts:
            window = torch.tensor([ids[-n:]])
            out = model(input_ids=window, output_hidden_states=True)
            h = out.hidden_states[-1][0, -1]
            # hidden_states[-1] is last_hidden_state: ln_f applied.
            assert torch.equal(h, out.last_hidden_state[0, -1])
            hidden.append([float(x) for x in h])
    data = {
        "source": "scripts/make_hidden_fixture.py: transformers GPT2Model, hidden_states[-1][0, -1]",
        "n_positions": n,
        "texts": texts,
        "hidden": hidden,
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(texts)} texts)")


if __name__ == "__main__":
    main()

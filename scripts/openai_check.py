#!/usr/bin/env python3
"""The official `openai` Python client against a running `minigpt serve`: a completion, a
streamed one, and logprobs. Prints what it got as one JSON object for the Rust test
(crates/minigpt-cli/tests/integration/serve.rs) to hold to `minigpt generate` and `score`.

    python scripts/openai_check.py http://127.0.0.1:PORT/v1

Needs the `openai` package: .ci/run installs it into a venv under the system temp dir
(${TMPDIR:-/tmp}/minigpt-openai-venv).
"""
import json
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="not-needed")
model = client.models.list().data[0].id
prompt = "ROMEO:\nBut soft"

whole = client.completions.create(model=model, prompt=prompt, max_tokens=40, temperature=0.8, seed=7)
streamed = "".join(
    chunk.choices[0].text
    for chunk in client.completions.create(
        model=model, prompt=prompt, max_tokens=40, temperature=0.8, seed=7, stream=True)
    if chunk.choices
)
greedy = client.completions.create(model=model, prompt=prompt, max_tokens=30, temperature=0, logprobs=3)
lp = greedy.choices[0].logprobs
try:
    client.completions.create(model=model, prompt=prompt, max_tokens=5, top_p=2.0)
    error = None
except openai.BadRequestError as e:
    error = {"status": e.status_code, "message": e.body.get("message") if isinstance(e.body, dict) else str(e.body)}
print(json.dumps({
    "openai_version": openai.__version__,
    "model": model,
    "text": whole.choices[0].text,
    "finish_reason": whole.choices[0].finish_reason,
    "usage": whole.usage.model_dump(),
    "streamed": streamed,
    "greedy": greedy.choices[0].text,
    "token_logprobs": lp.token_logprobs,
    "top_logprobs": lp.top_logprobs,
    "error": error,
}))

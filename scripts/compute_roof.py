#!/usr/bin/env python3
"""The compute roof of batching on the shipped model: the cores' peak f32 FMA rate
(scripts/fma_peak.c, built here with gcc -O3 -march=native -fopenmp) over the matrix products
one token takes (the blocks' four products and the LM head: 2 · (layers · 12 · n_embd² +
n_embd · vocab) FLOPs). No batch decodes faster than that, so the roof over the engine's
batch-1 tokens/s bounds the ratio that batching, and any server on the engine, can show.

    python3 scripts/compute_roof.py --threads 2 --batch1 7166   # batch-1 decode tokens/s
    python3 scripts/compute_roof.py --threads 2 --engine engine.jsonl  # `minigpt bench --json`
    # and the server's throughputs (scripts/bench_serve.py --json-out) against the roof:
    python3 scripts/compute_roof.py --engine engine.jsonl --serve serve.jsonl

Used by scripts/bench_serve.sh. Needs gcc.
"""
import argparse
import json
import os
import subprocess
import tempfile

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch1", type=float, help="the engine's batch-1 decode tokens/s")
p.add_argument("--engine", help="`minigpt bench --json` lines; batch 1's decode tokens/s is used")
p.add_argument("--serve", help="scripts/bench_serve.py --json-out lines: each point's share "
               "of the roof, and what 6x the one-client figure would take")
p.add_argument("--config", default="models/minigpt-shakespeare/config.json")
args = p.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    exe = os.path.join(tmp, "fma_peak")
    subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", os.path.join(here, "fma_peak.c"),
                    "-o", exe], check=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    peak = json.loads(subprocess.run([exe], env=env, capture_output=True, text=True,
                                     check=True).stdout)

cfg = json.load(open(args.config))
c, layers, vocab = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"]
flop = 2 * (layers * 12 * c * c + c * vocab)
roof = peak["fma_gflop_s"] * 1e9 / flop
b1 = args.batch1
if args.engine:
    rows = [json.loads(line) for line in open(args.engine) if line.startswith("{")]
    b1 = next(r["decode_tokens_per_s"] for r in rows if r["batch"] == 1)
line = (f"compute roof: {peak['fma_gflop_s']:.1f} GFLOP/s peak f32 FMA ({peak['lanes']} lanes, "
        f"{peak['threads']} threads) / {flop / 1e6:.2f} MFLOP of matrix products a token = "
        f"{roof:.0f} tokens/s at most")
if b1:
    line += (f"; over the engine's batch 1 ({b1:.0f} tokens/s): {roof / b1:.2f}x, the most any "
             f"batch can give here")
print(line)
shares = {}
if args.engine:
    for r in rows:
        shares[f"engine_batch_{r['batch']}"] = r["decode_tokens_per_s"] / roof
    print("the engine alone, share of the roof: " + ", ".join(
        f"batch {r['batch']} {r['decode_tokens_per_s']:.0f} tokens/s = "
        f"{100 * r['decode_tokens_per_s'] / roof:.0f} %" for r in rows))
if args.serve:
    served = [json.loads(line) for line in open(args.serve) if line.startswith("{")]
    for r in served:
        shares[f"serve_clients_{r['clients']}"] = r["tokens_per_s"] / roof
    print("the server, share of the roof: " + ", ".join(
        f"{r['clients']} clients {r['tokens_per_s']:.0f} tokens/s = "
        f"{100 * r['tokens_per_s'] / roof:.0f} %" for r in served))
    one = next((r["tokens_per_s"] for r in served if r["clients"] == 1), None)
    if one:
        print(f"6x the server's one client = {6 * one:.0f} tokens/s = {600 * one / roof:.0f} % of "
              f"the roof (matrix products alone, with no time for attention, norms, sampling, "
              f"HTTP or the clients)")
print(json.dumps({"shares_of_roof": {k: round(v, 3) for k, v in shares.items()}}))
print(json.dumps({"fma_gflop_s": peak["fma_gflop_s"], "flop_per_token": flop,
                  "roof_tokens_per_s": round(roof), "batch1_tokens_per_s": b1,
                  "max_ratio": round(roof / b1, 2) if b1 else None}))

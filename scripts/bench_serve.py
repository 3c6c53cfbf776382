#!/usr/bin/env python3
"""Load on `minigpt serve`: C concurrent streaming clients for D seconds each, C in 1, 4, 16,
64. Prints, per concurrency, aggregate output tokens/s, p50/p99 time per output token (the gap
between a client's consecutive chunks), requests, errors, and the ratio to one client; then
checks that the server holds no rows or requests once the clients are gone.

    python3 scripts/bench_serve.py [--minigpt target/release/minigpt] [--seconds 30]
                                   [--model DIR] [--max-tokens 128] [--clients 1,4,16,64]

Python's standard library only (http.client, threads).
"""
import argparse
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--minigpt", default="target/release/minigpt")
p.add_argument("--seconds", type=float, default=30)
p.add_argument("--model")
p.add_argument("--max-tokens", type=int, default=128)
p.add_argument("--clients", default="1,4,16,64")
args = p.parse_args()

cmd = [args.minigpt, "serve", "--port", "0", "--max-batch", "64", "--max-queue", "256"]
if args.model:
    cmd += ["--model", args.model]
server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
first = server.stderr.readline()
host, port = first.split("http://")[1].split()[0].split(":")
threading.Thread(target=server.stderr.read, daemon=True).start()


def get(path):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", path)
    return json.loads(c.getresponse().read())


def client(i, deadline, out):
    seed = i * 1_000_003
    while time.monotonic() < deadline:
        seed += 1
        body = json.dumps({"prompt": "ROMEO:\n", "max_tokens": args.max_tokens,
                           "temperature": 1.0, "seed": seed, "stream": True})
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=60)
            c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                out["errors"] += 1
                r.read()
                continue
            last = time.monotonic()
            for line in r:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    out["errors"] += 1
                    break
                now = time.monotonic()
                # A chunk per token; the choice's last chunk carries its finish reason.
                if chunk["choices"] and chunk["choices"][0].get("finish_reason") is None:
                    out["tokens"] += 1
                    out["gaps"].append(now - last)
                last = now
            out["requests"] += 1
            c.close()
        except Exception as e:  # noqa: BLE001 - any failure counts
            out["errors"] += 1
            out["last_error"] = repr(e)


rows = []
for n in [int(x) for x in args.clients.split(",")]:
    outs = [{"tokens": 0, "gaps": [], "requests": 0, "errors": 0} for _ in range(n)]
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [threading.Thread(target=client, args=(i, deadline, outs[i])) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    tokens = sum(o["tokens"] for o in outs)
    gaps = sorted(g for o in outs for g in o["gaps"])
    q = lambda f: gaps[min(len(gaps) - 1, int(f * len(gaps)))] * 1000 if gaps else float("nan")
    rows.append({"clients": n, "tokens_per_s": tokens / elapsed, "p50_ms": q(0.5), "p99_ms": q(0.99),
                 "requests": sum(o["requests"] for o in outs), "errors": sum(o["errors"] for o in outs),
                 "last_error": next((o["last_error"] for o in outs if "last_error" in o), None)})
    time.sleep(0.5)

deadline = time.monotonic() + 10
while True:
    h = get("/health")
    if h["running_rows"] == 0 and h["requests"] == 0 or time.monotonic() > deadline:
        break
    time.sleep(0.1)
server.terminate()
server.wait()

base = rows[0]["tokens_per_s"]
print(f"minigpt serve, {args.model or 'the shipped model'}, {args.seconds:.0f} s per concurrency, "
      f"max_tokens {args.max_tokens}, streaming")
print("| clients | output tokens/s | ÷ 1 client | p50 ms/token | p99 ms/token | requests | errors |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['clients']} | {r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base:.2f} | "
          f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']} | {r['errors']} |")
print(f"after the clients: {h['running_rows']} rows, {h['requests']} requests held")
if any(r["errors"] for r in rows):
    print("errors:", [r["last_error"] for r in rows if r["errors"]], file=sys.stderr)
    sys.exit(1)
if h["running_rows"] or h["requests"]:
    sys.exit(1)

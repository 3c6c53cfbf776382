#!/usr/bin/env python3
"""Load on OpenAI-compatible completion servers: C concurrent streaming clients for D seconds
per point, each sending one request after another (the same prompt, a fresh seed each).
Prints, per server and concurrency, aggregate output tokens/s, p50/p99 time per output token
(TPOT: a request's time from its first to its last token over its tokens after the first, as
vLLM's benchmark defines it), p50 time to first token, requests, errors, and the ratio to one
client; for `minigpt serve`, a check that it holds no rows or requests once the clients are gone.

    # `minigpt serve` on the shipped model (what scripts/bench_serve.sh runs first):
    python3 scripts/bench_serve.py --clients 1,4,16,64 --max-tokens 96
    # minigpt serve against llama-server on the same GPT-2 (both started here, interleaved):
    python3 scripts/bench_serve.py --model DIR --llama-server BIN --gguf FILE --clients 1,4,16

The clients are light so they take little of the CPU the servers share with them: raw sockets,
one thread each, events counted in the raw bytes; only the last event, which carries the
`usage` (`stream_options.include_usage`), is parsed. Python's standard library only.
"""
import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("--minigpt", default="target/release/minigpt")
p.add_argument("--seconds", type=float, default=30)
p.add_argument("--model", help="minigpt's --model (default: the shipped model)")
p.add_argument("--json-out", help="also write the rows here, one JSON object a line")
p.add_argument("--serve-args", default="",
               help="more flags for `minigpt serve`, e.g. '--http-threads 2'")
p.add_argument("--max-tokens", type=int, default=96)
p.add_argument("--prompt", default="ROMEO:\n")
p.add_argument("--clients", default="1,4,16,64")
p.add_argument("--threads", type=int, default=2, help="llama-server's -t and -tb")
p.add_argument("--llama-server", help="a llama-server binary: also measure it on --gguf")
p.add_argument("--gguf", help="the same model as --model, as GGUF, for llama-server")
args = p.parse_args()
concurrencies = [int(x) for x in args.clients.split(",")]


class Server:
    """A server process on a free loopback port, with its name for the table."""

    def __init__(self, name, cmd, port, ready_line=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        if ready_line is not None:
            # minigpt prints its address on its first line (--port 0).
            first = self.proc.stderr.readline()
            self.port = int(first.split("http://")[1].split()[0].rsplit(":", 1)[1])
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.get("/health").get("status") == "ok":
                    break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{name} did not start")
            time.sleep(0.2)

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def minigpt_server():
    cmd = [args.minigpt, "serve", "--port", "0", "--max-batch", "64", "--max-queue", "256"]
    if args.model:
        cmd += ["--model", args.model]
    cmd += args.serve_args.split()
    return Server("minigpt serve", cmd, 0, ready_line=True)


def llama_server():
    port = free_port()
    # 16 slots of the model's 1024 positions, continuous batching (llama-server's default).
    cmd = [args.llama_server, "-m", args.gguf, "--host", "127.0.0.1", "--port", str(port),
           "-t", str(args.threads), "-tb", str(args.threads), "-np", "16", "-c", "16384",
           "--no-webui", "--log-disable"]
    return Server("llama-server", cmd, port)


def request(port, seed):
    """One streamed completion: (completion tokens, time to first token, TPOT) or raises."""
    body = json.dumps({"prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": 1.0,
                       "seed": seed, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    s.sendall(head + body)
    parts, first, last, tail = [], None, None, b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        parts.append(chunk)
        # An event's "data: " may straddle two reads: look at the last 5 bytes too.
        if (tail + chunk).find(b"data: ") >= 0:
            now = time.monotonic()
            first = first or now
            last = now
        tail = chunk[-5:]
    s.close()
    raw = b"".join(parts)
    status = raw.split(b"\r\n", 1)[0]
    if b" 200 " not in status:
        raise RuntimeError(status.decode(errors="replace"))
    events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    if not events or events[-1].strip() != b"[DONE]":
        raise RuntimeError("the stream did not end with [DONE]")
    usage = None
    for e in reversed(events[:-1]):
        chunk = json.loads(e)
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        if chunk.get("usage"):
            usage = chunk["usage"]
            break
    if usage is None:
        raise RuntimeError("no usage in the stream")
    n = usage["completion_tokens"]
    # The last token's event arrives with (or just before) the finish and usage events.
    tpot = (last - first) / (n - 1) if n > 1 else None
    return n, first - t0, tpot


def load(server, n):
    outs = [{"tokens": 0, "tpot": [], "ttft": [], "requests": 0, "errors": 0}
            for _ in range(n)]

    def client(i, deadline, out):
        seed = i * 1_000_003
        while time.monotonic() < deadline:
            seed += 1
            try:
                tokens, ttft, tpot = request(server.port, seed)
                out["tokens"] += tokens
                out["ttft"].append(ttft)
                if tpot is not None:
                    out["tpot"].append(tpot)
                out["requests"] += 1
            except Exception as e:  # noqa: BLE001 - any failure counts
                out["errors"] += 1
                out["last_error"] = repr(e)

    request(server.port, 1)  # warm-up
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [threading.Thread(target=client, args=(i, deadline, outs[i])) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start

    def q(xs, f):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(f * len(xs)))] * 1000 if xs else float("nan")

    tpot = [x for o in outs for x in o["tpot"]]
    ttft = [x for o in outs for x in o["ttft"]]
    return {"server": server.name, "clients": n,
            "tokens_per_s": sum(o["tokens"] for o in outs) / elapsed,
            "tpot_p50_ms": q(tpot, 0.5), "tpot_p99_ms": q(tpot, 0.99),
            "ttft_p50_ms": statistics.median(ttft) * 1000 if ttft else float("nan"),
            "requests": sum(o["requests"] for o in outs),
            "errors": sum(o["errors"] for o in outs),
            "last_error": next((o["last_error"] for o in outs if "last_error" in o), None)}


def held(server):
    """(rows, requests) `minigpt serve` still holds, after up to 10 s for them to drain."""
    deadline = time.monotonic() + 10
    while True:
        h = server.get("/health")
        if (h["running_rows"] == 0 and h["requests"] == 0) or time.monotonic() > deadline:
            return h["running_rows"], h["requests"]
        time.sleep(0.1)


rows, leaks = [], []
makers = [minigpt_server] + ([llama_server] if args.llama_server else [])
# Interleaved: at each concurrency, every server in turn, each freshly started.
for n in concurrencies:
    for make in makers:
        server = make()
        rows.append(load(server, n))
        if server.name == "minigpt serve":
            leaks.append(held(server))
        server.stop()
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

if args.json_out:
    with open(args.json_out, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)

model = args.model or "the shipped model"
print()
print(f"{model}: {args.seconds:.0f} s per point, prompt {args.prompt!r}, max_tokens "
      f"{args.max_tokens}, temperature 1, streaming")
print("| server | clients | output tokens/s | ÷ 1 client | ÷ llama-server | TPOT p50 ms | "
      "TPOT p99 ms | TTFT p50 ms | requests | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    one = next(x for x in rows if x["server"] == r["server"] and x["clients"] == concurrencies[0])
    peer = next((x for x in rows if x["server"] == "llama-server" and x["clients"] == r["clients"]),
                None)
    vs = f"{r['tokens_per_s'] / peer['tokens_per_s']:.2f}" if peer else "–"
    print(f"| {r['server']} | {r['clients']} | {r['tokens_per_s']:.1f} | "
          f"{r['tokens_per_s'] / one['tokens_per_s']:.2f} | {vs} | {r['tpot_p50_ms']:.2f} | "
          f"{r['tpot_p99_ms']:.2f} | {r['ttft_p50_ms']:.1f} | {r['requests']} | {r['errors']} |")
rows_left = max(x[0] for x in leaks)
requests_left = max(x[1] for x in leaks)
print(f"minigpt serve after the clients left: {rows_left} rows, {requests_left} requests held")
bad = [r for r in rows if r["errors"]]
if bad:
    print("errors:", [(r["server"], r["clients"], r["last_error"]) for r in bad], file=sys.stderr)
if bad or rows_left or requests_left:
    sys.exit(1)

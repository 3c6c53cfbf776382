#!/usr/bin/env python3
"""Workers and the report of `scripts/bench_peers.sh` (run that script, not this file).

    bench_peers.py minigpt DTYPE    `minigpt bench` ($MINIGPT, $MODEL), JSON on stdout; the
                                    system is named $MINIGPT_LABEL (default "minigpt")
    bench_peers.py hf MODEL_DIR     Hugging Face transformers (PyTorch), JSON on stdout
    bench_peers.py llama GGUF       llama.cpp through llama-cpp-python, JSON on stdout
    bench_peers.py load-minigpt DTYPE   one `minigpt generate` of 1 token from a cold process:
                                    wall time and the process's peak RSS
    bench_peers.py load-llama GGUF  the same for llama.cpp: load the GGUF (mmap, llama.cpp's
                                    default), evaluate a 1-token prompt; time and peak RSS
                                    above the Python interpreter's own
    bench_peers.py table RESULTS    the table of every result line in RESULTS (JSON lines)

Every worker measures the same things as `minigpt bench`: greedy decode with a KV cache after
a 32-token random prompt (tokens/s, batch 1 and 8; time to first token = the prompt's
prefill), and the prefill of 512 random tokens at batch 1 (logits of the last position only),
best of N repeats after a warm-up.
"""
import json
import os
import statistics
import sys
import time

SHORT, LONG = 32, 512


def env_int(name, default):
    return int(os.environ.get(name, default))


def peak_rss_mb(children=False):
    import resource
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def best_seconds(run, repeats, setup=lambda: None):
    """Fastest of `repeats` timed calls of `run` (after `setup`), after one warm-up call."""
    best = float("inf")
    for rep in range(repeats + 1):
        setup()
        t0 = time.perf_counter()
        run()
        if rep:
            best = min(best, time.perf_counter() - t0)
    return best


def minigpt(dtype):
    import subprocess
    exe, model = os.environ["MINIGPT"], os.environ["MODEL"]
    new, repeats = env_int("NEW_TOKENS", 128), env_int("REPEATS", 3)
    common = [exe, "bench", "--model", model, "--device", "cpu", "--dtype", dtype, "--json",
              "--repeats", str(repeats)]
    out = {"system": os.environ.get("MINIGPT_LABEL", "minigpt"), "dtype": dtype, "threads": env_int("THREADS", 2),
           "version": subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()}
    env = dict(os.environ, RAYON_NUM_THREADS=str(out["threads"]))
    run = lambda args: [json.loads(l) for l in subprocess.run(
        common + args, capture_output=True, text=True, check=True, env=env).stdout.splitlines()
        if l.startswith("{")]
    for r in run(["--prompt-len", str(SHORT), "--new-tokens", str(new), "--batch", "1,8"]):
        out[f"decode_b{r['batch']}"] = r["decode_tokens_per_s"]
        if r["batch"] == 1:
            out["ttft_ms"] = r["ttft_ms"]
    (r,) = run(["--prompt-len", str(LONG), "--new-tokens", "1", "--batch", "1"])
    out["prefill_512"] = r["prefill_tokens_per_s"]
    out["peak_rss_mb"] = peak_rss_mb(children=True)
    print(json.dumps(out))


def hf(model_dir):
    import torch
    from transformers import GPT2LMHeadModel

    threads = env_int("THREADS", 2)
    new, repeats = env_int("NEW_TOKENS", 128), env_int("REPEATS", 3)
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    out = {"system": "HF transformers", "dtype": "f32", "threads": threads,
           "version": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}"}
    with torch.inference_mode():
        for b in (1, 8):
            ids = torch.randint(0, vocab, (b, SHORT), generator=g)
            best_p = best_d = float("inf")
            for rep in range(repeats + 1):  # round 0 warms up
                t0 = time.perf_counter()
                o = model(ids, use_cache=True, logits_to_keep=1)
                t1 = time.perf_counter()
                past, nxt = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
                for _ in range(new):
                    o = model(nxt, past_key_values=past, use_cache=True)
                    past, nxt = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
                t2 = time.perf_counter()
                if rep:
                    best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
            out[f"decode_b{b}"] = b * new / best_d
            if b == 1:
                out["ttft_ms"] = best_p * 1e3
        ids = torch.randint(0, vocab, (1, LONG), generator=g)
        best = best_seconds(lambda: model(ids, use_cache=True, logits_to_keep=1), repeats)
        out["prefill_512"] = LONG / best
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def llama(gguf):
    import numpy as np
    from llama_cpp import Llama, __version__

    threads = env_int("THREADS", 2)
    new, repeats = env_int("NEW_TOKENS", 128), env_int("REPEATS", 3)
    llm = Llama(model_path=gguf, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    vocab = llm.n_vocab()
    rng = np.random.default_rng(0)
    dtype = "f16" if "f16" in os.path.basename(gguf).lower() else "f32"
    out = {"system": "llama.cpp", "dtype": dtype, "threads": threads,
           "version": f"llama-cpp-python {__version__} (built from source)"}
    prompt = rng.integers(0, vocab, SHORT).tolist()
    best_p = best_d = float("inf")
    for rep in range(repeats + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for _ in range(new):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([nxt])
        t2 = time.perf_counter()
        if rep:
            best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
    out["decode_b1"] = new / best_d
    out["ttft_ms"] = best_p * 1e3
    long = rng.integers(0, vocab, LONG).tolist()
    best = best_seconds(lambda: llm.eval(long), repeats, setup=llm.reset)
    out["prefill_512"] = LONG / best
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def rss_now_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_minigpt(dtype):
    import subprocess
    exe, model = os.environ["MINIGPT"], os.environ["MODEL"]
    env = dict(os.environ, RAYON_NUM_THREADS=os.environ.get("THREADS", "2"))
    t0 = time.perf_counter()
    subprocess.run([exe, "generate", "--model", model, "--dtype", dtype, "--prompt", "Hello",
                    "--max-new-tokens", "1", "--greedy"], check=True, capture_output=True, env=env)
    ms = (time.perf_counter() - t0) * 1e3
    size = os.path.getsize(os.path.join(model, "model.safetensors"))
    print(json.dumps({"system": os.environ.get("MINIGPT_LABEL", "minigpt"), "kind": "load",
                      "dtype": dtype, "load_ms": ms, "peak_rss_mb": peak_rss_mb(children=True),
                      "file_mb": size / 2**20}))


def load_llama(gguf):
    import numpy  # noqa: F401  (imported before the baseline, as llama_cpp imports it)
    from llama_cpp import Llama
    base = rss_now_mb()
    t0 = time.perf_counter()
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=env_int("THREADS", 2), verbose=False)
    llm.eval([464])
    ms = (time.perf_counter() - t0) * 1e3
    dtype = "f16" if "f16" in os.path.basename(gguf).lower() else "f32"
    print(json.dumps({"system": "llama.cpp", "kind": "load", "dtype": dtype, "load_ms": ms,
                      "peak_rss_mb": peak_rss_mb() - base, "file_mb": os.path.getsize(gguf) / 2**20}))


def load_table(rows, f32_file_mb):
    """Loading: time to the first token from a cold process and peak RSS, against the files."""
    systems = {}
    for r in rows:
        systems.setdefault((r["system"], r["dtype"]), []).append(r)
    print("| system | dtype | load + 1 token ms | peak RSS MB | ÷ its file | ÷ the f32 safetensors | rounds |")
    print("|" + "---|" * 7)
    med = {}
    for s in sorted(systems, key=lambda s: (s[0] != "minigpt", s[0], s[1])):
        runs = systems[s]
        ms = statistics.median(r["load_ms"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        file_mb = runs[0]["file_mb"]
        med[s] = (ms, rss)
        print(f"| {s[0]} | {s[1]} | {ms:.0f} | {rss:.0f} | {rss / file_mb:.2f} | "
              f"{rss / f32_file_mb:.2f} | {len(runs)} |")
    for dt in ("f32", "f16"):
        if ("minigpt", dt) in med and ("llama.cpp", dt) in med:
            (m_ms, m_rss), (l_ms, l_rss) = med[("minigpt", dt)], med[("llama.cpp", dt)]
            print(f"  minigpt {dt} vs llama.cpp {dt}: load time {l_ms / m_ms:.2f}× (above 1 = minigpt "
                  f"faster), peak RSS {m_rss / l_rss:.2f}× llama.cpp's")


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    loads = [r for r in rows if r.get("kind") == "load"]
    rows = [r for r in rows if r.get("kind") != "load"]
    if loads:
        f32_file = next(r["file_mb"] for r in loads if r["system"] == "minigpt")
        load_table(loads, f32_file)
        print()
    bw = [r["read_gb_s"] for r in rows if r.get("system") == "bandwidth"]
    if not any(r.get("system") not in ("bandwidth", "weights") for r in rows):
        return
    weights = next(r for r in rows if r.get("system") == "weights")
    systems = {}
    for r in rows:
        if r.get("system") in ("bandwidth", "weights"):
            continue
        systems.setdefault((r["system"], r["dtype"]), []).append(r)
    keys = ["decode_b1", "decode_b8", "prefill_512", "ttft_ms", "peak_rss_mb"]

    def med(runs, k):
        vals = [r[k] for r in runs if r.get(k) is not None]
        return statistics.median(vals) if vals else None

    med_rows = {s: {k: med(runs, k) for k in keys} for s, runs in systems.items()}
    print(f"read bandwidth (2 threads, this run): {', '.join(f'{x:.1f}' for x in bw)} GB/s; "
          f"median {statistics.median(bw):.1f}")
    for dt in ("f32", "f16"):
        gb = weights[dt] / 1e9
        floor_ms = gb / statistics.median(bw) * 1e3
        print(f"batch-1 floor, {dt}: {gb * 1e3:.1f} MB of weights per token / bandwidth = "
              f"{floor_ms:.2f} ms/token ({1e3 / floor_ms:.1f} tokens/s)")
    print()
    head = f"| system | dtype | decode b1 tok/s | decode b8 tok/s | b8 ÷ b1 | prefill 512 tok/s | TTFT ms (32 tok) | peak RSS MB | rounds |"
    print(head)
    print("|" + "---|" * 9)
    order = sorted(med_rows, key=lambda s: (s[0] != "minigpt", s[0], s[1]))
    fmt = lambda v, p=1: "—" if v is None else f"{v:.{p}f}"
    for s in order:
        m = med_rows[s]
        ratio = m["decode_b8"] / m["decode_b1"] if m["decode_b8"] and m["decode_b1"] else None
        print(f"| {s[0]} | {s[1]} | {fmt(m['decode_b1'])} | {fmt(m['decode_b8'])} | {fmt(ratio, 2)} | "
              f"{fmt(m['prefill_512'])} | {fmt(m['ttft_ms'])} | {fmt(m['peak_rss_mb'], 0)} | {len(systems[s])} |")
    print()
    print("minigpt ÷ peer (medians; above 1 = minigpt faster; TTFT: peer ms ÷ minigpt ms):")
    for dt in ("f32", "f16"):
        mine = med_rows.get(("minigpt", dt))
        if not mine:
            continue
        for s in order:
            # Each peer of the same dtype, and HF (f32 only) for both.
            if s[0] == "minigpt" or (s[1] != dt and s[0] != "HF transformers"):
                continue
            peer = med_rows[s]
            parts = []
            for k, label in (("decode_b1", "decode b1"), ("decode_b8", "decode b8"),
                             ("prefill_512", "prefill 512")):
                if mine[k] and peer[k]:
                    parts.append(f"{label} {mine[k] / peer[k]:.2f}×")
            if mine["ttft_ms"] and peer["ttft_ms"]:
                parts.append(f"TTFT {peer['ttft_ms'] / mine['ttft_ms']:.2f}×")
            print(f"  minigpt {dt} vs {s[0]} {s[1]}: " + ", ".join(parts))
        gb = weights[dt] / 1e9
        floor_ms = gb / statistics.median(bw) * 1e3
        if mine["decode_b1"]:
            print(f"  minigpt {dt} batch-1 decode: {1e3 / mine['decode_b1']:.2f} ms/token = "
                  f"{floor_ms / (1e3 / mine['decode_b1']) * 100:.0f}% of the bandwidth floor")


if __name__ == "__main__":
    {"minigpt": minigpt, "hf": hf, "llama": llama, "load-minigpt": load_minigpt,
     "load-llama": load_llama, "table": table}[sys.argv[1]](sys.argv[2])

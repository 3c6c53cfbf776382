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
prefill), the prefill of 128, 512 and 1024 random tokens at batch 1 (logits of the last
position only), best of N repeats after a warm-up; and, for minigpt and HF only, what a sweep
does: 128 new tokens per row after a 32-token prompt at batch 16 and 64, sampled with top-p 0.9
at temperature 1.0 (minigpt: its decoding chain with every token's statistics, `minigpt bench
--strategy`; HF: `generate(do_sample=True, top_p=0.9, top_k=0)`), new tokens over the whole
generation's time, best of $SAMPLE_REPEATS (default 1) after a warm-up (minigpt: one whole
generation; HF: 4 tokens).

Each measurement records the CPU time other processes took while it ran (from /proc/stat,
less its own): a measurement during which others used more than $MAX_OTHER (default 0.15) of a
core is redone, up to twice, and marked "contended" if it stays so. The table gives each
figure's median over rounds with its range, then every round's value.
"""
import json
import os
import statistics
import sys
import time

SHORT, LONG = 32, 512
PREFILLS = (128, 512, 1024)
SAMPLE_BATCHES = (16, 64)


def env_int(name, default):
    return int(os.environ.get(name, default))


def peak_rss_mb(children=False):
    import resource
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def timed(run):
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


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
    common = [exe, "bench", "--model", model, "--device", "cpu", "--dtype", dtype, "--json"]
    out = {"system": os.environ.get("MINIGPT_LABEL", "minigpt"), "dtype": dtype, "threads": env_int("THREADS", 2),
           "version": subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()}
    env = dict(os.environ, RAYON_NUM_THREADS=str(out["threads"]))
    run = lambda args, reps=repeats: [json.loads(l) for l in subprocess.run(
        common + ["--repeats", str(reps)] + args, capture_output=True, text=True, check=True,
        env=env).stdout.splitlines() if l.startswith("{")]
    for r in run(["--prompt-len", str(SHORT), "--new-tokens", str(new), "--batch", "1,8"]):
        out[f"decode_b{r['batch']}"] = r["decode_tokens_per_s"]
        if r["batch"] == 1:
            out["ttft_ms"] = r["ttft_ms"]
    for n in PREFILLS:
        (r,) = run(["--prompt-len", str(n), "--new-tokens", "0", "--batch", "1"])
        out[f"prefill_{n}"] = r["prefill_tokens_per_s"]
    if dtype == "f32":
        batches = ",".join(map(str, SAMPLE_BATCHES))
        for r in run(["--prompt-len", str(SHORT), "--new-tokens", str(new), "--batch", batches,
                      "--strategy", "top_p_0.9", "--temperature", "1.0"],
                     env_int("SAMPLE_REPEATS", 1)):
            out[f"sample_b{r['batch']}"] = r["sample_tokens_per_s"]
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
        for n in PREFILLS:
            ids = torch.randint(0, vocab, (1, n), generator=g)
            best = best_seconds(lambda: model(ids, use_cache=True, logits_to_keep=1), repeats)
            out[f"prefill_{n}"] = n / best
        # Sampling as a sweep does: top-p 0.9 at temperature 1 (top_k=0: generate's default
        # top-k of 50 off), 128 new tokens per row whatever the end-of-text token.
        sample_repeats = env_int("SAMPLE_REPEATS", 1)
        for b in SAMPLE_BATCHES:
            ids = torch.randint(0, vocab, (b, SHORT), generator=g)
            mask = torch.ones_like(ids)

            def gen(n):
                o = model.generate(ids, attention_mask=mask, do_sample=True, top_p=0.9, top_k=0,
                                   temperature=1.0, max_new_tokens=n, min_new_tokens=n,
                                   pad_token_id=0)
                assert o.shape == (b, SHORT + n), o.shape
            gen(4)  # warm-up
            best = min(timed(lambda: gen(new)) for _ in range(sample_repeats))
            out[f"sample_b{b}"] = b * new / best
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
    for n in PREFILLS:
        toks = rng.integers(0, vocab, n).tolist()
        best = best_seconds(lambda: llm.eval(toks), repeats, setup=llm.reset)
        out[f"prefill_{n}"] = n / best
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


def cpu_line():
    """The CPU's model name and the widest SIMD level the engine can use on it."""
    info = open("/proc/cpuinfo").read()
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines()
                 if l.startswith("model name")), "unknown CPU")
    flags = set(next((l.split(":", 1)[1].split() for l in info.splitlines()
                      if l.startswith("flags")), []))
    simd = ("AVX-512F" if "avx512f" in flags else
            "AVX2+FMA (no AVX-512)" if {"avx2", "fma"} <= flags else "baseline x86-64 only")
    return f"CPU: {name}, {os.cpu_count()} cores; SIMD: {simd}"


METRICS = [("decode_b1", "decode b1 tok/s"), ("decode_b8", "decode b8 tok/s"),
           ("ttft_ms", "TTFT ms (32 tok)"), ("prefill_128", "prefill 128 tok/s"),
           ("prefill_512", "prefill 512 tok/s"), ("prefill_1024", "prefill 1024 tok/s"),
           ("sample_b16", "top-p sample b16 tok/s"), ("sample_b64", "top-p sample b64 tok/s"),
           ("peak_rss_mb", "peak RSS MB")]


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    print(cpu_line())
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
    order = sorted(systems, key=lambda s: (s[0] != "minigpt", s[0], s[1]))

    def vals(runs, k):
        return [r[k] for r in runs if r.get(k) is not None]

    def med(runs, k):
        v = vals(runs, k)
        return statistics.median(v) if v else None

    def cell(runs, k, p=1):
        v = vals(runs, k)
        if not v:
            return "—"
        return f"{statistics.median(v):.{p}f} ({min(v):.{p}f}–{max(v):.{p}f})"

    print(f"read bandwidth (2 threads, this run): {', '.join(f'{x:.1f}' for x in bw)} GB/s; "
          f"median {statistics.median(bw):.1f}")
    for dt in ("f32", "f16"):
        gb = weights[dt] / 1e9
        floor_ms = gb / statistics.median(bw) * 1e3
        print(f"batch-1 floor, {dt}: {gb * 1e3:.1f} MB of weights per token / bandwidth = "
              f"{floor_ms:.2f} ms/token ({1e3 / floor_ms:.1f} tokens/s)")
    contended = sum(1 for runs in systems.values() for r in runs if r.get("contended"))
    redone = sum(r.get("tries", 1) - 1 for runs in systems.values() for r in runs)
    print(f"contention: {redone} measurement(s) redone because other processes used more than "
          f"{float(os.environ.get('MAX_OTHER', 0.15)):.2f} of a core; {contended} still "
          f"contended (marked * below)")
    print()
    print("Medians over rounds (range in brackets):")
    for group in (METRICS[:3] + METRICS[-1:], METRICS[3:6], METRICS[6:8]):
        keys = [k for k, _ in group if any(vals(runs, k) for runs in systems.values())]
        if not keys:
            continue
        labels = dict(group)
        print("| system | dtype | " + " | ".join(labels[k] for k in keys) + " | rounds |")
        print("|" + "---|" * (len(keys) + 3))
        for sname in order:
            if not any(vals(systems[sname], k) for k in keys):
                continue
            runs = systems[sname]
            cells = [cell(runs, k, 0 if k == "peak_rss_mb" else 1) for k in keys]
            print(f"| {sname[0]} | {sname[1]} | " + " | ".join(cells) + f" | {len(runs)} |")
        print()
    print("Every round (in run order; * = contended):")
    for sname in order:
        runs = systems[sname]
        for k, label in METRICS:
            if not vals(runs, k):
                continue
            v = ", ".join(f"{r[k]:.1f}{'*' if r.get('contended') else ''}" for r in runs
                          if r.get(k) is not None)
            print(f"  {sname[0]} {sname[1]} {label}: {v}")
    print()
    print("minigpt ÷ peer (median of the per-round ratios, rounds paired in run order, with the "
          "lowest round; above 1 = minigpt faster; TTFT: peer ms ÷ minigpt ms):")
    for dt in ("f32", "f16"):
        mine = systems.get(("minigpt", dt))
        if not mine:
            continue
        for sname in order:
            # Each peer of the same dtype, and HF (f32 only) for both.
            if sname[0].startswith("minigpt") or (sname[1] != dt and sname[0] != "HF transformers"):
                continue
            peer = systems[sname]
            parts = []
            for k, label in METRICS:
                if k == "peak_rss_mb":
                    continue
                pairs = [(a.get(k), b.get(k)) for a, b in zip(mine, peer)
                         if a.get(k) and b.get(k)]
                if not pairs:
                    continue
                ratios = [(b / a) if k == "ttft_ms" else (a / b) for a, b in pairs]
                parts.append(f"{label.replace(' tok/s', '')} {statistics.median(ratios):.2f}× "
                             f"(lowest {min(ratios):.2f}×)")
            print(f"  minigpt {dt} vs {sname[0]} {sname[1]}: " + "; ".join(parts))
        gb = weights[dt] / 1e9
        floor_ms = gb / statistics.median(bw) * 1e3
        b1 = med(mine, "decode_b1")
        if b1:
            print(f"  minigpt {dt} batch-1 decode: {1e3 / b1:.2f} ms/token = "
                  f"{floor_ms / (1e3 / b1) * 100:.0f}% of the bandwidth floor")


def busy_seconds():
    """CPU seconds all processes have run (and been stolen by the hypervisor) since boot."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = f[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds():
    import resource
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measured(worker, arg):
    """Runs a worker (which prints one JSON line) and adds the CPU time other processes took
    meanwhile; redoes it, up to twice, while that exceeds $MAX_OTHER of a core."""
    import contextlib
    import io
    limit = float(os.environ.get("MAX_OTHER", 0.15))
    for tries in range(1, 4):
        buf = io.StringIO()
        b0, o0, t0 = busy_seconds(), own_seconds(), time.perf_counter()
        with contextlib.redirect_stdout(buf):
            worker(arg)
        wall = time.perf_counter() - t0
        other = max(0.0, (busy_seconds() - b0) - (own_seconds() - o0))
        out = json.loads(buf.getvalue().strip().splitlines()[-1])
        out.update(wall_s=round(wall, 2), other_cpu_s=round(other, 2), tries=tries,
                   contended=other / wall > limit)
        if not out["contended"]:
            break
        print(f"contended: others used {other / wall:.2f} of a core during {out['system']} "
              f"{out['dtype']}; redoing it", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    workers = {"minigpt": minigpt, "hf": hf, "llama": llama}
    if sys.argv[1] in workers:
        measured(workers[sys.argv[1]], sys.argv[2])
    else:
        {"load-minigpt": load_minigpt, "load-llama": load_llama,
         "table": table}[sys.argv[1]](sys.argv[2])

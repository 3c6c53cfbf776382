#!/usr/bin/env bash
# minigpt against its peers on one random-weight GPT-2-124M, in one run, interleaved:
# minigpt (--device cpu, f32 and f16 weights), Hugging Face transformers (PyTorch, f32) and
# llama.cpp (llama-cpp-python built from source; the same weights converted to GGUF F32 and
# F16 by llama.cpp's own convert_hf_to_gguf.py). Prints decode tokens/s at batch 1 and 8,
# prefill tokens/s for 128, 512 and 1024 tokens, time to first token, peak memory, what a sweep
# does (top-p 0.9 sampling of 128 tokens per row at batch 16 and 64, minigpt's chain against
# HF `generate`), minigpt ÷ peer ratios per round, and the batch-1 memory-bandwidth floor
# measured in the same run. Every figure comes with its median, range and per-round values;
# a measurement during which other processes used more than $MAX_OTHER (0.15) of a core is
# redone up to twice and marked if it stays contended.
#
#   scripts/bench_peers.sh                 # 3 rounds, 2 threads
#   ROUNDS=5 THREADS=2 SAMPLE_REPEATS=2 scripts/bench_peers.sh
#   MINIGPT_BASE=/tmp/minigpt-before scripts/bench_peers.sh   # also an older build, as a peer
#   ONLY=load scripts/bench_peers.sh       # only loading: time to first token, peak RSS
#
# With MINIGPT_BASE, that binary runs in every round next to the fresh build (as the system
# "minigpt base"), so a change is measured before and after in one sitting.
#
# Installs what it needs itself: a venv under the system temp dir ($PEERS_VENV, default
# ${TMPDIR:-/tmp}/minigpt-peers-venv; ~6 GB with torch; llama-cpp-python compiles for ~9
# minutes the first time). Not part of CI. Needs python3, gcc, network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=${TMPDIR:-/tmp}
venv=${PEERS_VENV:-$tmp/minigpt-peers-venv}
work=${PEERS_WORK:-$tmp/minigpt-peers}
rounds=${ROUNDS:-3}
export THREADS=${THREADS:-2} REPEATS=${REPEATS:-3} NEW_TOKENS=${NEW_TOKENS:-128}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
mkdir -p "$work"
# minigpt's packed-weights cache for the decode benchmarks (loading uses fresh ones).
export MINIGPT_CACHE_DIR=${MINIGPT_CACHE_DIR:-$work/pack-cache}
say() { printf '\n== %s\n' "$*" >&2; }

# 1. Python peers.
if ! "$venv/bin/python" -c 'import torch, transformers, llama_cpp, gguf, safetensors' 2>/dev/null; then
  say "installing torch, transformers, gguf and llama-cpp-python (from source) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q torch transformers safetensors numpy gguf sentencepiece
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$venv/bin/pip" install -q --no-binary llama-cpp-python llama-cpp-python
fi
py="$venv/bin/python"

# 2. minigpt.
say "building minigpt (release)"
# The whole workspace, as the README's commands build it (a single library package, e.g.
# `-p minigpt-model`, resolves Burn's dependencies' features differently and rebuilds them).
cargo build --release -q
export MINIGPT=${CARGO_TARGET_DIR:-$root/target}/release/minigpt

# 3. llama.cpp's converter, from the source package of the installed llama-cpp-python.
ver=$("$py" -c 'import llama_cpp; print(llama_cpp.__version__)')
src=$work/llama_cpp_python-$ver
if [ ! -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
  say "fetching llama.cpp's converter (llama-cpp-python $ver source package)"
  "$venv/bin/pip" download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$ver" -d "$work"
  tar xzf "$work/llama_cpp_python-$ver.tar.gz" -C "$work"
fi

# 4. The model: random GPT-2-124M, and as GGUF F32 and F16 (scripts/peer_model.sh).
. scripts/peer_model.sh
peer_model "$py" "$work" "$src/vendor/llama.cpp" f32 f16
model=$work/gpt2-random
export MODEL=$model

# 5. Read bandwidth with $THREADS threads (a plain OpenMP sum over 1 GiB, best of 5).
cat >"$work/bw.c" <<'EOF'
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  size_t n = (size_t)1 << 28; /* 1 GiB of floats */
  float *a = malloc(n * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
  double best = 1e9, sink = 0;
  for (int r = 0; r < 5; r++) {
    double t = omp_get_wtime(), s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += a[i];
    t = omp_get_wtime() - t;
    sink += s;
    if (t < best) best = t;
  }
  printf("{\"system\": \"bandwidth\", \"read_gb_s\": %.2f, \"sink\": %.0f}\n", n * 4.0 / best / 1e9, sink);
  return 0;
}
EOF
gcc -O3 -march=native -fopenmp -ffast-math "$work/bw.c" -o "$work/bw"

# 6. Interleaved rounds: A B A B, one process per measurement.
results=$work/results.jsonl
: >"$results"
"$py" - "$model/model.safetensors" >>"$results" <<'EOF'
import json, sys
from safetensors import safe_open
n = 0
with safe_open(sys.argv[1], "np") as f:
    for k in f.keys():
        # Weights a decode step streams: the matrices (the tied head counts once).
        if k.endswith("weight") and ("wte" in k or "c_attn" in k or "c_proj" in k or "c_fc" in k):
            n += f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[1]
print(json.dumps({"system": "weights", "f32": 4 * n, "f16": 2 * n}))
EOF
for r in $(seq 1 "$rounds"); do
  say "round $r of $rounds"
  # Loading from a cold process. llama.cpp maps its GGUF (converted beforehand); minigpt, on
  # its first load of a weights file, maps the safetensors, packs it and stores the packed
  # file in its cache ("first load"); later loads map the packed file ("minigpt", the figure
  # comparable with llama.cpp's). "no cache" packs every time (MINIGPT_PACK_CACHE=0).
  for t in f32 f16; do
    fresh=$(mktemp -d "$work/pack-cache.XXXXXX")
    MINIGPT_CACHE_DIR=$fresh MINIGPT_LABEL="minigpt, first load" \
      "$py" scripts/bench_peers.py load-minigpt "$t" >>"$results"
    MINIGPT_CACHE_DIR=$fresh "$py" scripts/bench_peers.py load-minigpt "$t" >>"$results"
    rm -rf "$fresh"
    MINIGPT_PACK_CACHE=0 MINIGPT_LABEL="minigpt, no cache" \
      "$py" scripts/bench_peers.py load-minigpt "$t" >>"$results"
    if [ -n "${MINIGPT_BASE:-}" ]; then
      MINIGPT=$MINIGPT_BASE MINIGPT_LABEL="minigpt base" "$py" scripts/bench_peers.py load-minigpt "$t" >>"$results"
    fi
    "$py" scripts/bench_peers.py load-llama "$work/gpt2-random-$t.gguf" >>"$results"
  done
  [ "${ONLY:-}" = load ] && continue
  OMP_NUM_THREADS=$THREADS "$work/bw" >>"$results"
  "$py" scripts/bench_peers.py minigpt f32 >>"$results"
  if [ -n "${MINIGPT_BASE:-}" ]; then
    MINIGPT=$MINIGPT_BASE MINIGPT_LABEL="minigpt base" "$py" scripts/bench_peers.py minigpt f32 >>"$results"
  fi
  "$py" scripts/bench_peers.py hf "$model" >>"$results"
  "$py" scripts/bench_peers.py llama "$work/gpt2-random-f32.gguf" >>"$results"
  "$py" scripts/bench_peers.py minigpt f16 >>"$results"
  if [ -n "${MINIGPT_BASE:-}" ]; then
    MINIGPT=$MINIGPT_BASE MINIGPT_LABEL="minigpt base" "$py" scripts/bench_peers.py minigpt f16 >>"$results"
  fi
  "$py" scripts/bench_peers.py llama "$work/gpt2-random-f16.gguf" >>"$results"
done
[ "${ONLY:-}" = load ] || OMP_NUM_THREADS=$THREADS "$work/bw" >>"$results"

say "results ($results), $(nproc) cores, $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
"$py" scripts/bench_peers.py table "$results"

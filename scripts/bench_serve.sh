#!/usr/bin/env bash
# `minigpt serve` under load, and against llama.cpp's `llama-server`, in one run:
#   1. the shipped model, 1/4/16/64 concurrent streaming clients for $SECONDS_EACH s each
#      (96 new tokens per request, within its 128 positions),
#      then a check that the server holds no rows once the clients are gone, the engine
#      alone (`minigpt bench`) at the same batch sizes, and the compute roof of batching on
#      these cores (scripts/compute_roof.py: peak FMA rate over a token's FLOPs, ÷ batch 1);
#   2. one random-weight GPT-2-124M (F32): `minigpt serve` and `llama-server` (built from the
#      llama.cpp vendored in llama-cpp-python's source package, as scripts/bench_peers.sh
#      fetches it; the same weights converted to GGUF F32 by llama.cpp's convert_hf_to_gguf.py),
#      1/4/16 clients, interleaved: aggregate output tokens/s and p50/p99 time per output token.
# The clients are scripts/bench_serve.py (Python's standard library, one thread per client).
#
#   scripts/bench_serve.sh                        # 30 s per point, 2 threads
#   SECONDS_EACH=10 scripts/bench_serve.sh        # a quicker look
#   ONLY=shipped scripts/bench_serve.sh           # part 1 only (no Python packages needed)
#
# Installs what it needs itself into a venv under the system temp dir ($PEERS_VENV, the one
# scripts/bench_peers.sh uses, default ${TMPDIR:-/tmp}/minigpt-peers-venv): torch,
# transformers, gguf and cmake; llama-server compiles for ~10 minutes the first time. Not part
# of CI. Needs python3, gcc/g++, network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=${TMPDIR:-/tmp}
venv=${PEERS_VENV:-$tmp/minigpt-peers-venv}
work=${PEERS_WORK:-$tmp/minigpt-peers}
threads=${THREADS:-2}
seconds=${SECONDS_EACH:-30}
say() { printf '\n== %s\n' "$*" >&2; }
mkdir -p "$work"

say "building minigpt (release)"
cargo build --release -q
minigpt=${CARGO_TARGET_DIR:-$root/target}/release/minigpt

say "part 1: the shipped model, 1/4/16/64 clients, ${seconds} s each"
# 96 new tokens after the 7-character prompt stay within the model's 128 positions (beyond them,
# every step would recompute the whole window).
python3 scripts/bench_serve.py --minigpt "$minigpt" --seconds "$seconds" --clients 1,4,16,64 \
  --max-tokens 96 --json-out "$work/serve-shipped.jsonl"
# The engine alone at the same batch sizes, prompt and length: the bound on what batching
# can give a server on it.
say "the engine alone: minigpt bench at batch 1/4/16/64, the same prompt length and tokens"
"$minigpt" bench --prompt-len 7 --new-tokens 96 --batch 1,4,16,64 --repeats 5 --json \
  | tee "$work/engine.jsonl"
# The compute roof: the most tokens/s any batch can reach on these cores, over batch 1's.
python3 scripts/compute_roof.py --threads "$threads" --engine "$work/engine.jsonl" \
  --serve "$work/serve-shipped.jsonl"
[ "${ONLY:-}" = shipped ] && exit 0

# Python packages: the converter needs torch, numpy and gguf; cmake builds llama-server.
if ! "$venv/bin/python" -c 'import torch, transformers, gguf, safetensors, cmake' 2>/dev/null; then
  say "installing torch, transformers, gguf and cmake into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q torch transformers safetensors numpy gguf sentencepiece cmake
fi
py="$venv/bin/python"

# llama.cpp's source: the version vendored by the newest llama-cpp-python source package.
src=$(ls -d "$work"/llama_cpp_python-*/ 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$src" ] || [ ! -f "$src/vendor/llama.cpp/CMakeLists.txt" ]; then
  say "fetching llama.cpp (llama-cpp-python's source package)"
  "$venv/bin/pip" download -q --no-deps --no-binary llama-cpp-python llama-cpp-python -d "$work"
  tar xzf "$(ls "$work"/llama_cpp_python-*.tar.gz | sort -V | tail -1)" -C "$work"
  src=$(ls -d "$work"/llama_cpp_python-*/ | sort -V | tail -1)
fi
llama=$src/vendor/llama.cpp
server=$llama/build/bin/llama-server
if [ ! -x "$server" ]; then
  say "building llama-server from $llama (native CPU flags, no curl)"
  "$venv/bin/cmake" -S "$llama" -B "$llama/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    >"$work/llama-server-cmake.log" 2>&1
  "$venv/bin/cmake" --build "$llama/build" --target llama-server -j "$(nproc)" \
    >"$work/llama-server-build.log" 2>&1
fi

# The model: random GPT-2-124M, and as GGUF F32 (scripts/peer_model.sh, shared with
# scripts/bench_peers.sh).
. scripts/peer_model.sh
peer_model "$py" "$work" "$llama" f32
model=$work/gpt2-random
gguf=$work/gpt2-random-f32.gguf

say "part 2: GPT-2-124M F32, minigpt serve against llama-server, 1/4/16 clients, ${seconds} s each"
python3 scripts/bench_serve.py --minigpt "$minigpt" --model "$model" --seconds "$seconds" \
  --clients 1,4,16 --max-tokens 128 --threads "$threads" \
  --llama-server "$server" --gguf "$gguf"

# Sourced by scripts/bench_peers.sh and scripts/bench_serve.sh: the one model the peer
# benchmarks share, a random GPT-2-124M (transformers' default GPT2Config), in Hugging Face
# layout with GPT-2's tokenizer files (from the tiktoken-rs crate, for the GGUF converter) and
# as GGUF, converted by llama.cpp's own convert_hf_to_gguf.py. Each file is made once.
#
#   peer_model PY WORK LLAMA_DIR TYPE...   # WORK/gpt2-random and WORK/gpt2-random-TYPE.gguf
peer_model() {
  local py=$1 work=$2 llama=$3
  shift 3
  local model=$work/gpt2-random
  if [ ! -f "$model/model.safetensors" ]; then
    printf '\n== writing a random GPT-2-124M to %s\n' "$model" >&2
    "$py" scripts/make_random_gpt2.py "$model"
  fi
  if [ ! -f "$model/vocab.json" ]; then
    local assets
    assets=$(dirname "$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*tiktoken-rs-*/assets/encoder.json' | head -1)")
    cp "$assets/encoder.json" "$model/vocab.json"
    cp "$assets/vocab.bpe" "$model/merges.txt"
  fi
  # The converter wants n_ctx, which transformers 5 no longer writes.
  "$py" - "$model/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
if "n_ctx" not in c:
    c["n_ctx"] = c["n_positions"]; json.dump(c, open(p, "w"), indent=2)
PY
  local t
  for t in "$@"; do
    if [ ! -f "$work/gpt2-random-$t.gguf" ]; then
      printf '\n== converting to GGUF %s\n' "$t" >&2
      PYTHONPATH=$llama/gguf-py "$py" "$llama/convert_hf_to_gguf.py" "$model" --outtype "$t" \
        --outfile "$work/gpt2-random-$t.gguf" >"$work/convert-$t.log" 2>&1
    fi
  done
}

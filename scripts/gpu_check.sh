#!/usr/bin/env bash
# On a machine with a real GPU: the wgpu device against the cpu device (generate, score, a
# small sweep; the cpu device is held to the Hugging Face reference by the parity tests), then
# `minigpt bench` on a random GPT-2-124M on both devices. CI runs the same tests on Mesa's
# software Vulkan driver; this script gives the speed on real hardware.
#
#   scripts/gpu_check.sh [MODEL_DIR]     # default: a random GPT-2-124M it writes with Python
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-${TMPDIR:-/tmp}/gpt2-random}
cargo build --release -q --workspace
MINIGPT_REQUIRE_WGPU=1 cargo test --release -q --workspace --test integration -- wgpu
if [ ! -f "$model/model.safetensors" ]; then
  python3 scripts/make_random_gpt2.py "$model"   # needs torch and transformers
fi
for device in wgpu cpu; do
  flag=; [ "$device" = wgpu ] && flag=--require-gpu   # a software rasteriser is no GPU figure
  target/release/minigpt bench $flag --model "$model" --device "$device" --prompt-len 128 --new-tokens 64 --batch 1,8
done

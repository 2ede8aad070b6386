#!/usr/bin/env bash
# Set-up and the main job on the bundled demo model: install what is missing, build, write the synthetic demo
# model once (models/demo.gguf, a small DeepSeek-V3-shaped MoE with random weights) and generate from it;
# `--serve [ARGS]` serves it instead (OpenAI-compatible, http://127.0.0.1:8080, chat page at /; Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
mkdir -p models
if [[ ! -f models/demo.gguf ]]; then
  ./build/release/onecard gen --preset demo -o models/demo.gguf.part
  mv models/demo.gguf.part models/demo.gguf
fi
./build/release/onecard inspect --system | sed -n '2,4p'
if [[ "${1:-}" == "--serve" ]]; then
  shift
  exec ./build/release/onecard serve -m models/demo.gguf --parallel 8 "$@"
fi
# Random weights: the text is noise, but every step of a real generation runs (and the speed is real).
./build/release/onecard run -m models/demo.gguf --chat -p "Tell me about the sea." -n 64 --seed 42

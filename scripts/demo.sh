#!/usr/bin/env bash
# Set-up and the main job on the bundled demo model: install what is missing, build, generate the synthetic
# demo model once (models/demo.gguf) and show what it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
mkdir -p models
if [[ ! -f models/demo.gguf ]]; then
  ./build/release/onecard gen --preset demo -o models/demo.gguf.part
  mv models/demo.gguf.part models/demo.gguf
fi
./build/release/onecard inspect --system models/demo.gguf

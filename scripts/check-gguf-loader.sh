#!/usr/bin/env bash
# Converts the golden Hugging Face checkpoints with `onecard convert` (BF16 from BF16 and from FP8, a split-MLA
# copy, and a Q4_K_M quantization) and reads each output with @huggingface/gguf, a GGUF parser of the
# llama.cpp family's ecosystem, checked against `onecard inspect --json`. Not part of the CI: it installs the
# package from the npm registry. Usage: scripts/check-gguf-loader.sh [build/release/onecard]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
onecard=${1:-$root/build/release/onecard}
golden=${ONECARD_GOLDEN_DIR:-$root/../shared/golden}
work=$root/build/gguf-loader-check
package=@huggingface/gguf@${GGUF_PACKAGE_VERSION:-0.4.6}
mkdir -p "$work"
cd "$work"
if [ ! -d node_modules/@huggingface/gguf ]; then
  [ -f package.json ] || echo '{"private": true, "type": "module"}' > package.json
  npm install --no-audit --no-fund "$package" > npm-install.log
fi
echo "@huggingface/gguf $(node -p 'JSON.parse(require("fs").readFileSync("node_modules/@huggingface/gguf/package.json")).version'), node $(node --version)"
cp "$root/scripts/check-gguf-loader.mjs" .

"$onecard" convert -q "$golden/hf/tiny-v3-bf16" -o tiny-v3-bf16.gguf
"$onecard" convert -q "$golden/hf/tiny-v3-fp8" -o tiny-v3-fp8-bf16.gguf
"$onecard" convert -q --mla split "$golden/hf/tiny-v3-fp8" -o tiny-v3-fp8-split.gguf
"$onecard" convert -q --type q8_0 "$golden/hf/tiny-v3-fp8" -o tiny-v3-fp8-q8_0.gguf
"$onecard" quantize tiny-v3-fp8-bf16.gguf tiny-v3-fp8-q4_k_m.gguf --type q4_k_m > /dev/null 2>&1
status=0
for f in tiny-v3-bf16 tiny-v3-fp8-bf16 tiny-v3-fp8-split tiny-v3-fp8-q8_0 tiny-v3-fp8-q4_k_m; do
  "$onecard" inspect --json --max-array 1000000 "$f.gguf" > "$f.json"
  node check-gguf-loader.mjs "$f.gguf" "$f.json" || status=1
done
exit $status

#!/usr/bin/env bash
# On the lent GPU machine, from the repository root, with gpu-carry/ carried (scripts/gpu-pack.sh made it here):
# the GPU tests (every backend op against the CPU's; the golden models hybrid and all-GPU against the reference
# logits), then a v3-slice model of 4 layers generated on the machine's own disk and benchmarked CPU-only,
# hybrid within 24 GiB, and all on the GPU, with the same threads. Logs and JSON go to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-out}"
mkdir -p "$out"
carry=gpu-carry
export ONECARD_GOLDEN_DIR="$PWD/$carry/golden"
unpacked=/tmp/onecard-gpu
rm -rf "$unpacked" && mkdir -p "$unpacked"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$carry/onecard-gpu.tar.xz" \
  "$unpacked" || tar -C "$unpacked" -xJf "$carry/onecard-gpu.tar.xz" || exit 1
export LD_LIBRARY_PATH="$unpacked/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="$unpacked/bin"
threads="${THREADS:-16}"
status=0

step() {
  echo "== $*"
  local start=$SECONDS
  "$@"
  local rc=$?
  echo "== rc $rc, $((SECONDS - start)) s"
  [[ $rc -eq 0 ]] || status=1
}

nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$out/gpu.txt"
step "$bin/onecard" inspect --system 2>&1 | tee "$out/system.txt"
step "$bin/cuda_device_test" 2>&1 | tee "$out/cuda_device_test.txt"
step "$bin/backend_ops_test" 2>&1 | tee "$out/backend_ops_test.txt"
step "$bin/model_gpu_test" --gtest_filter='*GoldenOnGpu.MatchesTheReference/*:GpuPlacement.*' 2>&1 |
  grep -v '^onecard info' | tee "$out/model_gpu_test.txt"

if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  model=/tmp/v3-slice-4.gguf
  [[ -f $model ]] || step "$bin/onecard" gen --preset v3-slice --layers 4 -o "$model"
  common=(-m "$model" -p 512 -n 128 -r 2 -t "$threads" --json)
  step "$bin/onecard" bench "${common[@]}" 2>"$out/bench-cpu.log" | tee "$out/bench-cpu.json"
  step "$bin/onecard" bench "${common[@]}" --gpu-memory 24GiB 2>"$out/bench-hybrid.log" |
    tee "$out/bench-hybrid.json"
  step "$bin/onecard" bench "${common[@]}" --gpu-memory 120GiB --place '.*=cuda' 2>"$out/bench-gpu.log" |
    tee "$out/bench-gpu.json"
fi
exit $status

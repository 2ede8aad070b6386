#!/usr/bin/env bash
# Set-up and every test: install what is missing, then build and run the suite twice, optimised (with the
# CUDA backend when nvcc is present) and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs="$(nproc)"

bash scripts/build.sh release
ctest --preset release -j"$jobs"

bash scripts/build.sh asan
ctest --preset asan -j"$jobs"

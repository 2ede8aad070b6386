#!/usr/bin/env bash
# Set-up and every test: install what is missing, then build and run the suite twice, optimised (with the
# CUDA backend when nvcc is present) and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs="$(nproc)"

# The npm packages of the client tests (tests/serve/client), as its package-lock.json pins them; again only
# when the lock changed since the last install. Without them those tests are skipped, not failed.
client=tests/serve/client
if ! cmp -s "$client/package-lock.json" "$client/node_modules/.onecard-installed-lock" 2>/dev/null; then
  if (cd "$client" && npm ci --no-audit --no-fund --loglevel=error); then
    cp "$client/package-lock.json" "$client/node_modules/.onecard-installed-lock"
  else
    echo "onecard: npm ci failed in $client; its tests will be skipped" >&2
  fi
fi

# One CUDA architecture (Hopper, the GPU machine's) where the release build's five would cost CI minutes.
ONECARD_CUDA_ARCHITECTURES="${ONECARD_CUDA_ARCHITECTURES:-90}" bash scripts/build.sh release
ctest --preset release -j"$jobs"

bash scripts/build.sh asan
# The load test (label `load`) runs in the optimised pass only: under the sanitizers it alone takes minutes,
# and the in-process server tests already drive concurrent requests through the sanitized build.
ctest --preset asan -j"$jobs" -LE load

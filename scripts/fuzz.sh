#!/usr/bin/env bash
# Fuzzes the GGUF reader for a bounded time: scripts/fuzz.sh [SECONDS] (default 3600).
# Builds the `fuzz` preset (clang, libFuzzer, ASan + UBSan), seeds a working corpus from the checked-in valid and
# malformed files, and runs one fuzzing process (not -jobs, which would move the output into fuzz-N.log files).
# Exits non-zero when the fuzzer finds a crash, a leak or a timeout; the input that caused it is left in
# build/fuzz-artifacts/ (add it to tests/data/gguf-malformed to keep it tested). The result is the last
# "#N DONE cov: ... exec/s: ..." line of the output.
set -euo pipefail

seconds="${1:-3600}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/deps.sh --fuzz

build=build/fuzz
corpus=build/fuzz-corpus/gguf_reader
artifacts=build/fuzz-artifacts

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake --preset fuzz
fi
cmake --build "$build" --target gguf_reader_fuzz -j "${FUZZ_BUILD_JOBS:-2}"

mkdir -p "$corpus" "$artifacts"
# Seeds are added to whatever earlier runs found, so that repeated runs keep building on their coverage.
cp -f tests/data/gguf-valid/*.gguf tests/data/gguf-malformed/*.gguf "$corpus"/

echo "fuzzing the GGUF reader for ${seconds}s; corpus $corpus, artifacts $artifacts"
status=0
"$build/fuzz/gguf_reader_fuzz" "$corpus" \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/" || status=$?

if [[ $status -ne 0 ]]; then
  echo "fuzz.sh: the fuzzer stopped with status $status; see $artifacts/" >&2
  exit "$status"
fi
echo "fuzz.sh: no crash in ${seconds}s"

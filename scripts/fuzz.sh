#!/usr/bin/env bash
# Fuzzes for a bounded time: scripts/fuzz.sh [SECONDS] [TARGET|all] (default 3600 s, the GGUF reader).
# Targets: gguf_reader (the GGUF reader), openai_request (the OpenAI request parsers and response builders of
# `onecard serve`), safetensors (the safetensors reader of `onecard convert`), all (each in turn, SECONDS apiece).
# Builds the `fuzz` preset (clang, libFuzzer, ASan + UBSan), seeds a working corpus per target from checked-in
# files, and runs one fuzzing process per target (not -jobs, which would move the output into fuzz-N.log files).
# Exits non-zero when the fuzzer finds a crash, a leak or a timeout; the input that caused it is left in
# build/fuzz-artifacts/<target>/ (add it to the target's seed folder to keep it tested). The result is the last
# "#N DONE cov: ... exec/s: ..." line of the output.
set -euo pipefail

seconds="${1:-3600}"
which="${2:-gguf_reader}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

case "$which" in
  gguf_reader | openai_request | safetensors) targets=("$which") ;;
  all) targets=(gguf_reader openai_request safetensors) ;;
  *)
    echo "fuzz.sh: unknown target '$which' (gguf_reader, openai_request, safetensors or all)" >&2
    exit 2
    ;;
esac

bash scripts/deps.sh --fuzz

build=build/fuzz
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake --preset fuzz
fi
cmake --build "$build" --target "${targets[@]/%/_fuzz}" -j "${FUZZ_BUILD_JOBS:-2}"

# Seeds are added to whatever earlier runs found, so that repeated runs keep building on their coverage.
seed_corpus() {
  case "$1" in
    gguf_reader) cp -f tests/data/gguf-valid/*.gguf tests/data/gguf-malformed/*.gguf "$2"/ ;;
    openai_request) cp -f tests/data/openai-requests/*.json "$2"/ ;;
    safetensors) cp -f tests/data/safetensors/*.safetensors "$2"/ ;;
  esac
}

# Extra libFuzzer flags per target: the request fuzzer gets a dictionary of the schema's field names.
target_flags() {
  case "$1" in
    openai_request) echo "-dict=tests/data/openai-requests/fields.dict" ;;
    safetensors) echo "-dict=tests/data/safetensors/fields.dict" ;;
  esac
}

describe() {
  case "$1" in
    gguf_reader) echo "the GGUF reader" ;;
    openai_request) echo "the OpenAI request schema" ;;
    safetensors) echo "the safetensors reader" ;;
  esac
}

for target in "${targets[@]}"; do
  corpus="build/fuzz-corpus/$target"
  # The GGUF reader's artifacts stay where they always were.
  artifacts=build/fuzz-artifacts
  [[ "$target" == gguf_reader ]] || artifacts="build/fuzz-artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  seed_corpus "$target" "$corpus"

  echo "fuzzing $(describe "$target") for ${seconds}s; corpus $corpus, artifacts $artifacts"
  status=0
  # shellcheck disable=SC2046 # the flags are words
  "$build/fuzz/${target}_fuzz" "$corpus" $(target_flags "$target") \
    -max_total_time="$seconds" \
    -max_len=65536 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" || status=$?

  if [[ $status -ne 0 ]]; then
    echo "fuzz.sh: the $target fuzzer stopped with status $status; see $artifacts/" >&2
    exit "$status"
  fi
  echo "fuzz.sh: no crash in $target in ${seconds}s"
done

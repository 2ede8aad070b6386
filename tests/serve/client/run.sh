#!/usr/bin/env bash
# Starts `onecard serve` on the demo model (on a free loopback port) and runs one of the client tests
# against it, then stops the server with SIGTERM and checks that it exited 0 (graceful shutdown is part of
# what is tested).
#
#   bash tests/serve/client/run.sh [--bin ONECARD] [--model FILE.gguf] [--verbose] TEST [-- ARGS...]
#
# TEST: openai (node --test openai.test.mjs, the official openai client), curl (curl_test.sh), load
# (load_test.mjs; ARGS go to it, e.g. -- --requests=256 --max-tokens=64), or all (each on its own server).
# Without --model the demo model is generated into a temporary folder. Exits 77 (a skip for ctest) when a
# tool the test needs is missing: node, the npm packages (`npm ci` in this folder), or curl.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../../../build/release/onecard"
model=""
verbose=0
test_name=""
extra=()
while (($# > 0)); do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) [[ -z "$test_name" ]] || { echo "run.sh: one test at a time" >&2; exit 2; }; test_name="$1"; shift ;;
  esac
done
case "$test_name" in
  openai|curl|load|all) ;;
  *) echo "run.sh: name a test: openai, curl, load or all" >&2; exit 2 ;;
esac

skip() { echo "run.sh: SKIP $test_name: $*"; exit 77; }
needs() {
  case "$1" in
    openai)
      command -v node >/dev/null || skip "node is not installed (scripts/deps.sh installs it)"
      [[ -f "$here/node_modules/openai/package.json" ]] || skip "the npm packages are missing: run 'npm ci' in $here"
      ;;
    load) command -v node >/dev/null || skip "node is not installed (scripts/deps.sh installs it)" ;;
    curl) command -v curl >/dev/null || skip "curl is not installed (scripts/deps.sh installs it)" ;;
  esac
}

if [[ "$test_name" == all ]]; then
  args=(--bin "$bin")
  [[ -z "$model" ]] || args+=(--model "$model")
  ((verbose == 0)) || args+=(--verbose)
  status=0
  for t in openai curl load; do
    rc=0
    bash "$0" "${args[@]}" "$t" || rc=$?
    if ((rc == 77)); then continue; fi
    ((rc == 0)) || status=1
  done
  exit "$status"
fi

needs "$test_name"
[[ -x "$bin" ]] || { echo "run.sh: no onecard binary at $bin (build it, or pass --bin)" >&2; exit 1; }
command -v node >/dev/null || command -v curl >/dev/null || skip "neither node nor curl is installed"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/onecard-client.XXXXXX")"
server_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [[ -z "$model" ]]; then
  model="$tmp/demo.gguf"
  "$bin" gen --preset demo -o "$model" -q >/dev/null
fi
model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
model_id="$(basename "$model" .gguf)"
key="client-test-$RANDOM$RANDOM"

serve_args=(--host 127.0.0.1 --port 0 --api-key "$key" --grace 10)
case "$test_name" in
  openai) serve_args+=(--parallel 4) ;;
  # A small context and body limit, so that the curl test can exceed them.
  curl) serve_args+=(--parallel 2 --ctx-size 256 --max-body 65536) ;;
  # A queue large enough that no request of the load test gets a 503.
  load) serve_args+=(--parallel 16 --queue 1024 --ctx-size 1024) ;;
esac

log="$tmp/server.log"
show_log() {
  echo "----- server log ($log) -----"
  if ((verbose)); then cat "$log"; else tail -n 60 "$log"; fi
  echo "-----"
}

"$bin" serve -m "$model" "${serve_args[@]}" >"$log" 2>&1 &
server_pid=$!

# The port: from the log line "listening on http://127.0.0.1:PORT".
port=""
for _ in $(seq 100); do
  port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -n 1)"
  [[ -z "$port" ]] || break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "run.sh: the server did not report its port" >&2
  show_log >&2
  exit 1
fi
url="http://127.0.0.1:$port"

health_status() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" || true
  else
    node -e 'fetch(process.argv[1]).then((r) => console.log(r.status), () => console.log(0))' "$url/health"
  fi
}
healthy=0
for _ in $(seq 300); do
  if [[ "$(health_status)" == 200 ]]; then healthy=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if ((healthy == 0)); then
  echo "run.sh: $url/health did not answer 200 within 60 s" >&2
  show_log >&2
  exit 1
fi
echo "run.sh: $test_name against $url (model $model_id, pid $server_pid)"

export ONECARD_URL="$url" ONECARD_API_KEY="$key" ONECARD_MODEL_ID="$model_id" ONECARD_BIN="$bin" \
  ONECARD_MODEL="$model"
rc=0
cd "$here"
case "$test_name" in
  openai) node --test openai.test.mjs || rc=$? ;;
  curl) bash curl_test.sh || rc=$? ;;
  load) node load_test.mjs ${extra[@]+"${extra[@]}"} || rc=$? ;;
esac

# Graceful shutdown: SIGTERM, then the server must exit 0 within its grace period (10 s) and a margin.
kill -TERM "$server_pid"
(sleep 30; kill -KILL "$server_pid" 2>/dev/null) >/dev/null 2>&1 &
watchdog=$!
server_rc=0
wait "$server_pid" || server_rc=$?
kill "$watchdog" 2>/dev/null || true
if ((server_rc == 137)); then
  echo "run.sh: FAIL: the server did not exit within 30 s of SIGTERM" >&2
  show_log >&2
  exit 1
fi
server_pid=""
if ((server_rc != 0)); then
  echo "run.sh: FAIL: the server exited with status $server_rc after SIGTERM (expected 0)" >&2
  rc=1
fi
grep -q 'info: stopped' "$log" || { echo "run.sh: FAIL: the server did not log 'stopped'" >&2; rc=1; }
if ((rc != 0 || verbose)); then show_log >&2; fi
if ((rc == 0)); then echo "run.sh: $test_name passed; the server stopped cleanly"; fi
exit "$rc"

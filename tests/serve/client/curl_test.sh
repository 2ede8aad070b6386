#!/usr/bin/env bash
# `onecard serve` through curl: statuses, error bodies, SSE framing, limits, the chat page and the metrics.
# run.sh starts the server with --ctx-size 256 --max-body 65536 and sets ONECARD_URL, ONECARD_API_KEY and
# ONECARD_MODEL_ID:   bash tests/serve/client/run.sh curl
# Responses are compact JSON with fields in OpenAI's order, so plain grep patterns can check them.
set -euo pipefail

url="${ONECARD_URL:?set ONECARD_URL (run.sh does)}"
key="${ONECARD_API_KEY:?set ONECARD_API_KEY (run.sh does)}"
model="${ONECARD_MODEL_ID:-demo}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/onecard-curl.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
body="$tmp/body"
failures=0
passes=0

fail() {
  echo "FAIL: $1" >&2
  if [[ -s "$body" ]]; then echo "  body: $(head -c 600 "$body")" >&2; fi
  failures=$((failures + 1))
}
pass() {
  echo "ok: $1"
  passes=$((passes + 1))
}

# request METHOD PATH [curl args...]: the status code; the body goes to $body, the headers to $tmp/headers.
request() {
  local method="$1" path="$2"
  shift 2
  : >"$body"
  : >"$tmp/headers"
  curl -s -o "$body" -D "$tmp/headers" -w '%{http_code}' --max-time 60 -X "$method" "$@" "$url$path" || echo "curl-failed-$?"
}
auth=(-H "Authorization: Bearer $key")
json=(-H 'Content-Type: application/json')

# expect NAME STATUS GOT [grep -E patterns the body must match...]
expect() {
  local name="$1" want="$2" got="$3"
  shift 3
  if [[ "$got" != "$want" ]]; then
    fail "$name: status $got, expected $want"
    return
  fi
  local pattern
  for pattern in "$@"; do
    if ! grep -Eq -- "$pattern" "$body"; then
      fail "$name: the body does not match /$pattern/"
      return
    fi
  done
  pass "$name"
}

# GET /health
st="$(request GET /health)"
expect "/health is 200" 200 "$st" '"status":"ok"'

# GET /v1/models
st="$(request GET /v1/models "${auth[@]}")"
expect "/v1/models lists the model" 200 "$st" '"object":"list"' "\"id\":\"$model\""

# A chat completion.
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" \
  -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":5,\"temperature\":0}")"
expect "a chat completion" 200 "$st" '"object":"chat.completion"' '"role":"assistant","content":"' \
  '"finish_reason":"(stop|length)"' '"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+,"total_tokens":[0-9]+'
grep -qi '^content-type: application/json' "$tmp/headers" || fail "the chat completion is not application/json"

# A streamed chat completion: only `data:` lines (and keep-alive comments), the last one `data: [DONE]`.
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" -N \
  -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"temperature":0,"stream":true}')"
expect "a streamed chat completion" 200 "$st" '^data: \{"id":"chatcmpl-[A-Za-z0-9]+","object":"chat.completion.chunk"' \
  '"finish_reason":"(stop|length)"'
last="$(grep -v '^$' "$body" | tail -n 1 || true)"
[[ "$last" == "data: [DONE]" ]] || fail "the stream's last data line is '$last', not 'data: [DONE]'"
if grep -v '^$' "$body" | grep -Ev '^(data: |: )' >/dev/null; then fail "the stream has lines that are not SSE data"; fi
grep -qi '^content-type: text/event-stream' "$tmp/headers" || fail "the stream is not text/event-stream"
[[ "$(grep -c '^data: \[DONE\]$' "$body" || true)" == 1 ]] || fail "the stream does not have exactly one [DONE]"

# A streamed text completion, also ending in [DONE].
st="$(request POST /v1/completions "${auth[@]}" "${json[@]}" -N \
  -d '{"prompt":"Once upon a time","max_tokens":4,"temperature":0,"stream":true}')"
expect "a streamed text completion" 200 "$st" '"object":"text_completion"'
[[ "$(grep -v '^$' "$body" | tail -n 1 || true)" == "data: [DONE]" ]] || fail "the completion stream does not end in [DONE]"

# Malformed JSON.
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" -d '{"messages": [')"
expect "malformed JSON is 400 with error.message" 400 "$st" '^\{"error":\{"message":"[^"]+","type":"invalid_request_error"'

# A body over --max-body (65536 bytes).
head -c 70000 /dev/zero | tr '\0' 'a' >"$tmp/big"
printf '{"messages":[{"role":"user","content":"%s"}]}' "$(cat "$tmp/big")" >"$tmp/big.json"
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" --data-binary "@$tmp/big.json")"
expect "a body over --max-body is 413" 413 "$st" '"error":\{"message":"[^"]+"'

# No key, and a wrong key.
st="$(request POST /v1/chat/completions "${json[@]}" -d '{"messages":[{"role":"user","content":"Hi"}]}')"
expect "a missing API key is 401" 401 "$st" '"type":"authentication_error"' '"code":"invalid_api_key"'
st="$(request GET /v1/models -H "Authorization: Bearer $key-wrong")"
expect "a wrong API key is 401" 401 "$st" '"type":"authentication_error"'

# A prompt longer than the context (--ctx-size 256).
long="$(printf 'model token expert layer attention %.0s' $(seq 120))"
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" \
  -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}],\"max_tokens\":4}")"
expect "a prompt over the context is 400 context_length_exceeded" 400 "$st" '"code":"context_length_exceeded"' \
  '"message":"[^"]*256'
st="$(request POST /v1/completions "${auth[@]}" "${json[@]}" -d "{\"prompt\":\"$long\",\"max_tokens\":4}")"
expect "a completion prompt over the context is 400 context_length_exceeded" 400 "$st" \
  '"code":"context_length_exceeded"'

# An unknown model, an unknown route, a wrong method.
st="$(request POST /v1/chat/completions "${auth[@]}" "${json[@]}" \
  -d '{"model":"no-such-model","messages":[{"role":"user","content":"Hi"}]}')"
expect "an unknown model is 404" 404 "$st" '"code":"model_not_found"'
st="$(request GET /v1/nothing-here "${auth[@]}")"
expect "an unknown route is 404 with an error body" 404 "$st" '"error":\{"message":"[^"]+"'

# The chat page.
st="$(request GET /)"
expect "GET / is the HTML chat page" 200 "$st" '<html' '</html>'
grep -qi '^content-type: text/html' "$tmp/headers" || fail "GET / is not text/html"

# The metrics, with the requests above counted.
st="$(request GET /metrics "${auth[@]}")"
expect "GET /metrics" 200 "$st" '^onecard_requests_total\{' \
  '^onecard_requests_total\{endpoint="/v1/chat/completions",status="200"\} [1-9]' \
  '^onecard_requests_total\{endpoint="/v1/chat/completions",status="413"\} 1' \
  '^onecard_requests_total\{endpoint="/v1/chat/completions",status="401"\} 1' \
  '^onecard_kv_pages_used ' '^onecard_kv_pages_free ' '^onecard_time_to_first_token_seconds_bucket\{le="\+Inf"\} '
grep -qi '^content-type: text/plain' "$tmp/headers" || fail "/metrics is not text/plain"

echo "curl_test: $passes passed, $failures failed"
((failures == 0))

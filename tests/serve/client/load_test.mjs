// A bounded load test of `onecard serve` on the loopback: many concurrent streamed chat requests (raw fetch
// and an SSE reader), some aborted after their first chunks, in two runs on the same server:
//   1. "distinct": every request has its own system prompt (they share no prefix);
//   2. "shared": every request has the same long system prompt and its own user message.
// Checks: every request that was not aborted ended with a finish_reason, its usage and `data: [DONE]`; no
// 5xx (a 503 only where --allow-503 says the queue may overflow); the server stays healthy; the KV pages go
// back to idle (onecard_kv_pages_used 0) within --idle-s seconds after each run; the shared run hits the
// prefix cache (onecard_prefix_cache_hit_tokens_total grows by much more than in the distinct run). The time
// to first token of both runs is printed, and compared only with --assert-ttft (on a small, busy machine the
// comparison is noise-prone).
//
// Usage: node load_test.mjs [--requests=64] [--max-tokens=24] [--abort-fraction=0.25] [--abort-after=3]
//          [--system-words=160] [--idle-s=5] [--timeout-s=120] [--allow-503] [--assert-ttft] [--json=FILE]
// Every option may also come from the environment as LOAD_REQUESTS, LOAD_MAX_TOKENS, ... The server is
// ONECARD_URL (with ONECARD_API_KEY and ONECARD_MODEL_ID), as run.sh sets them:
//   bash run.sh load -- --requests=256 --max-tokens=64
import { writeFileSync } from 'node:fs';

import { authHeaders, env, metrics, sleep, sseData } from './lib.mjs';

function options() {
  const defaults = {
    requests: 64,
    'max-tokens': 24,
    'abort-fraction': 0.25,
    'abort-after': 3,
    'system-words': 160,
    'idle-s': 5,
    'timeout-s': 120,
    'allow-503': false,
    'assert-ttft': false,
    json: '',
  };
  const o = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const e = process.env[`LOAD_${key.toUpperCase().replaceAll('-', '_')}`];
    if (e !== undefined) o[key] = e;
  }
  for (const arg of process.argv.slice(2)) {
    const m = arg.match(/^--([a-z0-9-]+)(?:=(.*))?$/);
    if (!m || !(m[1] in defaults)) throw new Error(`unknown argument ${arg}`);
    o[m[1]] = m[2] ?? true;
  }
  for (const key of Object.keys(defaults)) {
    if (typeof defaults[key] === 'number') {
      o[key] = Number(o[key]);
      if (!Number.isFinite(o[key]) || o[key] < 0) throw new Error(`--${key} must be a number >= 0`);
    } else if (typeof defaults[key] === 'boolean') {
      o[key] = o[key] === true || o[key] === 'true' || o[key] === '1';
    }
  }
  return o;
}

const WORDS = (
  'model token expert layer attention query key value router gate hidden weight matrix vector tensor scale ' +
  'norm shared routed mixture sequence context prompt answer question memory cache batch stream server'
).split(' ');

function text(words, offset) {
  return Array.from({ length: words }, (_, i) => WORDS[(i * 7 + offset) % WORDS.length]).join(' ');
}

// One streamed request. Returns what happened: its status, chunks, finish_reason and usage, or the error that
// broke it (a reset connection, a stream without [DONE], a chunk that is not JSON; status 0: no response).
async function one(o, body, abort) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), o['timeout-s'] * 1000);
  const start = performance.now();
  const r = { status: 0, aborted: false, ttft: null, chunks: 0, tokens: 0, finish: null, done: false, usage: null };
  try {
    const res = await fetch(`${env.url}/v1/chat/completions`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    r.status = res.status;
    if (res.status !== 200) {
      r.error = await res.text();
      return r;
    }
    for await (const data of sseData(res)) {
      if (r.done) throw new Error('data after [DONE]');
      if (data === '[DONE]') {
        r.done = true;
        continue;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`error event: ${data}`);
      if (chunk.usage) r.usage = chunk.usage;
      const c = chunk.choices?.[0];
      if (!c) continue;
      if (r.ttft === null) r.ttft = (performance.now() - start) / 1000;
      ++r.chunks;
      if (c.delta?.content) ++r.tokens;
      if (c.finish_reason) r.finish = c.finish_reason;
      if (abort && r.chunks >= o['abort-after']) {
        r.aborted = true;
        controller.abort();
        break;
      }
    }
    if (!r.aborted && !r.done) throw new Error('the stream ended without data: [DONE]');
    return r;
  } catch (e) {
    if (r.aborted) return r;
    // A transport failure (a reset connection, a broken stream) is a failure of this request, reported with
    // when it happened.
    r.error = `${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ''} after ${r.chunks} chunks, ` +
      `${((performance.now() - start) / 1000).toFixed(3)} s`;
    return r;
  } finally {
    clearTimeout(timer);
    r.seconds = (performance.now() - start) / 1000;
  }
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function waitIdle(o) {
  const deadline = performance.now() + o['idle-s'] * 1000;
  let m;
  for (;;) {
    m = await metrics();
    if (m.onecard_kv_pages_used === 0) return m;
    if (performance.now() > deadline) {
      throw new Error(`onecard_kv_pages_used is ${m.onecard_kv_pages_used}, not 0, ${o['idle-s']} s after the run`);
    }
    await sleep(100);
  }
}

async function health() {
  const res = await fetch(`${env.url}/health`);
  if (res.status !== 200) throw new Error(`/health answered ${res.status} after the run`);
}

async function run(o, name, shared) {
  const before = await metrics();
  const n = o.requests;
  const aborts = Math.round(n * o['abort-fraction']);
  const stride = aborts > 0 ? n / aborts : Infinity;
  const common = text(o['system-words'], 0);
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      // The distinct run's system prompts differ from their first words on.
      const system = shared ? common : `Session ${i} of run ${name} ${text(3, i)}. ${common}`;
      const body = {
        model: env.modelId,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: `Question ${i}: ${text(12, i * 3)}` },
        ],
        max_tokens: o['max-tokens'],
        temperature: 0.8,
        seed: i,
        stream: true,
        stream_options: { include_usage: true },
      };
      const abort = aborts > 0 && Math.floor((i + 1) / stride) !== Math.floor(i / stride);
      return one(o, body, abort);
    }),
  );
  const wall = (performance.now() - start) / 1000;
  await health();
  const after = await waitIdle(o);

  const failures = [];
  const statuses = {};
  for (const [i, r] of results.entries()) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status === 503 && o['allow-503']) continue;
    if (r.status !== 200 || r.error) {
      failures.push(`request ${i}: status ${r.status} ${r.error ?? ''}`.trim());
      continue;
    }
    if (r.aborted) continue;
    if (!r.finish) failures.push(`request ${i}: no finish_reason`);
    if (!r.done) failures.push(`request ${i}: no [DONE]`);
    if (!r.usage) failures.push(`request ${i}: no usage chunk`);
    else if (r.usage.total_tokens !== r.usage.prompt_tokens + r.usage.completion_tokens) {
      failures.push(`request ${i}: usage does not add up: ${JSON.stringify(r.usage)}`);
    }
  }
  const ok = results.filter((r) => r.status === 200);
  const ttfts = ok.map((r) => r.ttft).filter((t) => t !== null).sort((a, b) => a - b);
  const tokens = ok.reduce((s, r) => s + (r.usage ? r.usage.completion_tokens : r.tokens), 0);
  const prompt = ok.reduce((s, r) => s + (r.usage ? r.usage.prompt_tokens : 0), 0);
  const delta = (key) => (after[key] ?? 0) - (before[key] ?? 0);
  const serverTtftCount = delta('onecard_time_to_first_token_seconds_count');
  const figures = {
    run: name,
    requests: n,
    aborted: results.filter((r) => r.aborted).length,
    statuses,
    wall_s: wall,
    completion_tokens: tokens,
    prompt_tokens_of_finished: prompt,
    tokens_per_s: tokens / wall,
    ttft_mean_s: ttfts.reduce((s, t) => s + t, 0) / ttfts.length,
    ttft_p50_s: quantile(ttfts, 0.5),
    ttft_p99_s: quantile(ttfts, 0.99),
    server_ttft_mean_s: serverTtftCount > 0 ? delta('onecard_time_to_first_token_seconds_sum') / serverTtftCount : NaN,
    prefix_cache_hit_tokens: delta('onecard_prefix_cache_hit_tokens_total'),
    failures,
  };
  const f = (x) => (Number.isFinite(x) ? x.toFixed(3) : String(x));
  console.log(
    `load ${name}: ${n} requests (${figures.aborted} aborted), statuses ${JSON.stringify(statuses)}, ` +
      `${f(wall)} s, ${tokens} tokens, ${f(figures.tokens_per_s)} tokens/s, ` +
      `TTFT mean ${f(figures.ttft_mean_s)} s p50 ${f(figures.ttft_p50_s)} s p99 ${f(figures.ttft_p99_s)} s ` +
      `(server mean ${f(figures.server_ttft_mean_s)} s), prefix cache hits +${figures.prefix_cache_hit_tokens} tokens`,
  );
  for (const line of failures.slice(0, 10)) console.log(`  FAIL ${line}`);
  return figures;
}

async function main() {
  const o = options();
  console.log(`load test against ${env.url}: ${JSON.stringify(o)}`);
  await health();
  const distinct = await run(o, 'distinct', false);
  const shared = await run(o, 'shared', true);
  const problems = [...distinct.failures, ...shared.failures];
  if (shared.prefix_cache_hit_tokens <= 0) problems.push('the shared run had no prefix cache hits');
  if (shared.prefix_cache_hit_tokens <= 4 * distinct.prefix_cache_hit_tokens) {
    problems.push(
      `the shared run hit the prefix cache for ${shared.prefix_cache_hit_tokens} tokens, the distinct run for ` +
        `${distinct.prefix_cache_hit_tokens}: expected far more in the shared run`,
    );
  }
  const ratio = shared.ttft_mean_s / distinct.ttft_mean_s;
  console.log(`load: TTFT mean shared / distinct = ${ratio.toFixed(3)}`);
  if (o['assert-ttft'] && !(ratio < 1)) problems.push(`the shared run's mean TTFT is not lower (${ratio.toFixed(3)})`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, distinct, shared }, null, 2));
  if (problems.length > 0) {
    for (const p of problems) console.error(`load test FAILED: ${p}`);
    process.exit(1);
  }
  console.log('load test passed');
}

await main();

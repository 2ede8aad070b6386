// Helpers shared by the client tests: where the server is (environment set by run.sh), the demo model's
// token ids (asked of `onecard tokenize`), forcing a token sequence out of a random-weight model, a
// Server-Sent-Events reader over fetch, and reading /metrics.
import { execFileSync } from 'node:child_process';

export const env = {
  url: process.env.ONECARD_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.ONECARD_API_KEY ?? '',
  modelId: process.env.ONECARD_MODEL_ID ?? 'demo',
  bin: process.env.ONECARD_BIN ?? '',
  model: process.env.ONECARD_MODEL ?? '',
};

export function authHeaders(key = env.apiKey) {
  const h = { 'Content-Type': 'application/json' };
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// Token ids of `text` under the served model's tokenizer, control tokens such as <think> recognised.
export function tokenize(text) {
  if (!env.bin || !env.model) throw new Error('ONECARD_BIN and ONECARD_MODEL must name the binary and the GGUF');
  const out = execFileSync(env.bin, ['tokenize', '-m', env.model, '--no-bos', '--special', '--text', text], {
    encoding: 'utf8',
  });
  return out.split(/\s+/).filter(Boolean).map(Number);
}

export const EOS_TEXT = '<｜end▁of▁sentence｜>';

// Sampling fields that make a greedy decode write `pieces` (a text, tokenized as the model would) and then
// EOS: each token gets a bias a step below the one before, and the repetition penalty removes every token
// once written, so that at each step the highest-biased unwritten token wins. The tokens must be distinct
// and must not occur among the last 64 prompt tokens (see `neutralFiller`).
export function forcedSampling(text, { step = 4 } = {}) {
  const ids = tokenize(text);
  const [eos] = tokenize(EOS_TEXT);
  const all = [...ids, eos];
  if (new Set(all).size !== all.length) {
    throw new Error(`cannot force ${JSON.stringify(text)}: its tokens repeat (${all.join(' ')})`);
  }
  if (100 - step * (all.length - 1) < 20) throw new Error(`too many tokens to force: ${all.length}`);
  const logit_bias = {};
  all.forEach((id, i) => {
    logit_bias[String(id)] = 100 - step * i;
  });
  return { ids, eos, sampling: { temperature: 0, repetition_penalty: 1e9, logit_bias, max_tokens: all.length + 4 } };
}

// A user message of ordinary words, longer than the repetition penalty's 64-token window, none of whose
// tokens is among `avoid` (the forced tokens), so that the penalty does not already hold them back.
export function neutralFiller(avoid, words = 90) {
  const vocabulary =
    'model token expert layer attention query key value router gate hidden weight matrix vector tensor ' +
    'scale norm shared routed mixture sequence context prompt answer question memory cache batch stream';
  const list = vocabulary.split(' ');
  const text = Array.from({ length: words }, (_, i) => list[(i * 7) % list.length]).join(' ');
  const ids = tokenize(text);
  const clash = ids.filter((id) => avoid.includes(id));
  if (clash.length > 0) throw new Error(`the filler holds forced tokens ${clash.join(' ')}`);
  if (ids.length <= 64) throw new Error(`the filler is too short: ${ids.length} tokens`);
  return text;
}

// Reads a fetch Response body as Server-Sent Events; yields each `data:` payload (a string), and stops at the
// end of the body. Comments (": keep-alive") are skipped.
export async function* sseData(response) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of response.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      if (data.length > 0) yield data.join('\n');
    }
  }
  buffer += decoder.decode();
  if (buffer.trim() !== '') throw new Error(`the stream ended inside an event: ${JSON.stringify(buffer)}`);
}

// GET /metrics as {name or name{labels}: value}.
export async function metrics(url = env.url, key = env.apiKey) {
  const res = await fetch(`${url}/metrics`, { headers: authHeaders(key) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^(\S+?(?:\{[^}]*\})?)\s+(\S+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

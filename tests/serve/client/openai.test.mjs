// `onecard serve` through the official `openai` npm client, used as an application would use it: no adapter
// code, only a baseURL and a key. run.sh starts the server (the demo model) and sets the environment.
// The demo model has random weights, so answers whose content matters are forced with logit_bias (see
// lib.mjs: forcedSampling).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from 'openai';

import { env, forcedSampling, neutralFiller } from './lib.mjs';

const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: env.apiKey || 'none' });
const model = env.modelId;

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather now in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  },
];
const TOOL_CALL_TEXT =
  '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>';
const REASONING_TEXT = '<think> quick brown fox</think> lazy dog';

function assertUsage(usage) {
  assert.ok(usage, 'usage is present');
  assert.equal(typeof usage.prompt_tokens, 'number');
  assert.equal(typeof usage.completion_tokens, 'number');
  assert.ok(usage.prompt_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

test('models.list returns the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

test('chat.completions.create, not streamed', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say something.' },
    ],
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assertUsage(r.usage);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
});

test('chat.completions.create, streamed with usage', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Count to ten.' }],
    max_tokens: 12,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  for (const ch of chunks) assert.equal(ch.object, 'chat.completion.chunk');
  assert.equal(new Set(chunks.map((ch) => ch.id)).size, 1, 'one id for the whole stream');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assertUsage(last.usage);
  for (const ch of chunks.slice(0, -1)) assert.equal(ch.usage, null, 'usage null before the last chunk');
  const finishes = chunks.flatMap((ch) => ch.choices.map((c) => c.finish_reason)).filter(Boolean);
  assert.equal(finishes.length, 1);
  assert.ok(['stop', 'length'].includes(finishes[0]));
  const text = chunks.map((ch) => ch.choices[0]?.delta.content ?? '').join('');
  assert.ok(text.length > 0);
  if (finishes[0] === 'length') assert.equal(last.usage.completion_tokens, 12);
});

// Streams a forced answer "<think> quick brown fox</think> lazy dog" and checks that the thinking arrives in
// delta.reasoning_content, before the content.
async function streamReasoning(extra) {
  const forced = forcedSampling(REASONING_TEXT);
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: neutralFiller(forced.ids) }],
    ...forced.sampling,
    ...extra,
    stream: true,
  });
  const order = [];
  let reasoning = '';
  let content = '';
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.reasoning_content) {
      reasoning += c.delta.reasoning_content;
      order.push('reasoning');
    }
    if (c.delta.content) {
      content += c.delta.content;
      order.push('content');
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(reasoning.trim(), 'quick brown fox');
  assert.equal(content.trim(), 'lazy dog');
  assert.equal(order.lastIndexOf('reasoning') < order.indexOf('content'), true, order.join(','));
  assert.equal(finish, 'stop');

  const whole = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: neutralFiller(forced.ids) }],
    ...forced.sampling,
    ...extra,
  });
  assert.equal(whole.choices[0].message.reasoning_content.trim(), 'quick brown fox');
  assert.equal(whole.choices[0].message.content.trim(), 'lazy dog');
  assert.ok(whole.usage.completion_tokens_details.reasoning_tokens > 0);
}

test('streamed reasoning: delta.reasoning_content, then content (tools declared)', async () => {
  await streamReasoning({ tools: TOOLS });
});

test('streamed reasoning: delta.reasoning_content, then content (no tools)', async () => {
  await streamReasoning({});
});

test('completions.create, not streamed', async () => {
  const r = await client.completions.create({ model, prompt: 'The quick brown fox', max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.choices[0].text.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assertUsage(r.usage);
});

test('completions.create, streamed', async () => {
  const stream = await client.completions.create({
    model,
    prompt: 'The quick brown fox',
    max_tokens: 6,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let count = 0;
  for await (const chunk of stream) {
    ++count;
    assert.equal(chunk.object, 'text_completion');
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(count >= 2);
  assert.ok(text.length > 0);
  assert.ok(['stop', 'length'].includes(finish));
  assertUsage(usage);
  // The same prompt not streamed gives the same greedy text.
  const whole = await client.completions.create({
    model,
    prompt: 'The quick brown fox',
    max_tokens: 6,
    temperature: 0,
  });
  assert.equal(text, whole.choices[0].text);
});

function toolRequest(forced) {
  return {
    model,
    messages: [
      { role: 'system', content: 'You can look up the weather.' },
      { role: 'user', content: neutralFiller(forced.ids) },
    ],
    tools: TOOLS,
    ...forced.sampling,
  };
}

test('tool call round trip', async () => {
  const forced = forcedSampling(TOOL_CALL_TEXT);
  const r = await client.chat.completions.create(toolRequest(forced));
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), {});
  assert.ok(c.message.content === null || c.message.content === '', `content ${c.message.content}`);

  // The result goes back as a tool message, after the assistant's message with its tool_calls.
  const next = await client.chat.completions.create({
    model,
    messages: [
      ...toolRequest(forced).messages,
      c.message,
      { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature_c: 21, sky: 'clear' }) },
    ],
    tools: TOOLS,
    max_tokens: 6,
    temperature: 0,
  });
  assert.equal(next.choices.length, 1);
  assert.ok(['stop', 'length', 'tool_calls'].includes(next.choices[0].finish_reason));
  assertUsage(next.usage);
  assert.ok(next.usage.prompt_tokens > r.usage.prompt_tokens);
});

test('tool call, streamed', async () => {
  const forced = forcedSampling(TOOL_CALL_TEXT);
  const stream = await client.chat.completions.create({ ...toolRequest(forced), stream: true });
  const calls = [];
  let content = '';
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? '';
    for (const d of c.delta.tool_calls ?? []) {
      calls[d.index] ??= { id: '', name: '', arguments: '' };
      const acc = calls[d.index];
      if (d.id) acc.id = d.id;
      if (d.function?.name) acc.name += d.function.name;
      if (d.function?.arguments) acc.arguments += d.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.match(calls[0].id, /^call_/);
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].arguments), {});
  assert.equal(content.trim(), '');
});

test('an unknown model is NotFoundError (404)', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: 'no-such-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    }),
    (e) => {
      assert.ok(e instanceof NotFoundError, e.constructor.name);
      assert.equal(e.status, 404);
      assert.match(e.message, /no-such-model/);
      return true;
    },
  );
});

const noKey = env.apiKey === '' && 'the server has no key';
test('a wrong API key is AuthenticationError (401)', { skip: noKey }, async () => {
  const wrong = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: `${env.apiKey}-wrong` });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    return true;
  });
  await assert.rejects(
    wrong.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
    AuthenticationError,
  );
});

test('temperature "hot" is BadRequestError (400) naming temperature', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' }),
    (e) => {
      assert.ok(e instanceof BadRequestError, e.constructor.name);
      assert.equal(e.status, 400);
      assert.match(e.message, /temperature/);
      assert.equal(e.param, 'temperature');
      return true;
    },
  );
});

test('n: 2 gives two choices', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Two answers, please.' }],
    n: 2,
    max_tokens: 5,
    temperature: 1,
    seed: 7,
  });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(
    r.choices.map((c) => c.index),
    [0, 1],
  );
  for (const c of r.choices) assert.equal(typeof c.message.content, 'string');
  assert.notEqual(r.choices[0].message.content, r.choices[1].message.content, 'choices sample with different seeds');
  assertUsage(r.usage);
});

test('logprobs with top_logprobs: 2', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 5,
    temperature: 0,
    logprobs: true,
    top_logprobs: 2,
  });
  const lp = r.choices[0].logprobs;
  assert.ok(lp && Array.isArray(lp.content));
  assert.equal(lp.content.length, r.usage.completion_tokens);
  for (const entry of lp.content) {
    assert.equal(typeof entry.token, 'string');
    assert.ok(entry.logprob <= 0);
    assert.equal(entry.top_logprobs.length, 2);
    assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
    // Greedy: the chosen token is the most likely one.
    assert.equal(entry.token, entry.top_logprobs[0].token);
  }
});

test('seed makes a sampled (non-greedy) request reproducible', async () => {
  const ask = (seed) =>
    client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      max_tokens: 10,
      temperature: 1.5,
      seed,
    });
  const a = await ask(1234);
  const b = await ask(1234);
  const c = await ask(4321);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { parseHandlerConfig, type OpenAiHandlerConfig } from '../../src/handlers/config.js';
import { conversationKey } from '../../src/handlers/handler.js';
import { createOpenAiHandler } from '../../src/handlers/openai.js';
import { captureLogger } from '../support/capture.js';
import { startFakeOpenAi } from '../fakes/openai/server.js';
import { makeEvent, rejectsWith } from './helpers.js';

const API_KEY = 'sk-test-0123456789abcdef';

function config(baseUrl: string, extra: Record<string, unknown> = {}): OpenAiHandlerConfig {
  return parseHandlerConfig({
    type: 'openai',
    base_url: baseUrl,
    model: 'fake-model',
    api_key: new Secret(API_KEY),
    timeout_ms: 500,
    retry_backoff_ms: 5,
    retry_backoff_max_ms: 20,
    ...extra,
  }) as OpenAiHandlerConfig;
}

await test('openai handler against an OpenAI-compatible server', async (t) => {
  const { log, raw } = captureLogger();
  const signal = new AbortController().signal;

  const fake = await startFakeOpenAi({ apiKey: API_KEY });
  t.after(async () => {
    await fake.close();
  });
  t.beforeEach(() => {
    fake.requests.length = 0;
    fake.script.length = 0;
  });

  await t.test(
    'sends model, system prompt, options and the key; delivers choices[0].message.content',
    async () => {
      const handler = createOpenAiHandler(
        config(fake.baseUrl, { system_prompt: 'You are terse.', max_tokens: 64, temperature: 0.2 }),
        { log },
      );
      const replies = await handler.handle(makeEvent({ text: 'hi there' }), signal);
      assert.equal(replies.length, 1);
      assert.match(replies[0]!.text, /^answer \d+ to: hi there$/);
      const request = fake.requests[0]!;
      assert.equal(request.headers.authorization, `Bearer ${API_KEY}`);
      assert.equal(request.body.model, 'fake-model');
      assert.equal(request.body.max_tokens, 64);
      assert.equal(request.body.temperature, 0.2);
      assert.equal(request.body.stream, false);
      assert.deepEqual(request.body.messages, [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'hi there' },
      ]);
    },
  );

  await t.test('keeps history per conversation, capped at max_history turns', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { max_history: 2 }), { log });
    const alice = (text: string) => makeEvent({ chat: 'alice', text });
    const bob = (text: string) => makeEvent({ chat: 'bob', text });
    const answers: string[] = [];
    for (const text of ['a1', 'a2', 'a3']) {
      answers.push((await handler.handle(alice(text), signal))[0]!.text);
    }
    await handler.handle(bob('b1'), signal);
    await handler.handle(alice('a4'), signal);

    // Bob's first request carries none of Alice's conversation.
    assert.deepEqual(fake.requests[3]!.body.messages, [{ role: 'user', content: 'b1' }]);
    // Alice's fourth carries her last two turns only.
    assert.deepEqual(fake.requests[4]!.body.messages, [
      { role: 'user', content: 'a2' },
      { role: 'assistant', content: answers[1] },
      { role: 'user', content: 'a3' },
      { role: 'assistant', content: answers[2] },
      { role: 'user', content: 'a4' },
    ]);
    assert.equal(handler.history(conversationKey(alice('x'))).length, 4);
  });

  await t.test('a failed call leaves the history as it was', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { max_attempts: 1 }), { log });
    const event = (text: string) => makeEvent({ chat: 'carol', text });
    await handler.handle(event('c1'), signal);
    fake.script.push({ kind: 'status', status: 500 });
    await rejectsWith(handler.handle(event('c2'), signal), 'GW_ERR_HANDLER_HTTP_STATUS');
    await handler.handle(event('c3'), signal);
    const messages = fake.requests[2]!.body.messages;
    assert.deepEqual(
      messages.map((m) => m.content).filter((c) => !c.startsWith('answer')),
      ['c1', 'c3'],
    );
  });

  await t.test(
    'max_conversations bounds the histories kept (least recently used goes first)',
    async () => {
      const handler = createOpenAiHandler(config(fake.baseUrl, { max_conversations: 2 }), { log });
      for (const chat of ['u1', 'u2', 'u3'])
        await handler.handle(makeEvent({ chat, text: chat }), signal);
      assert.equal(handler.conversations, 2);
      assert.equal(handler.history(conversationKey(makeEvent({ chat: 'u1' }))).length, 0);
      assert.equal(handler.history(conversationKey(makeEvent({ chat: 'u3' }))).length, 2);
    },
  );

  await t.test('max_history 0 sends no history', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { max_history: 0 }), { log });
    await handler.handle(makeEvent({ chat: 'dave', text: 'd1' }), signal);
    await handler.handle(makeEvent({ chat: 'dave', text: 'd2' }), signal);
    assert.deepEqual(fake.requests[1]!.body.messages, [{ role: 'user', content: 'd2' }]);
  });

  await t.test(
    'a local server without a key: no Authorization header; base_url may end in /',
    async () => {
      const open = await startFakeOpenAi();
      try {
        const handler = createOpenAiHandler(
          parseHandlerConfig({
            type: 'openai',
            base_url: `${open.baseUrl}/`,
            model: 'llama',
          }) as OpenAiHandlerConfig,
          { log },
        );
        assert.equal((await handler.handle(makeEvent({ text: 'x' }), signal)).length, 1);
        assert.equal(open.requests[0]!.headers.authorization, undefined);
      } finally {
        await open.close();
      }
    },
  );

  await t.test('a wrong key is a 401, not retried', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { api_key: new Secret('sk-wrong') }), {
      log,
    });
    const err = await rejectsWith(
      handler.handle(makeEvent(), signal),
      'GW_ERR_HANDLER_HTTP_STATUS',
    );
    assert.equal(err.details.status, 401);
    assert.equal(fake.requests.length, 0);
  });

  await t.test('5xx then success within max_attempts', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { max_attempts: 2 }), { log });
    fake.script.push({ kind: 'status', status: 503 });
    assert.equal((await handler.handle(makeEvent(), signal)).length, 1);
    assert.equal(fake.requests.length, 2);
  });

  await t.test('malformed answers: not JSON, no choices, wrong content type', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl), { log });
    fake.script.push(
      { kind: 'raw', status: 200, text: 'data: {"choices"' },
      { kind: 'status', status: 200, body: { choices: [] } },
      { kind: 'status', status: 200, body: { choices: [{ message: { content: 42 } }] } },
    );
    for (let i = 0; i < 3; i++) {
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_MALFORMED_RESPONSE');
    }
  });

  await t.test('an empty or null content is no reply', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl), { log });
    fake.script.push({ kind: 'content', content: null }, { kind: 'content', content: '  ' });
    assert.deepEqual(await handler.handle(makeEvent(), signal), []);
    assert.deepEqual(await handler.handle(makeEvent(), signal), []);
  });

  await t.test('no answer within timeout_ms: GW_ERR_HANDLER_TIMEOUT', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { timeout_ms: 100 }), { log });
    fake.script.push({ kind: 'hang' });
    await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_TIMEOUT');
  });

  await t.test('the API key never reaches a log line or an error', async () => {
    const handler = createOpenAiHandler(config(fake.baseUrl, { max_attempts: 2 }), { log });
    fake.script.push({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const err = await rejectsWith(
      handler.handle(makeEvent(), signal),
      'GW_ERR_HANDLER_HTTP_STATUS',
    );
    assert.ok(!JSON.stringify({ message: err.message, details: err.details }).includes(API_KEY));
    assert.ok(!raw.join('\n').includes(API_KEY));
  });
});

await test('openai config', async (t) => {
  await t.test('model is required; defaults; api_key must be a secret', () => {
    assert.throws(() => parseHandlerConfig({ type: 'openai' }));
    assert.throws(() => parseHandlerConfig({ type: 'openai', model: 'm', api_key: 'inline' }));
    const parsed = parseHandlerConfig({ type: 'openai', model: 'm' });
    assert.equal(parsed.type, 'openai');
    if (parsed.type !== 'openai') return;
    assert.equal(parsed.base_url, 'https://api.openai.com/v1');
    assert.equal(parsed.max_history, 10);
    assert.equal(parsed.timeout_ms, 60_000);
    assert.equal(parsed.api_key, undefined);
  });
});

/**
 * Wire parsing: token answers in both `expires_in` forms, gateway discovery, frames, text
 * splitting and attachment URLs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanText, withScheme } from '../../../src/adapters/qqbot/normalize.js';
import {
  MESSAGE_EVENTS,
  decideClose,
  isMessageEvent,
  parseFrame,
  parseGatewayInfo,
  parseTokenAnswer,
} from '../../../src/adapters/qqbot/protocol.js';
import { splitText } from '../../../src/util/split-text.js';

await test('token answers: expires_in as a string or a number; errors by body, not status', () => {
  assert.deepEqual(parseTokenAnswer({ access_token: 'T', expires_in: '7200' }), {
    kind: 'token',
    accessToken: 'T',
    expiresInMs: 7_200_000,
  });
  assert.deepEqual(parseTokenAnswer({ access_token: 'T', expires_in: 60 }), {
    kind: 'token',
    accessToken: 'T',
    expiresInMs: 60_000,
  });
  assert.deepEqual(parseTokenAnswer({ code: 100016, message: 'invalid appid or secret' }), {
    kind: 'error',
    code: 100016,
    message: 'invalid appid or secret',
  });
  assert.deepEqual(parseTokenAnswer({ access_token: 'T', expires_in: 'soon' }), {
    kind: 'malformed',
  });
  assert.deepEqual(parseTokenAnswer('nope'), { kind: 'malformed' });
  assert.deepEqual(parseTokenAnswer({}), { kind: 'malformed' });
});

await test('gateway discovery needs a ws(s) url; session_start_limit is optional', () => {
  assert.equal(parseGatewayInfo({ shards: 1 }), null, "DOC's example without url");
  assert.equal(parseGatewayInfo({ url: 'https://x' }), null);
  assert.deepEqual(parseGatewayInfo({ url: 'wss://api.sgroup.qq.com/websocket' }), {
    url: 'wss://api.sgroup.qq.com/websocket',
    shards: null,
    sessionStartLimit: null,
  });
  const info = parseGatewayInfo({
    url: 'wss://x/websocket',
    shards: 1,
    session_start_limit: { total: 1000, remaining: 0, reset_after: 14_400_000, max_concurrency: 1 },
  });
  assert.deepEqual(info?.sessionStartLimit, {
    total: 1000,
    remaining: 0,
    resetAfterMs: 14_400_000,
    maxConcurrency: 1,
  });
});

await test('frames: JSON objects with an integer op; s only when positive', () => {
  assert.equal(parseFrame('x'), null);
  assert.equal(parseFrame('{"op":1.5}'), null);
  assert.equal(parseFrame('null'), null);
  assert.deepEqual(parseFrame('{"op":11}'), { op: 11, d: undefined, s: null, t: null, id: null });
  assert.equal(parseFrame('{"op":0,"s":0,"t":"X"}')?.s, null);
  assert.equal(parseFrame('{"op":0,"s":7,"t":"X","id":"X:1"}')?.s, 7);
});

await test('close codes outside the table: transport codes and unknown ones resume', () => {
  assert.deepEqual(decideClose(1006), {
    action: 'resume',
    errorCode: 'GW_ERR_QQ_CONNECTION_CLOSED',
    meaning: 'connection closed',
    known: true,
  });
  assert.equal(decideClose(4999).errorCode, 'GW_ERR_QQ_CLOSE_UNKNOWN');
  assert.equal(decideClose(4999).known, false);
  assert.equal(decideClose(4999).action, 'resume');
});

await test('text splits at the limit on code points, preferring line breaks', () => {
  assert.deepEqual(splitText('abc', 16), ['abc']);
  const emoji = '😀'.repeat(40);
  const parts = splitText(emoji, 16);
  assert.deepEqual(
    parts.map((p) => [...p].length),
    [16, 16, 8],
  );
  assert.equal(parts.join(''), emoji, 'no surrogate pair is cut');
  assert.deepEqual(splitText('aaaaaaaaaa\nbbbbbbbbbb', 16), ['aaaaaaaaaa', 'bbbbbbbbbb']);
  assert.deepEqual(splitText('   ', 16), []);
});

await test('attachment URLs get https:// when they have no scheme; bot mentions are cut', () => {
  assert.equal(withScheme('multimedia.nt.qq.com/a'), 'https://multimedia.nt.qq.com/a');
  assert.equal(withScheme('//cdn/a'), 'https://cdn/a');
  assert.equal(withScheme('http://x/a'), 'http://x/a');
  assert.equal(cleanText('<@!123> <@!123>  hi ', '123'), 'hi');
  assert.equal(cleanText('<@!456> hi', '123'), '<@!456> hi');
  assert.equal(cleanText('  hi  ', null), 'hi');
});

await test('isMessageEvent knows exactly the keys of MESSAGE_EVENTS', () => {
  for (const t of Object.keys(MESSAGE_EVENTS)) assert.equal(isMessageEvent(t), true, t);
  for (const t of ['READY', 'RESUMED', 'INTERACTION_CREATE', 'c2c', 'toString', '__proto__', ''])
    assert.equal(isMessageEvent(t), false, t);
});

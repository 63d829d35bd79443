/**
 * Per-chat order with several workers (docs/scale-out.md): 50 chats, 3 workers, every reply
 * delivered once and each chat's replies in the order its messages came.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  brokerBacklog,
  deliveredByTarget,
  gatewayReady,
  startScaleOut,
} from '../support/scale-out.js';
import { killAllChildren, waitFor } from '../support/spawn-gateway.js';

after(() => killAllChildren());

const CHATS = 50;
const PER_CHAT = 4;

await test('per-chat order holds with 3 workers and 50 chats; each reply once', async (t) => {
  const s = await startScaleOut();
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  // A handler that takes a varying time (0-60 ms by its pid) and answers with the text: an
  // instant echo would keep the order even if two workers shared a chat.
  const jittery = {
    type: 'command',
    argv: [
      'sh',
      '-c',
      'read -r line; sleep 0.0$(($$ % 7)); printf "%s" "$line" | sed -n \'s/.*"text":"\\([^"]*\\)".*/\\1/p\'',
    ],
    timeout_ms: 10_000,
  };
  const workers = await Promise.all([
    s.startWorker(jittery),
    s.startWorker(jittery),
    s.startWorker(jittery),
  ]);
  for (let i = 0; i < PER_CHAT; i++) {
    for (let c = 0; c < CHATS; c++) {
      s.fake.dispatchC2CMessage({ content: `c${c} m${i}`, userOpenid: `chat-${c}` });
    }
  }
  await waitFor(
    () => s.fake.records.sentMessages.length >= CHATS * PER_CHAT,
    `${CHATS * PER_CHAT} replies`,
    120_000,
    50,
  );
  const byChat = deliveredByTarget(s.fake);
  assert.equal(byChat.size, CHATS);
  for (let c = 0; c < CHATS; c++) {
    const expected = Array.from({ length: PER_CHAT }, (_, i) => `c${c} m${i}`);
    assert.deepEqual(byChat.get(`chat-${c}`), expected, `chat-${c} in order, each once`);
  }
  assert.deepEqual(await brokerBacklog(s.nats.url), { events: 0, replies: 0, dead: 0 });
  assert.equal(s.fake.records.sentMessages.length, CHATS * PER_CHAT, 'no reply twice');
  // The load was shared: every worker handled events.
  for (const w of workers) w.signal('SIGTERM');
  const handled: number[] = [];
  for (const w of workers) {
    assert.equal((await w.waitForExit(10_000)).code, 0);
    const line = w.lines.find((l) => l.msg === 'worker stopped');
    handled.push(Number(line?.handled));
  }
  assert.equal(
    handled.reduce((a, b) => a + b, 0),
    CHATS * PER_CHAT,
    `handled ${handled.join('+')}`,
  );
  assert.ok(
    handled.every((n) => n > 0),
    `every worker took a share: ${handled.join(', ')}`,
  );
});

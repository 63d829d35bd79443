/**
 * Updates → InboundEvents through the real adapter and the fake: kinds, chat types, topics,
 * captions, media, the bot's own messages, callback answers, and the offset confirming an
 * update only after the pipeline took it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from './harness.js';

const GROUP = { id: -4001, type: 'group', title: 'Friends' } as const;
const FORUM = { id: -1009001, type: 'supergroup', title: 'Forum', is_forum: true } as const;
const CHANNEL = { id: -1008001, type: 'channel', title: 'News' } as const;

await test('message, edited_message, channel_post → events with chat types; the edit is marked and not a duplicate', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const dm = h.fake.message('hi');
    h.fake.message('in a group', { chat: GROUP });
    h.fake.message('news', { chat: CHANNEL });
    h.fake.message('hi, edited', {
      kind: 'edited_message',
      messageId: dm.messageId,
      extra: { edit_date: 1_800_000_000 },
    });
    const events = await h.waitForEvents(4);
    assert.deepEqual(
      events.map((e) => [e.chat.type, e.chat.id, e.text]),
      [
        ['c2c', '1001', 'hi'],
        ['group', '-4001', 'in a group'],
        ['channel', '-1008001', 'news'],
        ['c2c', '1001', 'hi, edited'],
      ],
    );
    assert.equal(events[0]!.id, `telegram:1001:${dm.messageId}`);
    assert.equal(events[0]!.platform, 'telegram');
    assert.equal(events[0]!.sender.name, 'Ada');
    assert.equal(events[3]!.reply.edit, true);
    assert.notEqual(events[3]!.id, events[0]!.id, 'an edit is not dropped as a duplicate');
    assert.equal(events[2]!.sender.id, '-1008001', 'a channel post is sent by the channel');
  });
});

await test("captions become the text, media become attachments by file id, the bot's own messages are ignored", async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.message(null, {
      extra: {
        caption: 'look',
        photo: [
          { file_id: 'small', width: 90, height: 90 },
          { file_id: 'big', width: 1280, height: 1280 },
        ],
      },
    });
    h.fake.message('from myself', {
      chat: GROUP,
      from: { id: h.fake.botId, is_bot: true, first_name: 'Me' },
    });
    h.fake.message(null, {
      extra: { document: { file_id: 'doc1', file_name: 'a.pdf', mime_type: 'application/pdf' } },
    });
    const events = await h.waitForEvents(2);
    await h.fake.waitFor('poll', 5_000, () => h.fake.pendingUpdates === 0);
    assert.equal(events.length, 2);
    assert.equal(events[0]!.text, 'look');
    assert.deepEqual(events[0]!.attachments, [
      { url: 'telegram-file:big', content_type: 'image/jpeg', filename: null },
    ]);
    assert.deepEqual(events[1]!.attachments, [
      { url: 'telegram-file:doc1', content_type: 'application/pdf', filename: 'a.pdf' },
    ]);
    assert.equal(h.adapter.stats.ignored, 1);
  });
});

await test('callback_query → an event with the button data, answered with answerCallbackQuery', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const msg = h.fake.message('pick one', { chat: GROUP });
    const cb = h.fake.callbackQuery('choice:1', GROUP, msg.messageId);
    const answered = h.fake.waitFor('callback-answered', 5_000, (id) => id === cb.id);
    const events = await h.waitForEvents(2);
    assert.equal(events[1]!.text, 'choice:1');
    assert.equal(events[1]!.chat.id, '-4001');
    assert.equal(events[1]!.reply.message_id, msg.messageId);
    await answered;
    assert.deepEqual(h.fake.answeredCallbacks, [cb.id]);
  });
});

await test('forum topics: message_thread_id is kept for the reply and the reply lands in the topic', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat(FORUM, [77]);
    await h.connected();
    h.fake.message('in topic', {
      chat: FORUM,
      extra: { message_thread_id: 77, is_topic_message: true },
    });
    // A reply thread in a non-forum group also carries message_thread_id: not a topic (§5.4).
    h.fake.message('reply thread', { chat: GROUP, extra: { message_thread_id: 5 } });
    const events = await h.waitForEvents(2);
    assert.equal(events[0]!.reply.message_thread_id, 77);
    assert.equal(events[1]!.reply.message_thread_id, undefined);
    await h.adapter.send({ chat: events[0]!.chat, text: 'answer', reply: events[0]!.reply });
    await h.adapter.send({ chat: events[1]!.chat, text: 'answer', reply: events[1]!.reply });
    assert.equal(h.fake.sent[0]!.threadId, 77);
    assert.equal(h.fake.sent[1]!.threadId, null);
  });
});

await test('offset: each poll confirms exactly the updates taken before it; unknown update kinds are skipped but confirmed', async () => {
  const config = { allowed_updates: ['message', 'poll'] };
  await withHarness({ config }, async (h) => {
    await h.connected();
    const a = h.fake.message('one');
    h.fake.pushUpdate('poll', { id: 'p1', question: '?', options: [] });
    const c = h.fake.message('three');
    await h.waitForEvents(2);
    await h.fake.waitFor('poll', 5_000, () => h.fake.pendingUpdates === 0);
    const offsets = h.fake.requests
      .filter((r) => r.method === 'getupdates')
      .flatMap((r) => (typeof r.params.offset === 'number' ? [r.params.offset] : []));
    assert.ok(
      offsets.includes(c.updateId + 1),
      `offsets ${offsets.join(',')} confirm the last update`,
    );
    assert.ok(offsets.every((o) => o > a.updateId - 1));
    assert.equal(h.adapter.stats.ignored, 1);
  });
});

await test('stop: updates taken since the last successful poll are confirmed before the adapter ends', async () => {
  const config = { polling: { timeout_s: 5 }, reconnect: { backoff_ms: [10_000] } };
  await withHarness({ config }, async (h) => {
    await h.connected();
    await h.fake.waitFor('poll-waiting', 5_000, () => h.fake.pollWaiting);
    // The poll after this update fails, so no poll has confirmed it when the stop comes.
    h.fake.fault('getUpdates', {
      kind: 'error',
      code: 500,
      description: 'Internal Server Error: restart',
    });
    h.fake.message('last words');
    await h.waitForEvents(1);
    await h.waitForState((s) => s.state === 'reconnecting', 'backoff');
    assert.equal(h.fake.pendingUpdates, 1);
    await h.stop();
    assert.equal(h.fake.pendingUpdates, 0, 'nothing is redelivered to a successor');
    const last = h.fake.requests.at(-1)!;
    assert.equal(last.method, 'getupdates');
    assert.equal(last.params.timeout, 0);
  });
});

/**
 * Inbound dispatches → normalized InboundEvents, malformed and oversized frames, and the
 * exactly-once delivery of events across a Resume.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from './harness.js';

await test('C2C_MESSAGE_CREATE → c2c event (trimmed text, reply context, https attachments)', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const sent = h.fake.dispatchC2CMessage({
      content: '  hello there \n',
      userOpenid: 'USER1',
      attachments: [
        { content_type: 'image/png', filename: 'a.png', url: 'multimedia.nt.qq.com/x.png' },
      ],
    });
    const [event] = await h.waitForEvents(1);
    assert.deepEqual(event, {
      id: `qqbot:${sent.d.id}`,
      platform: 'qqbot',
      type: 'qqbot',
      chat: { type: 'c2c', id: 'USER1' },
      sender: { id: 'USER1' },
      text: 'hello there',
      attachments: [
        { url: 'https://multimedia.nt.qq.com/x.png', content_type: 'image/png', filename: 'a.png' },
      ],
      timestamp: sent.d.timestamp,
      reply: { msg_id: sent.d.id, event_type: 'C2C_MESSAGE_CREATE' },
      // The dispatch's seq: what the handled watermark (the resume point) is made of.
      position: sent.s,
    });
    // touch(): the state file records when the platform last sent something.
    const doc = await h.waitForState(
      (d) => d.platforms.qqbot?.last_event_at !== null,
      'last_event_at',
    );
    assert.ok(Date.parse(h.qq(doc).last_event_at!) > 0);
  });
});

await test('GROUP_AT_MESSAGE_CREATE → group event addressed to the group openid', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const sent = h.fake.dispatchGroupAtMessage({
      content: 'ping',
      groupOpenid: 'G1',
      memberOpenid: 'M1',
    });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.chat.type, 'group');
    assert.equal(event!.chat.id, 'G1');
    assert.equal(event!.sender.id, 'M1');
    assert.equal(event!.text, 'ping');
    assert.equal(event!.reply.msg_id, sent.d.id);
  });
});

await test('AT_MESSAGE_CREATE → channel event without the bot mention', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const sent = h.fake.dispatchAtMessage({
      content: 'what time is it?',
      channelId: 'C1',
      guildId: 'GU1',
      username: 'alice',
    });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.chat.type, 'channel');
    assert.equal(event!.chat.id, 'C1');
    assert.equal(event!.text, 'what time is it?');
    assert.equal(event!.sender.name, 'alice');
    assert.deepEqual(event!.reply, {
      msg_id: sent.d.id,
      event_type: 'AT_MESSAGE_CREATE',
      guild_id: 'GU1',
      channel_id: 'C1',
    });
  });
});

await test('DIRECT_MESSAGE_CREATE → dm event addressed to the DM guild', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchDirectMessage({ content: 'psst', guildId: 'DMGUILD', channelId: 'DMCH' });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.chat.type, 'dm');
    assert.equal(event!.chat.id, 'DMGUILD');
    assert.equal(event!.text, 'psst');
  });
});

await test('MESSAGE_CREATE becomes an event only when GUILD_MESSAGES is enabled', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessageCreate({ content: 'ignored' });
    h.fake.dispatchC2CMessage({ content: 'marker' });
    const events = await h.waitForEvents(1);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.text, 'marker');
    assert.equal(h.adapter.stats.otherDispatches.MESSAGE_CREATE, 1);
  });
  await withHarness(
    { config: { intents: ['GUILD_MESSAGES', 'PUBLIC_GUILD_MESSAGES'] } },
    async (h) => {
      await h.connected();
      assert.equal(h.fake.identifies[0]!.intents, (1 << 9) | (1 << 30));
      h.fake.dispatchMessageCreate({ content: 'seen', channelId: 'C9' });
      const [event] = await h.waitForEvents(1);
      assert.equal(event!.chat.type, 'channel');
      assert.equal(event!.chat.id, 'C9');
    },
  );
});

await test('other dispatches are counted and logged at debug, never emitted', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatch('GROUP_ADD_ROBOT', { group_openid: 'G', op_member_openid: 'M', timestamp: 1 });
    h.fake.dispatch('FRIEND_ADD', { openid: 'U', timestamp: 1 });
    h.fake.dispatchC2CMessage({ content: 'marker' });
    const events = await h.waitForEvents(1);
    assert.equal(events.length, 1);
    assert.equal(h.adapter.stats.otherDispatches.GROUP_ADD_ROBOT, 1);
    assert.equal(h.adapter.stats.otherDispatches.FRIEND_ADD, 1);
    assert.ok(h.logs.lines.some((l) => l.level === 20 && l.event_type === 'GROUP_ADD_ROBOT'));
  });
});

await test('malformed frames are logged with GW_ERR_QQ_MALFORMED_FRAME and never crash the adapter', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.sendRaw('this is not json');
    h.fake.sendRaw('{"op":"zero"}');
    h.fake.sendRaw('[1,2,3]');
    h.fake.sendRaw('{"op":0,"s":99,"t":"C2C_MESSAGE_CREATE","d":{"content":"no id, no author"}}');
    h.fake.dispatchC2CMessage({ content: 'still alive' });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.text, 'still alive');
    assert.equal(h.codes().filter((c) => c === 'GW_ERR_QQ_MALFORMED_FRAME').length, 3);
    assert.equal(h.codes().filter((c) => c === 'GW_ERR_QQ_BAD_EVENT').length, 1);
    assert.equal(h.adapter.stats.malformedFrames, 3);
    assert.equal(h.adapter.stats.badEvents, 1);
    assert.equal(h.fake.connections.length, 1, 'same connection throughout');
    assert.equal(h.qq().state, 'connected');
  });
});

await test('oversized frames above max_payload_bytes are dropped with GW_ERR_QQ_FRAME_TOO_LARGE', async () => {
  await withHarness({ config: { max_payload_bytes: 4096 } }, async (h) => {
    await h.connected();
    h.fake.sendOversized(4097);
    h.fake.dispatchC2CMessage({ content: 'after the big one' });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.text, 'after the big one');
    assert.ok(h.codes().includes('GW_ERR_QQ_FRAME_TOO_LARGE'));
    assert.equal(h.adapter.stats.oversizedFrames, 1);
    assert.equal(h.fake.connections.length, 1);
  });
});

await test('frames above the hard cap (4 × max_payload_bytes) cut the connection, which resumes', async () => {
  await withHarness({ config: { max_payload_bytes: 4096 } }, async (h) => {
    await h.connected();
    const from = h.mark();
    const resumed = h.fake.waitFor('resumed');
    h.fake.sendOversized(4 * 4096 + 1);
    await resumed;
    await h.connected(from);
    assert.ok(h.codes().includes('GW_ERR_QQ_FRAME_TOO_LARGE'));
    const reconnecting = h.states
      .slice(from)
      .find((d) => d.platforms.qqbot?.state === 'reconnecting');
    assert.equal(reconnecting?.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_FRAME_TOO_LARGE');
  });
});

await test('Resume delivers every event sent after the disconnect exactly once', async () => {
  await withHarness({ config: { reconnect: { backoff_ms: [150] } } }, async (h) => {
    await h.connected();
    const before = [1, 2, 3].map((i) => h.fake.dispatchC2CMessage({ content: `before ${i}` }));
    await h.waitForEvents(3);
    const disconnected = h.fake.waitFor('disconnect');
    h.fake.closeClient(4009);
    await disconnected;
    // Sent while no connection exists: buffered by the server for the Resume.
    const during = [1, 2, 3, 4].map((i) => h.fake.dispatchC2CMessage({ content: `during ${i}` }));
    assert.ok(during.every((d) => !d.delivered));
    await h.fake.waitFor('resumed');
    const after = h.fake.dispatchC2CMessage({ content: 'after' });
    const events = await h.waitForEvents(8);
    const ids = events.map((e) => e.id);
    assert.deepEqual(
      ids,
      [...before, ...during, after].map((d) => `qqbot:${d.d.id}`),
    );
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(h.fake.resumes[0]!.replayed, 4);
    assert.equal(h.fake.resumes[0]!.seq, before.at(-1)!.s, 'resumed from the last seq seen');
    h.fake.assertNoViolations();
  });
});

await test('a redelivered message keeps its event id, so the pipeline can drop it', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const first = h.fake.dispatchC2CMessage({ content: 'once', id: 'ROBOT1.0_same' });
    h.fake.dispatch('C2C_MESSAGE_CREATE', first.d);
    h.fake.dispatchC2CMessage({ content: 'marker' });
    const events = await h.waitForEvents(3);
    assert.deepEqual(
      events.map((e) => [e.id, e.text]),
      [
        ['qqbot:ROBOT1.0_same', 'once'],
        ['qqbot:ROBOT1.0_same', 'once'],
        [events[2]!.id, 'marker'],
      ],
    );
  });
});

/**
 * Dispatches → events through the real adapter and fake: DMs always, guild channels when
 * mentioned or replied to (respond_to: mentions) or always (all), edits marked, the bot's own
 * and other bots' / webhooks' / system messages never, replays deduplicated by id, positions
 * from `s`, and the MESSAGE_CONTENT warning.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from './harness.js';

await test('a guild mention → a channel event, the mention cut from the text, position = s', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const d = h.fake.dispatchMessage({
      content: 'ping',
      mentionsBot: true,
      channelId: '310000000000000001',
    });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.text, 'ping');
    assert.deepEqual(event!.chat, { type: 'channel', id: '310000000000000001' });
    assert.equal(event!.type, 'discord');
    assert.equal(event!.platform, 'discord');
    assert.equal(event!.position, d!.s);
    assert.equal(event!.sender.name, 'Alice');
    assert.equal((event!.reply as { message_id: string }).message_id, (d!.d as { id: string }).id);
  });
});

await test('DM → always answered; a guild message without mention → not (respond_to: mentions)', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({ content: 'in a channel, not for me' });
    h.fake.dispatchMessage({ content: 'dm', guildId: null, channelId: '320000000000000001' });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.chat.type, 'dm');
    assert.equal(event!.text, 'dm');
    assert.equal(h.events.length, 1);
    assert.equal(h.adapter.stats.ignored, 1);
  });
});

await test('a reply to the bot counts as addressed; a thread is answered in the thread', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({
      content: 'in reply',
      replyToBot: true,
      channelId: '330000000000000001',
    });
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.chat.id, '330000000000000001');
  });
});

await test('respond_to: all → every guild message; MESSAGE_CONTENT missing is warned once at READY', async () => {
  await withHarness(
    { config: { respond_to: 'all', intents: ['GUILDS', 'GUILD_MESSAGES', 'DIRECT_MESSAGES'] } },
    async (h) => {
      await h.connected();
      h.fake.dispatchMessage({ content: 'hidden without the intent' });
      const [event] = await h.waitForEvents(1);
      // The fake blanks content without MESSAGE_CONTENT, as Discord does.
      assert.equal(event!.text, '');
      const warned = h.logs.lines.filter((l) => String(l.msg).includes('MESSAGE_CONTENT'));
      assert.equal(warned.length, 1);
    },
  );
});

await test('own messages, other bots, webhooks and system messages are not answered', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({
      content: 'mine',
      authorId: h.fake.settings.bot.id,
      mentionsBot: true,
    });
    h.fake.dispatchMessage({ content: 'bot', bot: true, mentionsBot: true });
    h.fake.dispatchMessage({ content: 'hook', webhook: true, mentionsBot: true });
    h.fake.dispatchMessage({ content: 'pinned', type: 6, mentionsBot: true });
    h.fake.dispatchMessage({ content: 'real', mentionsBot: true });
    const events = await h.waitForEvents(1);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.text, 'real');
    assert.equal(h.adapter.stats.ignored, 4);
  });
});

await test('ignore_bots: false → other bots are answered (never the bot itself)', async () => {
  await withHarness({ config: { ignore_bots: false } }, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({
      content: 'mine',
      authorId: h.fake.settings.bot.id,
      mentionsBot: true,
    });
    h.fake.dispatchMessage({ content: 'bot', bot: true, mentionsBot: true });
    const events = await h.waitForEvents(1);
    assert.equal(events[0]!.text, 'bot');
    assert.equal(h.events.length, 1);
  });
});

await test('MESSAGE_UPDATE with an edit time → an event marked as an edit, its own id', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({ id: '800000000000000001', content: 'v1', mentionsBot: true });
    h.fake.dispatchMessage({
      id: '800000000000000001',
      content: 'v2',
      mentionsBot: true,
      edit: true,
    });
    const events = await h.waitForEvents(2);
    assert.equal(events[1]!.text, 'v2');
    assert.equal((events[1]!.reply as { edit?: boolean }).edit, true);
    assert.notEqual(events[1]!.id, events[0]!.id);
    assert.equal(h.adapter.stats.edits, 1);
  });
});

await test('a malformed message dispatch is dropped with GW_ERR_DISCORD_BAD_EVENT, the connection lives', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatch('MESSAGE_CREATE', { id: '1', guild_id: '2' });
    h.fake.dispatchMessage({ content: 'after', mentionsBot: true });
    await h.waitForEvents(1);
    assert.ok(h.codes().includes('GW_ERR_DISCORD_BAD_EVENT'));
    assert.equal(h.adapter.stats.badEvents, 1);
  });
});

await test('messages sent while disconnected are replayed by the Resume, in order, with their s', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({ content: 'a', mentionsBot: true });
    await h.waitForEvents(1);
    h.fake.refuseConnections(true);
    h.fake.terminateClient();
    await h.fake.until(() => h.fake.openConnections === 0, 'the drop');
    h.fake.dispatchMessage({ content: 'b', mentionsBot: true });
    h.fake.dispatchMessage({ content: 'c', mentionsBot: true });
    h.fake.refuseConnections(false);
    const events = await h.waitForEvents(3);
    assert.deepEqual(
      events.map((e) => e.text),
      ['a', 'b', 'c'],
    );
    assert.ok(events[1]!.position! < events[2]!.position!);
    assert.equal(h.fake.acceptedIdentifies, 1);
  });
});

/**
 * A planned stop loses nothing (GitHub issue 15, docs/delivery.md "Planned stop"): the built
 * CLI with the Telegram adapter and a webhook handler is sent SIGTERM while five events are in
 * flight. It must exit 0 after answering those the drain could finish, leave the others above
 * the handled watermark (and a reply whose send was cut short in the outbox), and the next
 * process must answer exactly those, once each, without asking the handler again for a reply
 * it already had.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { InboundEvent } from '../../src/adapters/contract.js';
import { DeliveryStore, deliveryStorePath } from '../../src/delivery/store.js';
import { FakeTelegramServer, type FakeChat } from '../../src/fakes/telegram/server.js';
import { captureLogger } from '../support/capture.js';
import {
  GatewayProcess,
  killAllChildren,
  makeTempDir,
  PRODUCT_CLI,
  removeTempDir,
  sandboxEnv,
  waitFor,
  waitForState,
  writeConfig,
} from '../support/spawn-gateway.js';

after(killAllChildren);

/** A bot id of its own: credential locks are machine-wide. */
const TOKEN = '7990002626:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_stop';
const chat = (id: number): FakeChat => ({ id, type: 'private', first_name: `U${id}` });

/**
 * The handler's side: answers `re: <text>`; texts starting `fast` after 800 ms (within the
 * drain), `slow` never while `holdSlow` is set (the stop cancels them), the rest at once.
 */
class Webhook {
  readonly seen: string[] = [];
  holdSlow = true;
  private readonly server = http.createServer((req, res) => this.answer(req, res));
  private readonly held = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    this.server.close();
    if (this.server.listening) await once(this.server, 'close');
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as InboundEvent;
      this.seen.push(event.text);
      const reply = (): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ replies: [{ text: `re: ${event.text}` }] }));
      };
      if (event.text.startsWith('slow') && this.holdSlow) this.held.add(res);
      else if (event.text.startsWith('fast') && this.holdSlow) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          reply();
        }, 800);
        this.timers.add(timer);
      } else reply();
    });
  }
}

await test('SIGTERM with events in flight: exit 0, nothing lost, the next process answers the rest once', async () => {
  const dir = await makeTempDir('hgw-planned-stop-');
  const fake = await FakeTelegramServer.start({ token: TOKEN });
  const webhook = new Webhook();
  const url = await webhook.start();
  const statePath = join(dir, 'gateway_state.json');
  const config = await writeConfig(dir, {
    state_file: statePath,
    log_level: 'debug',
    // The drain gets half: 2 s for the 800 ms answers, under any load.
    shutdown_timeout_ms: 4_000,
    handler: { type: 'webhook', url, secret: '${HGW_TEST_HOOK_SECRET}', timeout_ms: 30_000 },
    platforms: {
      telegram: {
        enabled: true,
        token: '${HGW_TEST_TG_TOKEN}',
        api_base: fake.apiBase,
        polling: { timeout_s: 1, handled_wait_ms: 100 },
        timeouts: { rest_ms: 30_000, poll_slack_ms: 1_000 },
        send: { private_interval_ms: 0, group_interval_ms: 0, global_interval_ms: 0 },
        jitter: false,
      },
    },
  });
  const env = sandboxEnv(dir, {
    HGW_TEST_TG_TOKEN: TOKEN,
    HGW_TEST_HOOK_SECRET: 'planned-stop-secret',
  });
  const run = (): GatewayProcess =>
    new GatewayProcess(['run', '--config', config], { cli: PRODUCT_CLI, env });
  const repliesTo = (text: string): number =>
    fake.sent.filter((m) => m.text === `re: ${text}`).length;
  try {
    const first = run();
    await waitForState(
      statePath,
      (d) => d.platforms.telegram?.state === 'connected',
      'connected',
      20_000,
    );
    const early = fake.message('early', { chat: chat(1) });
    await waitFor(() => repliesTo('early') === 1, 'the first answer', 10_000);
    // The first send after this hangs: its reply is in flight (written, not delivered) at the stop.
    fake.fault('sendMessage', { kind: 'hang' });
    // Listened for before the messages go in: the hang can come before the handler saw them all.
    const hung = fake.waitFor('hang', 10_000);
    fake.message('send-cut', { chat: chat(2) });
    fake.message('fast a', { chat: chat(3) });
    fake.message('fast b', { chat: chat(4) });
    fake.message('slow c', { chat: chat(5) });
    fake.message('slow d', { chat: chat(6) });
    await waitFor(() => webhook.seen.length === 6, 'the handler asked for all five', 10_000);
    await hung;

    first.signal('SIGTERM');
    const exit = await first.waitForExit(20_000);
    assert.equal(exit.code, 0, first.stdout.slice(-3000));
    // The drain finished what it could: the two answers that came within it went out.
    assert.equal(repliesTo('fast a'), 1);
    assert.equal(repliesTo('fast b'), 1);
    assert.equal(repliesTo('send-cut') + repliesTo('slow c') + repliesTo('slow d'), 0);
    // The rest is above the watermark: unconfirmed at Telegram, the cut reply in the outbox.
    const state = await waitForState(statePath, (d) => d.gateway.state === 'stopped', 'stopped');
    assert.equal(state.gateway.exit_code, 0);
    assert.equal(state.platforms.telegram?.delivery?.handled_position, early.updateId);
    assert.equal(fake.pendingUpdates, 5, 'nothing above the first unanswered update confirmed');
    const store = DeliveryStore.open({
      path: deliveryStorePath(statePath),
      rememberMs: 60_000,
      maxEntries: 1_000,
      sync: 'normal',
      resumeMaxAgeMs: 300_000,
      log: captureLogger().log,
    });
    const pending = store.takePending().map((p) => p.text);
    assert.equal(store.resumePoint('telegram')?.position, early.updateId);
    store.close();
    assert.deepEqual(pending, ['re: send-cut']);

    webhook.holdSlow = false;
    const second = run();
    await waitFor(
      () => ['send-cut', 'slow c', 'slow d'].every((t) => repliesTo(t) === 1),
      'the next process answers the rest',
      20_000,
    );
    second.signal('SIGTERM');
    assert.equal((await second.waitForExit(20_000)).code, 0, second.stdout.slice(-3000));
    for (const text of ['early', 'send-cut', 'fast a', 'fast b', 'slow c', 'slow d']) {
      assert.equal(repliesTo(text), 1, `one reply to ${text}`);
    }
    // The cut reply was re-sent from the outbox, not asked for again; the answered ones
    // were not asked for again either; the cancelled ones were.
    assert.deepEqual(webhook.seen.slice(6).sort(), ['slow c', 'slow d']);
    assert.equal(fake.pendingUpdates, 0);
    assert.ok(
      second.lines.some((l) => l.level === 40 && typeof l.replies === 'number'),
      'the re-send without an idempotency key is announced',
    );
  } finally {
    killAllChildren();
    await webhook.close();
    await fake.close();
    await removeTempDir(dir);
  }
});

/**
 * The metrics, driven the way the gateway drives them: a real Runner with a scripted adapter
 * that emits events, the real pipeline (echo) and the control server started by the runner's
 * READY, scraped over HTTP.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { OutboundMessage } from '../../src/adapters/contract.js';
import { Secret } from '../../src/config/secret.js';
import { controlRequest } from '../../src/control/client.js';
import { controlSchema } from '../../src/control/config.js';
import { createControlServer } from '../../src/control/server.js';
import { parseHandlerConfig } from '../../src/handlers/config.js';
import { createPipeline } from '../../src/handlers/pipeline.js';
import * as shared from '../../src/metrics.js';
import { createMetrics } from '../../src/metrics.js';
import { Runner } from '../../src/runner/runner.js';
import { StateStore } from '../../src/state/store.js';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import { captureLogger, recordingNotifier } from '../support/capture.js';
import { within } from '../support/deadline.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  PRODUCT_CLI,
} from '../support/spawn-gateway.js';
import { ScriptedAdapter, scriptedSchema } from '../support/scripted-platform.js';
import { qqbotInstanceFor } from '../support/qq-instance.js';

const TOKEN = 'metrics-test-token';

/** The scripted adapter, recording sends in memory instead of printing them. */
class QuietScripted extends ScriptedAdapter {
  readonly sent: OutboundMessage[] = [];
  override send(message: OutboundMessage): Promise<{ ids: string[] }> {
    this.sent.push(message);
    return Promise.resolve({ ids: [`q${this.sent.length}`] });
  }
}

/** The value of one sample line in Prometheus text, or undefined. */
function sample(text: string, line: string): number | undefined {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

await test('metrics', async (t) => {
  await t.test('each createMetrics() has its own registry with every named metric', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.inboundEventsTotal.inc('x');
    const scraped = (m: typeof a): Promise<string> =>
      m.registry.getSingleMetricAsString('hermes_inbound_events_total');
    assert.match(await scraped(a), /^hermes_inbound_events_total\{platform="x",type="x"\} 1$/m);
    assert.doesNotMatch(await scraped(b), /platform="x"/);
    const names = a.registry
      .getMetricsAsArray()
      .map((m) => m.name)
      .sort();
    assert.deepEqual(names, [
      'hermes_adapter_reconnect_attempt',
      'hermes_adapter_state',
      'hermes_broker_dead_letters_total',
      'hermes_deliveries_total',
      'hermes_duplicates_dropped_total',
      'hermes_gateway_state',
      'hermes_handler_errors_total',
      'hermes_handler_latency_seconds',
      'hermes_inbound_events_total',
      'hermes_ingress_rejected_total',
      'hermes_ingress_requests_total',
      'hermes_pipeline_queued_events',
      'hermes_possible_duplicate_replies_total',
      'hermes_queue_overflow_total',
      'hermes_reconnects_total',
      'hermes_resume_after_restart_total',
      'hermes_state_file_writes_total',
      'hermes_webhook_last_valid_callback_timestamp_seconds',
    ]);
  });

  await t.test('the shared set exports what adapters count into', () => {
    // What an adapter counts into is what the gateway serves: the test below drives it.
    assert.equal(shared.reconnectsTotal, shared.metrics.reconnectsTotal);
  });
});

await test('hermes_reconnects_total counts real reconnects, read over the control API', async (t) => {
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: 200 });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-metrics-qq-'));
  t.after(async () => {
    killAllChildren();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });
  const runtime = join(dir, 'runtime');
  await mkdir(runtime, { recursive: true, mode: 0o700 });
  const socket = join(runtime, 'hermes-gateway', 'control.sock');
  const { proc, statePath } = await launchGateway(
    dir,
    {
      platforms: {
        qqbot: {
          ...qqbotInstanceFor(fake, 'HGW_TEST_QQ_SECRET'),
          reconnect: { backoff_ms: [20], max_attempts: 5, healthy_after_ms: 60_000 },
          jitter: false,
        },
      },
      control: { listen: socket, token: '${HGW_CONTROL_TOKEN}' },
    },
    {
      XDG_RUNTIME_DIR: runtime,
      HGW_CONTROL_TOKEN: TOKEN,
      HGW_TEST_QQ_SECRET: fake.settings.clientSecret,
    },
    { cli: PRODUCT_CLI },
  );
  const scrape = async (): Promise<string> => {
    const res = await controlRequest({
      listen: { kind: 'unix', path: socket },
      method: 'GET',
      path: '/metrics',
      token: TOKEN,
      timeoutMs: 5_000,
    });
    assert.equal(res.status, 200);
    return res.text;
  };
  const reconnects = (text: string, cause: string): number | undefined =>
    sample(text, `hermes_reconnects_total{platform="qqbot",type="qqbot",cause="${cause}"}`);
  /** Waits for reconnect `attempt` to be connected (the budget is not reset in between). */
  const connectedAgain = async (attempt: number): Promise<void> => {
    await fake.until(() => fake.connections.length > attempt, 5_000, `reconnect ${attempt}`);
    await proc.waitForState(
      statePath,
      (d) =>
        d.platforms.qqbot?.state === 'connected' && d.platforms.qqbot.reconnect_attempt === attempt,
      `qqbot connected after reconnect ${attempt}`,
    );
  };

  await proc.waitForLine((l) => l.msg?.startsWith('control API listening') === true, 'control');
  await proc.waitForState(statePath, allConnected, 'connected');
  const before = await scrape();
  assert.equal(reconnects(before, 'GW_ERR_QQ_CLOSE_4009'), undefined, 'no reconnect yet');

  // The server's periodic kick: close 4009, resumed.
  fake.closeClient(4009, 'metrics test');
  await connectedAgain(1);
  const afterClose = await scrape();
  assert.equal(reconnects(afterClose, 'GW_ERR_QQ_CLOSE_4009'), 1);

  // A dropped link (no close frame): counted under its own cause.
  fake.terminateClient();
  await connectedAgain(2);
  const afterDrop = await scrape();
  assert.equal(reconnects(afterDrop, 'GW_ERR_QQ_CLOSE_4009'), 1);
  assert.equal(reconnects(afterDrop, 'GW_ERR_QQ_CONNECTION_CLOSED'), 1);

  proc.signal('SIGTERM');
  assert.equal((await proc.waitForExit(10_000)).code, 0);
});

await test('metrics while events flow through a running gateway', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-metrics-'));
  t.after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  await t.test(
    'inbound, deliveries, latency, adapter state and state writes change; /metrics shows them',
    async () => {
      const { log } = captureLogger('info');
      const metrics = createMetrics();
      const store = new StateStore({
        path: join(dir, 'gateway_state.json'),
        heartbeatIntervalMs: 60_000,
        log,
      });
      const unbind = metrics.bindState(store);
      const adapter = new QuietScripted(
        'scripted',
        scriptedSchema.parse({ then: 'echo_events', events: 5 }),
      );
      const pipeline = createPipeline({
        config: { handler: parseHandlerConfig({ type: 'echo' }) },
        adapters: [adapter],
        log,
        metrics,
      });
      const control = createControlServer({
        config: controlSchema.parse({ listen: '127.0.0.1:0', token: new Secret(TOKEN) }),
        adapters: [adapter],
        state: store,
        metrics,
        log,
      });
      const failures: unknown[] = [];
      const runner: Runner = new Runner({
        adapters: [adapter],
        store,
        log,
        notifier: control.startOnReady(recordingNotifier(), (err) => {
          failures.push(err);
          runner.fail(err);
        }),
        shutdownTimeoutMs: 2_000,
        heartbeatIntervalMs: 60_000,
        dispatch: (event) => pipeline.dispatch(event),
      });

      const before = await metrics.registry.metrics();
      assert.equal(
        sample(before, 'hermes_inbound_events_total{platform="scripted",type="scripted"}'),
        undefined,
      );
      assert.equal(sample(before, 'hermes_state_file_writes_total'), 0);

      const outcome = runner.run();
      // The control server starts on READY; events flow once the adapter is connected.
      for (let i = 0; i < 10_000 && (control.address === null || adapter.sent.length < 5); i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assert.equal(adapter.sent.length, 5);
      await pipeline.idle();
      const address = control.address;
      assert.ok(address);
      const scrape = await controlRequest({
        listen: address,
        method: 'GET',
        path: '/metrics',
        token: TOKEN,
        timeoutMs: 5_000,
      });
      assert.equal(scrape.status, 200);
      const text = scrape.text;
      assert.equal(
        sample(text, 'hermes_inbound_events_total{platform="scripted",type="scripted"}'),
        5,
      );
      assert.equal(
        sample(text, 'hermes_deliveries_total{platform="scripted",type="scripted",result="ok"}'),
        5,
      );
      assert.equal(sample(text, 'hermes_handler_latency_seconds_count{handler="echo"}'), 5);
      assert.equal(
        sample(text, 'hermes_adapter_state{platform="scripted",type="scripted",state="connected"}'),
        1,
      );
      assert.equal(
        sample(
          text,
          'hermes_adapter_state{platform="scripted",type="scripted",state="reconnecting"}',
        ),
        0,
      );
      assert.equal(sample(text, 'hermes_gateway_state{state="running"}'), 1);
      assert.equal(sample(text, 'hermes_pipeline_queued_events'), 0);
      const writes = sample(text, 'hermes_state_file_writes_total') ?? 0;
      assert.ok(writes >= 3, `state writes ${writes}`);

      // A redelivery is dropped and counted.
      pipeline.dispatch({
        id: 'scripted:m0',
        platform: 'scripted',
        type: 'scripted',
        chat: { type: 'c2c', id: 'user0' },
        sender: { id: 'user0' },
        text: 'message 0',
        attachments: [],
        timestamp: new Date().toISOString(),
        reply: {},
      });
      const after1 = await metrics.registry.metrics();
      assert.equal(
        sample(after1, 'hermes_duplicates_dropped_total{platform="scripted",type="scripted"}'),
        1,
      );
      assert.equal(
        sample(after1, 'hermes_inbound_events_total{platform="scripted",type="scripted"}'),
        6,
      );

      runner.stop('test over');
      assert.equal((await within(outcome, 5_000, 'the runner to stop')).exitCode, 0);
      await control.close();
      await pipeline.close();
      const final = await metrics.registry.metrics();
      assert.equal(
        sample(final, 'hermes_adapter_state{platform="scripted",type="scripted",state="stopped"}'),
        1,
      );
      assert.ok((sample(final, 'hermes_state_file_writes_total') ?? 0) > writes);
      assert.deepEqual(failures, []);
      unbind();
      assert.equal(sample(await metrics.registry.metrics(), 'hermes_state_file_writes_total'), 0);
    },
  );
});

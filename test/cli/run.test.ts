/**
 * `hermes-gateway run` end to end: the built test CLI as a child process, asserting its exit
 * code, its final state file and the `code` of its JSON log lines.
 */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { concurrent } from '../support/concurrent.js';
import type { StateDocument } from '../../src/state/schema.js';
import { SECRET_VALUE } from '../support/config-cases.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  readState,
  type Launched,
  type LogLine,
  scratchRoot,
} from '../support/spawn-gateway.js';

let counter = 0;

const root = await scratchRoot('hgw-run-');

function launch(
  config: Record<string, unknown>,
  env: Record<string, string | undefined> = {},
): Promise<Launched> {
  return launchGateway(join(root, `g${++counter}`), config, env);
}

function finalState(g: Launched): StateDocument {
  const doc = readState(g.statePath);
  assert.ok(doc, 'state file exists');
  assert.equal(doc.pid, g.proc.pid, 'written by this process');
  return doc;
}

function errorLine(g: Launched, code: string): LogLine {
  const line = g.proc.lines.find((l) => l.code === code && l.level === 50);
  assert.ok(line, `an error line with code ${code}; codes seen: ${g.proc.codes().join(', ')}`);
  return line;
}

async function connected(g: Launched): Promise<StateDocument> {
  return g.proc.waitForState(g.statePath, (d) => allConnected(d), 'all connected');
}

await test('run: how the gateway ends', { concurrency: 2 }, async (t) => {
  t.after(killAllChildren);
  const c = concurrent(t);
  c.it(
    'an adapter that returns silently: exit 1, state fatal with GW_ERR_ADAPTER_RETURNED',
    async () => {
      const g = await launch({ platforms: { scripted: { then: 'return', after_ms: 20 } } });
      const exit = await g.proc.waitForExit();
      assert.deepEqual(exit, { code: 1, signal: null });
      const doc = finalState(g);
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.gateway.exit_code, 1);
      assert.equal(doc.platforms.scripted?.state, 'fatal');
      assert.equal(doc.platforms.scripted?.last_error?.code, 'GW_ERR_ADAPTER_RETURNED');
      const line = errorLine(g, 'GW_ERR_ADAPTER_RETURNED');
      assert.equal(line.exit_code, 1);
      assert.equal(line.platform, 'scripted');
      // DESIGN §9: from the fatal event to the exit in under 1 s.
      const lastLine = g.proc.lines.at(-1);
      assert.equal(lastLine?.exit_code, 1);
      assert.ok(Date.parse(lastLine?.time as string) - Date.parse(line.time as string) < 1_000);
    },
  );

  c.it('a non-retryable error: exit 78, the error persisted', async () => {
    const g = await launch({ platforms: { scripted: { then: 'throw', retryable: false } } });
    assert.equal((await g.proc.waitForExit()).code, 78);
    const doc = finalState(g);
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.gateway.exit_code, 78);
    assert.equal(doc.platforms.scripted?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
    assert.equal(doc.platforms.scripted?.last_error?.retryable, false);
    assert.equal(errorLine(g, 'GW_ERR_ADAPTER_FAILED').exit_code, 78);
  });

  c.it('a retryable error from a background task: exit 1', async () => {
    const g = await launch({ platforms: { scripted: { then: 'reject_background' } } });
    assert.equal((await g.proc.waitForExit()).code, 1);
    assert.equal(finalState(g).platforms.scripted?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
  });

  c.it('SIGTERM: exit 0, every adapter and the gateway stopped', async () => {
    const g = await launch({ platforms: { scripted: {}, scripted2: {} } });
    await connected(g);
    g.proc.signal('SIGTERM');
    assert.deepEqual(await g.proc.waitForExit(), { code: 0, signal: null });
    const doc = finalState(g);
    assert.equal(doc.gateway.state, 'stopped');
    assert.equal(doc.gateway.exit_code, 0);
    assert.equal(doc.platforms.scripted?.state, 'stopped');
    assert.equal(doc.platforms.scripted2?.state, 'stopped');
    assert.ok(g.proc.lines.some((l) => l.signal === 'SIGTERM'));
    assert.ok(!g.proc.lines.some((l) => l.level >= 50), 'no error line on a requested stop');
  });

  c.it('SIGINT: exit 0, state stopped', async () => {
    const g = await launch({ platforms: { scripted: {} } });
    await connected(g);
    g.proc.signal('SIGINT');
    assert.equal((await g.proc.waitForExit()).code, 0);
    assert.equal(finalState(g).gateway.state, 'stopped');
    assert.ok(g.proc.lines.some((l) => l.signal === 'SIGINT'));
  });

  c.it(
    'an uncaught exception: exit 70, state fatal persisted (GW_ERR_UNCAUGHT_EXCEPTION)',
    async () => {
      const g = await launch({ platforms: { scripted: { then: 'uncaught' } } });
      assert.equal((await g.proc.waitForExit()).code, 70);
      const doc = finalState(g);
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.gateway.exit_code, 70);
      assert.match(doc.gateway.reason ?? '', /^GW_ERR_UNCAUGHT_EXCEPTION/);
      // The adapter did nothing wrong itself: it was stopped because the process failed.
      assert.equal(doc.platforms.scripted?.state, 'stopped');
      const line = errorLine(g, 'GW_ERR_UNCAUGHT_EXCEPTION');
      assert.equal(line.exit_code, 70);
      // The fatal line comes before the final line, which reports the persisted outcome.
      const ended = g.proc.lines.findIndex((l) => l.exit_code === 70 && l.state === 'fatal');
      assert.ok(ended > g.proc.lines.indexOf(line));
    },
  );

  c.it('an unhandled rejection: exit 70 (GW_ERR_UNHANDLED_REJECTION)', async () => {
    const g = await launch({ platforms: { scripted: { then: 'unhandled' } } });
    assert.equal((await g.proc.waitForExit()).code, 70);
    const doc = finalState(g);
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.gateway.exit_code, 70);
    assert.match(doc.gateway.reason ?? '', /^GW_ERR_UNHANDLED_REJECTION/);
    assert.equal(errorLine(g, 'GW_ERR_UNHANDLED_REJECTION').exit_code, 70);
  });

  c.it(
    'an adapter that ignores SIGTERM: the process still exits, within shutdown_timeout_ms',
    async () => {
      const shutdownTimeoutMs = 300;
      const g = await launch({
        shutdown_timeout_ms: shutdownTimeoutMs,
        platforms: { scripted: { then: 'ignore_stop' }, scripted2: {} },
      });
      await connected(g);
      const sentAt = Date.now();
      g.proc.signal('SIGTERM');
      const exit = await g.proc.waitForExit(shutdownTimeoutMs + 5_000);
      const tookMs = Date.now() - sentAt;
      assert.equal(exit.code, 0);
      assert.ok(tookMs >= shutdownTimeoutMs, `exited after ${tookMs} ms, before the deadline`);
      assert.ok(tookMs < shutdownTimeoutMs + 1_500, `exited after ${tookMs} ms`);
      const doc = finalState(g);
      assert.equal(doc.gateway.state, 'stopped');
      assert.equal(doc.platforms.scripted?.state, 'stopped');
      assert.equal(doc.platforms.scripted?.last_error?.code, 'GW_ERR_STOP_TIMEOUT');
      assert.equal(doc.platforms.scripted2?.state, 'stopped');
      assert.equal(doc.platforms.scripted2?.last_error, null);
      assert.equal(errorLine(g, 'GW_ERR_STOP_TIMEOUT').platform, 'scripted');
    },
  );

  c.it('with two platforms, a fatal in one stops the other', async () => {
    const g = await launch({
      platforms: { scripted: { then: 'throw', after_ms: 50 }, scripted2: {} },
    });
    assert.equal((await g.proc.waitForExit()).code, 1);
    const doc = finalState(g);
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.platforms.scripted?.state, 'fatal');
    assert.equal(doc.platforms.scripted2?.state, 'stopped');
    assert.equal(doc.platforms.scripted2?.last_error, null);
  });

  c.it('a secret reaches neither the logs nor the state file', async () => {
    const g = await launch(
      { platforms: { secretive: { token: '${HGW_TOKEN}', then: 'throw', retryable: true } } },
      { HGW_TOKEN: SECRET_VALUE },
    );
    assert.equal((await g.proc.waitForExit()).code, 1);
    const doc = finalState(g);
    assert.equal(doc.platforms.secretive?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
    // The adapter did log its token and put it into its error: both arrive blanked.
    assert.ok(g.proc.lines.some((l) => /authenticating with \[redacted\]/.test(l.msg ?? '')));
    assert.match(doc.platforms.secretive?.last_error?.message ?? '', /\[redacted\]/);
    assert.ok(!g.proc.stdout.includes(SECRET_VALUE), 'secret in stdout');
    assert.ok(!g.proc.stderr.includes(SECRET_VALUE), 'secret in stderr');
    assert.ok(!(await readFile(g.statePath, 'utf8')).includes(SECRET_VALUE), 'secret in state');
  });

  c.it('writes the state file with mode 0600 and a growing write_seq', async () => {
    const g = await launch({ platforms: { scripted: {} } });
    const first = await connected(g);
    g.proc.signal('SIGTERM');
    assert.equal((await g.proc.waitForExit()).code, 0);
    assert.equal((await stat(g.statePath)).mode & 0o777, 0o600);
    assert.ok(finalState(g).write_seq > first.write_seq);
  });
  await c.done();
});

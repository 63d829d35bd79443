/**
 * End to end: the built CLI (`run`) with a scripted platform that emits events, the control
 * API on a unix socket or a loopback port, and `hermes-gateway send` through the same CLI.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { controlRequest } from '../../src/control/client.js';
import type { ListenAddress } from '../../src/control/config.js';
import { startFakeWebhook } from '../fakes/webhook/server.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  makeTempDir,
  readState,
  removeTempDir,
  runGatewayCli,
  sandboxEnv,
  stderrCode,
  waitFor,
  waitForState,
  writeConfig,
  type GatewayProcess,
  type LogLine,
} from '../support/spawn-gateway.js';

const TOKEN = 'e2e-control-token-7f3a9c';

/** A port that was free a moment ago: bound to port 0, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function sentLines(
  proc: GatewayProcess,
): Array<{ chat: { id: string }; text: string; reply?: unknown }> {
  return proc.lines.flatMap((line: LogLine) =>
    typeof line.scripted_sent === 'object' && line.scripted_sent !== null
      ? [line.scripted_sent as { chat: { id: string }; text: string; reply?: unknown }]
      : [],
  );
}

function sample(text: string, line: string): number | undefined {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

await test('gateway with the control API, end to end', async (t) => {
  let counter = 0;
  const root = await makeTempDir('hgw-control-e2e-');
  t.after(async () => {
    killAllChildren();
    await removeTempDir(root);
  });

  async function sandbox(): Promise<{ dir: string; runtime: string; env: Record<string, string> }> {
    const dir = join(root, `g${++counter}`);
    const runtime = join(dir, 'runtime');
    await mkdir(runtime, { recursive: true, mode: 0o700 });
    return { dir, runtime, env: { XDG_RUNTIME_DIR: runtime, HGW_CONTROL_TOKEN: TOKEN } };
  }

  await t.test(
    'unix socket: healthz, metrics while events flow, send, clean shutdown',
    async () => {
      const { dir, runtime, env } = await sandbox();
      const socket = join(runtime, 'hermes-gateway', 'control.sock');
      const { proc, configPath } = await launchGateway(
        dir,
        {
          platforms: { scripted: { then: 'echo_events', events: 5 } },
          handler: { type: 'echo' },
          control: { listen: socket, token: '${HGW_CONTROL_TOKEN}' },
        },
        env,
      );
      await proc.waitForLine(
        (l) => l.msg?.startsWith('control API listening') === true,
        'control API',
      );
      await waitFor(() => sentLines(proc).length === 5, '5 echo replies');
      const listen: ListenAddress = { kind: 'unix', path: socket };

      const health = await controlRequest({
        listen,
        method: 'GET',
        path: '/healthz',
        timeoutMs: 5_000,
      });
      assert.equal(health.status, 200);
      assert.deepEqual((health.json as { platforms: unknown }).platforms, {
        scripted: {
          state: 'connected',
          since: (health.json as { platforms: { scripted: { since: string } } }).platforms.scripted
            .since,
        },
      });

      const metrics = await controlRequest({
        listen,
        method: 'GET',
        path: '/metrics',
        token: TOKEN,
        timeoutMs: 5_000,
      });
      assert.equal(metrics.status, 200);
      assert.equal(
        sample(metrics.text, 'hermes_inbound_events_total{platform="scripted",type="scripted"}'),
        5,
      );
      assert.equal(
        sample(
          metrics.text,
          'hermes_deliveries_total{platform="scripted",type="scripted",result="ok"}',
        ),
        5,
      );
      assert.equal(
        sample(
          metrics.text,
          'hermes_adapter_state{platform="scripted",type="scripted",state="connected"}',
        ),
        1,
      );
      assert.ok((sample(metrics.text, 'hermes_state_file_writes_total') ?? 0) >= 3);
      assert.match(metrics.text, /^process_resident_memory_bytes \d+/m);

      const cliEnv = sandboxEnv(dir, env);
      const sent = await runGatewayCli(
        ['send', '--config', configPath, 'scripted:c2c:user1', 'hello', 'world'],
        { env: cliEnv },
      );
      assert.equal(sent.code, 0, sent.stderr);
      assert.match(sent.stdout, /^sent to scripted:c2c:user1/m);
      await waitFor(
        () => sentLines(proc).find((m) => m.text === 'hello world'),
        'the proactive message',
      );
      const proactive = sentLines(proc).find((m) => m.text === 'hello world')!;
      assert.equal(proactive.chat.id, 'user1');
      assert.equal(proactive.reply, undefined);

      const unknown = await runGatewayCli(['send', '--config', configPath, 'telegram:c2c:1', 'x'], {
        env: cliEnv,
      });
      assert.equal(unknown.code, 1);
      assert.equal(stderrCode(unknown.stderr), 'GW_ERR_CONTROL_UNKNOWN_PLATFORM');

      const wrongToken = await runGatewayCli(
        ['send', '--config', configPath, 'scripted:c2c:user1', 'x'],
        {
          env: sandboxEnv(dir, { ...env, HGW_CONTROL_TOKEN: 'not-the-token' }),
        },
      );
      assert.equal(wrongToken.code, 1);
      assert.equal(stderrCode(wrongToken.stderr), 'GW_ERR_CONTROL_UNAUTHORIZED');

      proc.signal('SIGTERM');
      assert.equal((await proc.waitForExit(10_000)).code, 0);
      assert.equal(existsSync(socket), false);
      assert.ok(!proc.stdout.includes(TOKEN));

      const down = await runGatewayCli(
        ['send', '--config', configPath, 'scripted:c2c:user1', 'x'],
        {
          env: cliEnv,
        },
      );
      assert.equal(down.code, 3);
      assert.equal(stderrCode(down.stderr), 'GW_ERR_CONTROL_UNREACHABLE');
    },
  );

  await t.test('loopback TCP port: healthz and send', async () => {
    const { dir, env } = await sandbox();
    const port = await freePort();
    const { proc, configPath, statePath } = await launchGateway(
      dir,
      {
        platforms: { scripted: {} },
        control: { listen: `127.0.0.1:${port}`, token: '${HGW_CONTROL_TOKEN}' },
      },
      env,
    );
    await proc.waitForLine(
      (l) => l.msg?.startsWith('control API listening') === true,
      'control API',
    );
    // The API starts once the gateway runs; healthy means the adapter is connected too.
    await waitForState(statePath, allConnected, 'connected');
    const listen: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port };
    assert.equal(
      (await controlRequest({ listen, method: 'GET', path: '/healthz', timeoutMs: 5_000 })).status,
      200,
    );
    const sent = await runGatewayCli(
      ['send', '--config', configPath, 'scripted:group:g1', 'to', 'the', 'group'],
      {
        env: sandboxEnv(dir, env),
      },
    );
    assert.equal(sent.code, 0, sent.stderr);
    await waitFor(
      () => sentLines(proc).find((m) => m.text === 'to the group'),
      'the group message',
    );
    proc.signal('SIGTERM');
    assert.equal((await proc.waitForExit(10_000)).code, 0);
  });

  await t.test('webhook handler: events are POSTed signed and the replies delivered', async () => {
    const { dir, env } = await sandbox();
    const hook = await startFakeWebhook({ secret: 'e2e-hook-secret' });
    try {
      const { proc } = await launchGateway(
        dir,
        {
          platforms: { scripted: { then: 'echo_events', events: 5 } },
          handler: { type: 'webhook', url: hook.url, secret: '${HOOK_SECRET}', timeout_ms: 2_000 },
        },
        { ...env, HOOK_SECRET: 'e2e-hook-secret' },
      );
      await waitFor(() => sentLines(proc).length === 5, '5 webhook replies');
      assert.equal(hook.requests.length, 5);
      assert.ok(hook.requests.every((r) => r.signatureValid));
      for (let i = 0; i < 5; i++) {
        assert.ok(sentLines(proc).some((m) => m.text === `hook: message ${i}`));
      }
      proc.signal('SIGTERM');
      assert.equal((await proc.waitForExit(10_000)).code, 0);
      assert.ok(!proc.stdout.includes('e2e-hook-secret'));
    } finally {
      await hook.close();
    }
  });

  await t.test(
    'a control port already in use ends the gateway with GW_ERR_CONTROL_LISTEN, exit 1',
    async () => {
      const { dir, env } = await sandbox();
      const busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const { port } = busy.address() as { port: number };
      try {
        const { proc, statePath } = await launchGateway(
          dir,
          {
            platforms: { scripted: {} },
            control: { listen: `127.0.0.1:${port}`, token: '${HGW_CONTROL_TOKEN}' },
          },
          env,
        );
        const exit = await proc.waitForExit(10_000);
        assert.equal(exit.code, 1);
        assert.ok(proc.codes().includes('GW_ERR_CONTROL_LISTEN'));
        const state = readState(statePath);
        assert.equal(state?.gateway.state, 'fatal');
        assert.match(state?.gateway.reason ?? '', /GW_ERR_CONTROL_LISTEN/);
      } finally {
        await new Promise<void>((resolve) => busy.close(() => resolve()));
      }
    },
  );

  await t.test(
    'a non-loopback or out-of-runtime-dir listen address is exit 78 at start',
    async () => {
      const { dir, env } = await sandbox();
      for (const listen of ['0.0.0.0:8765', join(dir, 'not-runtime.sock')]) {
        const { proc } = await launchGateway(
          join(dir, String(++counter)),
          { platforms: { scripted: {} }, control: { listen, token: '${HGW_CONTROL_TOKEN}' } },
          env,
        );
        assert.equal((await proc.waitForExit(10_000)).code, 78, listen);
        const line = proc.lines.find((l) => l.code === 'GW_ERR_CONFIG_INVALID');
        assert.equal(line?.key, 'control.listen');
      }
    },
  );

  await t.test('send: usage errors are 2, a config without control is 78', async () => {
    const { dir, env } = await sandbox();
    const configPath = await writeConfig(dir, { platforms: { scripted: {} } });
    const cliEnv = sandboxEnv(dir, env);
    for (const target of ['scripted', 'scripted:user1', 'scripted:room:user1']) {
      const result = await runGatewayCli(['send', '--config', configPath, target, 'x'], {
        env: cliEnv,
      });
      assert.equal(result.code, 2, `${target}: ${result.stderr}`);
    }
    const noText = await runGatewayCli(['send', '--config', configPath, 'scripted:c2c:u'], {
      env: cliEnv,
    });
    assert.equal(noText.code, 2);
    const off = await runGatewayCli(['send', '--config', configPath, 'scripted:c2c:u', 'x'], {
      env: cliEnv,
    });
    assert.equal(off.code, 78);
    assert.equal(stderrCode(off.stderr), 'GW_ERR_CONTROL_DISABLED');
  });
});

/**
 * The template units of docs/scale-out.md: hermes-gateway@.service (config and state per
 * instance) and hermes-gateway-worker@.service pass `systemd-analyze verify` once rendered
 * for an instance; `status --instance NAME` reads that instance's own state file.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderUnit } from '../../src/systemd/install.js';
import { TEMPLATES, instanceUnit } from '../../src/systemd/install-instance.js';
import { PRODUCT_CLI, runGatewayCli, sandboxEnv } from '../support/spawn-gateway.js';
import { run } from '../support/systemd-harness.js';

const analyze = await run('systemd-analyze', ['--version'], process.env).catch(() => null);

await test('the instance and worker templates name their config and state by %i', async () => {
  const gateway = await readFile(TEMPLATES.instance.file, 'utf8');
  assert.match(gateway, /^ExecStart=@NODE@ @CLI@ run --config %E\/hermes-gateway\/%i\.yaml$/m);
  assert.match(gateway, /^StateDirectory=hermes-gateway\/%i$/m);
  assert.match(gateway, /^Type=notify$/m);
  assert.match(gateway, /^RestartPreventExitStatus=78$/m);
  const worker = await readFile(TEMPLATES.worker.file, 'utf8');
  assert.match(
    worker,
    /^ExecStart=@NODE@ @CLI@ worker --config %E\/hermes-gateway\/workers\/%i\.yaml$/m,
  );
  assert.match(worker, /^Type=notify$/m);
  assert.match(worker, /^RestartPreventExitStatus=78$/m);
  assert.equal(instanceUnit('instance', 'shop-bot'), 'hermes-gateway@shop-bot.service');
  assert.equal(instanceUnit('worker', 'w1'), 'hermes-gateway-worker@w1.service');
  assert.throws(() => instanceUnit('instance', '../x'), { code: 'GW_ERR_CLI_USAGE' });
});

await test(
  'systemd-analyze verify passes on rendered instances of both templates',
  { timeout: 60_000, skip: analyze?.code === 0 ? false : 'systemd-analyze not installed' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'hgw-template-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const runtime = join(dir, 'run');
    await mkdir(runtime, { mode: 0o700 });
    const cli = join(dir, 'main.js');
    await writeFile(cli, '');
    const env = { ...process.env, XDG_RUNTIME_DIR: runtime, HOME: dir };
    for (const kind of ['instance', 'worker'] as const) {
      const text = renderUnit(await readFile(TEMPLATES[kind].file, 'utf8'), {
        node: process.execPath,
        cli,
        config: '',
      });
      assert.doesNotMatch(text, /@[A-Z]+@/);
      const unit = join(dir, instanceUnit(kind, 'demo'));
      await writeFile(unit, text);
      const result = await run('systemd-analyze', ['--user', 'verify', unit], env);
      assert.deepEqual(
        { code: result.code, output: (result.stderr + result.stdout).trim() },
        {
          code: 0,
          output: '',
        },
      );
    }
  },
);

await test('status --instance NAME reads the state file of hermes-gateway@NAME', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-status-instance-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stateDir = join(dir, '.local', 'state', 'hermes-gateway', 'shop');
  await mkdir(stateDir, { recursive: true });
  const at = new Date().toISOString();
  // A gateway that is gone (pid 1 is not it: the start time differs): exit 3, this file named.
  await writeFile(
    join(stateDir, 'gateway_state.json'),
    JSON.stringify({
      schema_version: 1,
      pid: 999_999_999,
      pid_start_time: 1,
      started_at: at,
      updated_at: at,
      heartbeat_at: at,
      heartbeat_interval_ms: 30_000,
      write_seq: 1,
      gateway: { state: 'stopped', since: at, reason: 'stop requested', exit_code: 0 },
      platforms: {},
    }),
  );
  const env = sandboxEnv(dir, { XDG_STATE_HOME: undefined, XDG_CONFIG_HOME: undefined });
  const status = await runGatewayCli(['status', '--instance', 'shop', '--json'], {
    cli: PRODUCT_CLI,
    env,
  });
  assert.equal(status.code, 3, status.stdout + status.stderr);
  const report = JSON.parse(status.stdout) as { state_file: string };
  assert.equal(report.state_file, join(stateDir, 'gateway_state.json'));
  const bad = await runGatewayCli(['status', '--instance', '../etc'], { cli: PRODUCT_CLI, env });
  assert.equal(bad.code, 2);
});

/**
 * Bad configs through the real CLI: `check` and `run` both exit 78 for each class, `run`
 * logs the code and the key and persists a `fatal` gateway state with exit_code 78.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { concurrent } from '../support/concurrent.js';
import type { StateDocument } from '../../src/state/schema.js';
import { BAD_CONFIGS, SECRET_VALUE, prepareCase } from '../support/config-cases.js';
import {
  killAllChildren,
  readState,
  runGatewayCli,
  sandboxEnv,
  stderrCode,
  writeConfig,
  scratchRoot,
} from '../support/spawn-gateway.js';

let counter = 0;

const root = await scratchRoot('hgw-config-cli-');

async function caseDir(): Promise<string> {
  const dir = join(root, `c${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

await test('bad configs exit 78 from `check` and `run`', { concurrency: 3 }, async (t) => {
  t.after(killAllChildren);
  const c = concurrent(t);
  for (const bad of BAD_CONFIGS) {
    c.it(`${bad.name}: ${bad.code}`, async () => {
      const dir = await caseDir();
      const { file, env: extra } = await prepareCase(bad, dir);
      const env = sandboxEnv(dir, extra);
      const statePath = join(dir, 'state', 'gateway_state.json');
      const [check, run] = await Promise.all([
        runGatewayCli(['check', '--config', file], { env }),
        runGatewayCli(['run', '--config', file, '--state', statePath], { env }),
      ]);

      assert.equal(check.code, 78, `check: ${check.stderr}`);
      assert.equal(stderrCode(check.stderr), bad.code);
      if (bad.key !== undefined) assert.ok(check.stderr.includes(bad.key), check.stderr);

      assert.equal(run.code, 78, `run: ${run.stdout}\n${run.stderr}`);
      const line = run.lines.find((l) => l.code === bad.code);
      assert.ok(line, `run logs ${bad.code}: ${run.stdout}`);
      assert.equal(line.level, 50);
      assert.equal(line.exit_code, 78);
      if (bad.key !== undefined) assert.equal(line.key, bad.key);

      // A config error at `run` still leaves a truthful state file at --state.
      const doc = readState(statePath);
      assert.ok(doc, 'state file written');
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.gateway.exit_code, 78);
      assert.match(doc.gateway.reason ?? '', new RegExp(bad.code));
      assert.equal(doc.pid, run.lines[0]?.pid);

      for (const text of [check.stdout, check.stderr, run.stdout, run.stderr]) {
        assert.ok(!text.includes(SECRET_VALUE), 'no secret in the output');
      }
      assert.ok(!(await readFile(statePath, 'utf8')).includes(SECRET_VALUE));
    });
  }
  await c.done();
});

await test('config errors at `run`', async (t) => {
  t.after(killAllChildren);
  await t.test('replaces the previous run state and continues its write_seq', async () => {
    const dir = await caseDir();
    const statePath = join(dir, 'gateway_state.json');
    const previous = {
      schema_version: 1,
      pid: 1,
      pid_start_time: 1,
      started_at: '2020-01-01T00:00:00.000Z',
      updated_at: '2020-01-01T00:00:00.000Z',
      heartbeat_at: '2020-01-01T00:00:00.000Z',
      heartbeat_interval_ms: 30000,
      write_seq: 57,
      gateway: {
        state: 'running',
        since: '2020-01-01T00:00:00.000Z',
        reason: null,
        exit_code: null,
      },
      platforms: {},
    } satisfies StateDocument;
    await writeFile(statePath, JSON.stringify(previous));
    const file = await writeConfig(dir, { platforms: { scripted: { nope: 1 } } });
    const run = await runGatewayCli(['run', '--config', file, '--state', statePath], {
      env: sandboxEnv(dir),
    });
    assert.equal(run.code, 78);
    const doc = readState(statePath);
    assert.equal(doc?.gateway.state, 'fatal');
    assert.equal(doc?.gateway.exit_code, 78);
    assert.equal(doc?.pid, run.lines[0]?.pid);
    assert.ok((doc?.write_seq ?? 0) > 57, `write_seq ${doc?.write_seq} went back`);
  });

  await t.test('without --state, persists to the default path ($XDG_STATE_HOME)', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, 'platforms: [unclosed\n');
    const run = await runGatewayCli(['run', '--config', file], { env: sandboxEnv(dir) });
    assert.equal(run.code, 78);
    assert.ok(run.codes.includes('GW_ERR_CONFIG_PARSE'));
    const doc = readState(join(dir, 'xdg-state', 'hermes-gateway', 'gateway_state.json'));
    assert.equal(doc?.gateway.state, 'fatal');
    assert.equal(doc?.gateway.exit_code, 78);
  });
});

await test('good configs', async (t) => {
  t.after(killAllChildren);
  await t.test('check: exit 0 with ${VAR} and $CREDENTIALS_DIRECTORY secrets', async () => {
    const dir = await caseDir();
    const credentials = join(dir, 'creds');
    await mkdir(credentials);
    await writeFile(join(credentials, 'tok'), `${SECRET_VALUE}\n`);
    const file = await writeConfig(dir, {
      state_file: '${HGW_STATE}',
      platforms: { secretive: { token_credential: 'tok' } },
    });
    const env = sandboxEnv(dir, {
      HGW_STATE: join(dir, 's.json'),
      CREDENTIALS_DIRECTORY: credentials,
    });
    const check = await runGatewayCli(['check', '--config', file], { env });
    assert.equal(check.code, 0, check.stderr);
    assert.ok(check.stdout.includes(`${file}: ok`));
    assert.ok(!check.stdout.includes(SECRET_VALUE) && !check.stderr.includes(SECRET_VALUE));
  });

  await t.test(
    'finds the config by --config, then $HERMES_GATEWAY_CONFIG, then $XDG_CONFIG_HOME',
    async () => {
      const dir = await caseDir();
      const good = { platforms: { scripted: {} } };
      const xdgFile = await writeConfig(join(dir, 'xdg-config', 'hermes-gateway'), good);
      const envFile = await writeConfig(join(dir, 'by-env'), good);
      const flagFile = await writeConfig(join(dir, 'by-flag'), good);
      const bothEnv = sandboxEnv(dir, { HERMES_GATEWAY_CONFIG: envFile });
      const [flag, byEnv, byXdg, none] = await Promise.all([
        runGatewayCli(['check', '--config', flagFile], { env: bothEnv }),
        runGatewayCli(['check'], { env: bothEnv }),
        runGatewayCli(['check'], { env: sandboxEnv(dir) }),
        runGatewayCli(['check'], { env: sandboxEnv(join(dir, 'empty-home')) }),
      ]);
      for (const [result, expected] of [
        [flag, flagFile],
        [byEnv, envFile],
        [byXdg, xdgFile],
      ] as const) {
        assert.equal(result.code, 0, result.stderr);
        assert.ok(result.stdout.startsWith(`${expected}: ok`), result.stdout);
      }
      assert.equal(none.code, 78);
      assert.equal(stderrCode(none.stderr), 'GW_ERR_CONFIG_NOT_FOUND');
      assert.ok(none.stderr.includes(join(dir, 'empty-home', 'xdg-config', 'hermes-gateway')));
    },
  );
});

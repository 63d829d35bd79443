/**
 * Issue #16, items 4 to 7: what a config or secret file may be. Only regular files are read
 * (a FIFO, /dev/zero or a directory is refused by code, naming the file), with a size cap,
 * strictly as UTF-8; validation stays linear in the number of keys; an alias bomb and a huge
 * bad value give a short coded error; a `${VAR:-default}` cannot smuggle an inline secret;
 * `check` applies run's control.listen rule; a secret file others can read is warned about.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { isGatewayError, type GatewayError } from '../../src/errors.js';
import { SECRET_VALUE } from '../support/config-cases.js';
import {
  killAllChildren,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
  stderrCode,
  writeConfig,
} from '../support/spawn-gateway.js';
import { testRegistry } from '../support/test-registry.js';

const registry = testRegistry();
/** The documented caps (docs/configuration.md), restated: the test pins the contract. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_SECRET_FILE_BYTES = 64 * 1024;
const root = await scratchRoot('hgw-limits-');
let counter = 0;

async function caseDir(): Promise<string> {
  const dir = join(root, `c${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

function loadError(file: string, env: NodeJS.ProcessEnv = {}): GatewayError {
  try {
    loadConfig(file, registry, env);
  } catch (err) {
    assert.ok(isGatewayError(err), `expected a GatewayError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

const secretConfig = (tokenFile: string): Record<string, unknown> => ({
  // `throw`: a `run` of it ends by itself once connected (exit 1).
  platforms: { secretive: { token_file: tokenFile, then: 'throw' } },
});

/**
 * `check` in a child, bounded: before the fix a FIFO blocked the reader forever and /dev/zero
 * was read until memory ran out, which must fail this test, not hang or starve the runner.
 */
async function checkCode(file: string, dir: string): Promise<string | undefined> {
  const check = await runGatewayCli(['check', '--config', file], {
    env: sandboxEnv(dir),
    timeoutMs: 60_000,
  });
  assert.equal(check.code, 78, check.stderr);
  assert.ok(check.stderr.includes(file), `names the file: ${check.stderr}`);
  return stderrCode(check.stderr);
}

await test('item 6: a config file must be a regular file of bounded size', async (t) => {
  t.after(killAllChildren);
  await t.test(
    'a FIFO is refused at once, naming the file (it used to block forever)',
    async () => {
      const dir = await caseDir();
      const fifo = join(dir, 'config.yaml');
      execFileSync('mkfifo', [fifo]);
      assert.equal(await checkCode(fifo, dir), 'GW_ERR_CONFIG_FILE_NOT_REGULAR');
    },
  );
  await t.test('/dev/zero is refused', async () => {
    const dir = await caseDir();
    assert.equal(await checkCode('/dev/zero', dir), 'GW_ERR_CONFIG_FILE_NOT_REGULAR');
  });
  await t.test('a directory is refused', async () => {
    const dir = await caseDir();
    assert.equal(loadError(dir).code, 'GW_ERR_CONFIG_FILE_NOT_REGULAR');
  });
  await t.test('a file above the cap is refused without being parsed', async () => {
    const dir = await caseDir();
    const file = join(dir, 'config.yaml');
    await writeFile(file, `platforms: {scripted: {}}\n#${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    const err = loadError(file);
    assert.equal(err.code, 'GW_ERR_CONFIG_FILE_TOO_LARGE');
    assert.equal(err.details.file, file);
  });
  await t.test('bytes that are not UTF-8 are refused, naming the file', async () => {
    const dir = await caseDir();
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      Buffer.concat([Buffer.from('log_level: inf'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]),
    );
    const err = loadError(file);
    assert.equal(err.code, 'GW_ERR_CONFIG_FILE_ENCODING');
    assert.equal(err.details.file, file);
  });
});

await test('item 6: a secret file must be a regular file of bounded size, in UTF-8', async (t) => {
  t.after(killAllChildren);
  const cases: Array<[string, (dir: string) => Promise<string>, string]> = [
    [
      'FIFO',
      (dir) => {
        const path = join(dir, 'token-fifo');
        execFileSync('mkfifo', [path]);
        return Promise.resolve(path);
      },
      'GW_ERR_CONFIG_FILE_NOT_REGULAR',
    ],
    ['/dev/zero', () => Promise.resolve('/dev/zero'), 'GW_ERR_CONFIG_FILE_NOT_REGULAR'],
    [
      'directory',
      async (dir) => {
        await mkdir(join(dir, 'token-dir'));
        return join(dir, 'token-dir');
      },
      'GW_ERR_CONFIG_FILE_NOT_REGULAR',
    ],
    [
      'too large',
      async (dir) => {
        const path = join(dir, 'token-big');
        await writeFile(path, 'a'.repeat(MAX_SECRET_FILE_BYTES + 1), { mode: 0o600 });
        return path;
      },
      'GW_ERR_CONFIG_FILE_TOO_LARGE',
    ],
    [
      'not UTF-8',
      async (dir) => {
        const path = join(dir, 'token-latin1');
        await writeFile(path, Buffer.from([0x73, 0xe9, 0x63]), { mode: 0o600 });
        return path;
      },
      'GW_ERR_CONFIG_FILE_ENCODING',
    ],
  ];
  for (const [name, make, code] of cases) {
    await t.test(`${name}: ${code}, naming the key and the file`, async () => {
      const dir = await caseDir();
      const path = await make(dir);
      const file = await writeConfig(dir, secretConfig(path));
      // Through a bounded child first (a FIFO or /dev/zero must not hang this process).
      const check = await runGatewayCli(['check', '--config', file], {
        env: sandboxEnv(dir),
        timeoutMs: 60_000,
      });
      assert.equal(check.code, 78, check.stderr);
      assert.equal(stderrCode(check.stderr), code);
      assert.ok(
        check.stderr.includes(path) && check.stderr.includes('platforms.secretive.token_file'),
      );
      const err = loadError(file);
      assert.equal(err.code, code);
      assert.equal(err.details.key, 'platforms.secretive.token_file');
      assert.equal(err.details.path, path);
    });
  }
});

await test('item 6: validation is linear in the number of keys (40k unknown keys)', async () => {
  const dir = await caseDir();
  const lines = ['platforms:', '  scripted: {}'];
  for (let i = 0; i < 40_000; i++) lines.push(`k${i}: ${i}`);
  const file = join(dir, 'config.yaml');
  await writeFile(file, lines.join('\n') + '\n');
  // CPU time, not wall time: the bound must not depend on how loaded the machine is.
  const started = process.cpuUsage();
  const err = loadError(file);
  const used = process.cpuUsage(started);
  const elapsed = Math.round((used.user + used.system) / 1000);
  assert.equal(err.code, 'GW_ERR_CONFIG_INVALID');
  assert.equal(err.details.key, 'k0');
  // Before the fix: 60-100 s on this machine, quadratic in the YAML parser's duplicate-key
  // check; after it, about 1-2 s of CPU. The bound is far from both.
  assert.ok(elapsed < 15_000, `took ${elapsed} ms of CPU`);
  // 40k problems are summarised, not all echoed.
  assert.ok(err.message.length < 4_096, `message of ${err.message.length} chars`);
});

await test('item 6: a duplicate key is still refused with its line', async () => {
  const dir = await caseDir();
  const file = await writeConfig(
    dir,
    'platforms:\n  scripted: {}\nlog_level: info\nlog_level: debug\n',
  );
  const err = loadError(file);
  assert.equal(err.code, 'GW_ERR_CONFIG_PARSE');
  assert.equal(err.details.file, file);
  assert.match(err.message, /line 4/);
});

await test('item 6: a YAML alias bomb is refused with the code and the file', async () => {
  const dir = await caseDir();
  const bomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'platforms: {scripted: {}}',
  ].join('\n');
  const file = await writeConfig(dir, bomb + '\n');
  const err = loadError(file);
  assert.equal(err.code, 'GW_ERR_CONFIG_PARSE');
  assert.equal(err.details.file, file);
  assert.ok(err.message.includes(file));
});

await test('item 6: a huge bad value is cut in the error message', async () => {
  const dir = await caseDir();
  const huge = 'v'.repeat(MAX_CONFIG_BYTES - 4_096);
  const file = await writeConfig(dir, `log_level: "${huge}"\nplatforms: {scripted: {}}\n`);
  const err = loadError(file);
  assert.equal(err.code, 'GW_ERR_CONFIG_INVALID');
  assert.equal(err.details.key, 'log_level');
  assert.ok(err.message.length < 2_048, `message of ${err.message.length} chars`);
});

await test('item 4: a default in a secret reference is an inline secret', async () => {
  const dir = await caseDir();
  const file = await writeConfig(dir, {
    platforms: { secretive: { token: `\${HGW_TEST_UNSET_TOKEN:-${SECRET_VALUE}}` } },
  });
  const err = loadError(file);
  assert.equal(err.code, 'GW_ERR_CONFIG_SECRET_INLINE');
  assert.equal(err.details.key, 'platforms.secretive.token');
  assert.ok(!err.message.includes(SECRET_VALUE));
  // Also when the variable is set: the file still carries the secret.
  const set = loadError(file, { HGW_TEST_UNSET_TOKEN: 'from-env' });
  assert.equal(set.code, 'GW_ERR_CONFIG_SECRET_INLINE');
  // And through the CLI: check and run exit 78 naming the key.
  const env = sandboxEnv(dir);
  const [check, run] = await Promise.all([
    runGatewayCli(['check', '--config', file], { env }),
    runGatewayCli(['run', '--config', file, '--state', join(dir, 'state.json')], { env }),
  ]);
  assert.equal(check.code, 78, check.stderr);
  assert.equal(stderrCode(check.stderr), 'GW_ERR_CONFIG_SECRET_INLINE');
  assert.equal(run.code, 78);
  assert.ok(run.lines.some((l) => l.code === 'GW_ERR_CONFIG_SECRET_INLINE'));
  for (const text of [check.stdout, check.stderr, run.stdout, run.stderr]) {
    assert.ok(!text.includes(SECRET_VALUE));
  }
});

await test('item 5: `check` refuses a control socket outside $XDG_RUNTIME_DIR, as `run` does', async (t) => {
  t.after(killAllChildren);
  const dir = await caseDir();
  const runtime = join(dir, 'runtime');
  await mkdir(runtime, { mode: 0o700 });
  const config = (listen: string): Record<string, unknown> => ({
    control: { listen, token: '${HGW_CONTROL_TOKEN}' },
    platforms: { scripted: {} },
  });
  const env = sandboxEnv(dir, { XDG_RUNTIME_DIR: runtime, HGW_CONTROL_TOKEN: SECRET_VALUE });
  const outside = await writeConfig(dir, config(`unix:${join(dir, 'ctl.sock')}`), 'outside.yaml');
  const inside = await writeConfig(dir, config(`unix:${join(runtime, 'ctl.sock')}`), 'inside.yaml');
  const [bad, good] = await Promise.all([
    runGatewayCli(['check', '--config', outside], { env }),
    runGatewayCli(['check', '--config', inside], { env }),
  ]);
  assert.equal(bad.code, 78, bad.stdout);
  assert.equal(stderrCode(bad.stderr), 'GW_ERR_CONFIG_INVALID');
  assert.match(bad.stderr, /control\.listen/);
  assert.equal(good.code, 0, good.stderr);
});

await test('item 7: a secret file others can read is warned about; check --strict fails', async (t) => {
  t.after(killAllChildren);
  const dir = await caseDir();
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${SECRET_VALUE}\n`);
  await chmod(tokenFile, 0o644);
  const file = await writeConfig(dir, secretConfig(tokenFile));
  const { warnings } = loadConfig(file, registry, {});
  assert.deepEqual(
    warnings.map((w) => [w.code, w.details.key, w.details.path]),
    [['GW_ERR_CONFIG_SECRET_FILE_MODE', 'platforms.secretive.token_file', tokenFile]],
  );
  const env = sandboxEnv(dir);
  const statePath = join(dir, 'state.json');
  const [check, strict, run] = await Promise.all([
    runGatewayCli(['check', '--config', file], { env }),
    runGatewayCli(['check', '--strict', '--config', file], { env }),
    runGatewayCli(['run', '--config', file, '--state', statePath], { env, timeoutMs: 20_000 }),
  ]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stderr, /^warning GW_ERR_CONFIG_SECRET_FILE_MODE: /m);
  assert.ok(check.stderr.includes(tokenFile));
  assert.equal(strict.code, 78, strict.stderr);
  assert.match(strict.stderr, /GW_ERR_CONFIG_SECRET_FILE_MODE/);
  // The scripted platform ends by itself after its script; run logs the warning first.
  const warning = run.lines.find((l) => l.code === 'GW_ERR_CONFIG_SECRET_FILE_MODE');
  assert.ok(warning, `run warns: ${run.stdout}`);
  assert.equal(warning.level, 40);
  assert.equal(warning.path, tokenFile);
  for (const text of [check.stdout, check.stderr, strict.stderr, run.stdout, run.stderr]) {
    assert.ok(!text.includes(SECRET_VALUE), 'the warning names the file, not the content');
  }
  // 0600 and 0400 give no warning.
  await chmod(tokenFile, 0o600);
  assert.deepEqual(loadConfig(file, registry, {}).warnings, []);
  const quiet = await runGatewayCli(['check', '--strict', '--config', file], { env });
  assert.equal(quiet.code, 0, quiet.stderr);
});

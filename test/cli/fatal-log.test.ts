/**
 * One fatal, one error line: a real CLI run that ends on a fatal error logs exactly one
 * error-level line with its code (journalctl -p err shows it once, not two or three times).
 * And a state directory on a read-only file system is reported as EROFS, the real errno
 * (recursive mkdir says ENOENT there): the CLI runs in a private mount namespace
 * (`unshare -m`) where a read-only tmpfs is mounted over the state directory's parent.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  GATEWAY_CLI,
  launchGateway,
  makeTempDir,
  removeTempDir,
  sandboxEnv,
  writeConfig,
  type LogLine,
} from '../support/spawn-gateway.js';

/** pino's `error` level and above. */
const ERROR_LEVEL = 50;

function errorLines(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => typeof l.level === 'number' && l.level >= ERROR_LEVEL);
}

/** Root with mount rights: `unshare -m` can give the CLI its own read-only mount. */
const canMount =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs /mnt'], { stdio: 'ignore' })
    .status === 0;

await test('one fatal → exactly one error-level line with its code', async (t) => {
  const root = await makeTempDir('hgw-fatal-log-');
  t.after(() => removeTempDir(root));

  await t.test('an adapter fatal (non-retryable): one error line, exit 78', async () => {
    const dir = join(root, 'adapter');
    const { proc } = await launchGateway(dir, {
      platforms: { scripted: { then: 'throw', retryable: false } },
    });
    const exit = await proc.waitForExit(15_000);
    assert.equal(exit.code, 78);
    const errors = errorLines(proc.lines);
    assert.equal(errors.length, 1, JSON.stringify(errors, null, 1));
    assert.equal(typeof errors[0]!.code, 'string');
  });

  await t.test('a config error: one error line, exit 78', async () => {
    const dir = join(root, 'config');
    const { proc } = await launchGateway(dir, { platforms: { scripted: { bogus_key: 1 } } });
    const exit = await proc.waitForExit(15_000);
    assert.equal(exit.code, 78);
    const errors = errorLines(proc.lines);
    assert.equal(errors.length, 1, JSON.stringify(errors, null, 1));
    assert.equal(errors[0]!.code, 'GW_ERR_CONFIG_INVALID');
  });

  await t.test(
    'a state directory on a read-only file system: EROFS, one error line, exit 70',
    { skip: canMount ? false : 'needs root and unshare -m (mount namespaces)' },
    async () => {
      const dir = join(root, 'rofs');
      const readOnly = join(dir, 'ro');
      await mkdir(readOnly, { recursive: true });
      const statePath = join(readOnly, 'state', 'gateway_state.json');
      const config = await writeConfig(dir, {
        state_file: statePath,
        // The state file is what this case is about: the delivery store beside it would be
        // the first thing to fail on the read-only mount (GW_ERR_DELIVERY_STORE_OPEN).
        delivery: { enabled: false },
        platforms: { scripted: {} },
      });
      // The mount exists only in the child's namespace and dies with it.
      const child = spawn(
        'unshare',
        [
          '-m',
          'sh',
          '-c',
          'mount -t tmpfs -o ro tmpfs "$1" && exec "$2" "$3" run --config "$4"',
          'sh',
          readOnly,
          process.execPath,
          GATEWAY_CLI,
          config,
        ],
        { env: sandboxEnv(dir), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the CLI did not exit within 15 s\n${stdout}\n${stderr}`));
        }, 15_000);
        child.on('close', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 70, `${stdout}\n${stderr}`);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine);
      const errors = errorLines(lines);
      assert.equal(errors.length, 1, JSON.stringify(errors, null, 1));
      assert.equal(errors[0]!.code, 'GW_ERR_STATE_WRITE');
      assert.equal(errors[0]!.errno, 'EROFS');
    },
  );
});

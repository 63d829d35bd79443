/**
 * systemd/hermes-gateway.service: the template says why for every setting, has what DESIGN §8
 * requires, passes `systemd-analyze verify` once rendered, and runs under a real user manager
 * with a tiny notify-capable stand-in for the CLI (READY=1, STATUS=, STOPPING=1; exit 78 stays
 * down, exit 1 is restarted; the hardening is in force).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { renderUnit } from '../../src/systemd/install.js';
import { GatewayError } from '../../src/errors.js';
import { runGatewayCli, sandboxEnv, stderrCode } from '../support/spawn-gateway.js';
import { HARNESS_SCRIPT, SystemdHarness, run } from '../support/systemd-harness.js';

const REPO = dirname(dirname(HARNESS_SCRIPT));
const TEMPLATE = readFileSync(join(REPO, 'systemd', 'hermes-gateway.service'), 'utf8');
const availability = await SystemdHarness.available();
const analyze = await run('systemd-analyze', ['--version'], process.env).catch(() => null);
const T = { timeout: 60_000 };

interface Setting {
  section: string;
  key: string;
  value: string;
  line: number;
}

/** A directory name with what ExecStart= treats specially: spaces, %, $, quotes, backslash. */
const WEIRD_DIR = 'we ird %z %h $HOME ${USER} "dq" \'sq\' back\\slash; x';
/** Node's ESM loader refuses a backslash in a module path: the CLI's directory has none. */
const WEIRD_CLI_DIR = 'cli dir %z %h $HOME ${USER} "dq" \'sq\'; x';
/** The executable itself may not hold quotes or backslashes (systemd refuses those). */
const WEIRD_NODE_DIR = 'node dir %z $HOME';

function settings(text: string): Setting[] {
  const out: Setting[] = [];
  let section = '';
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) out.push({ section, key: kv[1]!, value: kv[2]!, line: index });
  });
  return out;
}

function value(key: string): string | undefined {
  return settings(TEMPLATE).find((s) => s.key === key)?.value;
}

/** systemd time spans as the template writes them ("5s", "60s", "100ms"). */
function seconds(span: string | undefined): number {
  const match = /^(\d+)(ms|s|min)$/.exec(span ?? '');
  assert.ok(match, `not a simple time span: ${span}`);
  const unit = { ms: 0.001, s: 1, min: 60 }[match[2] as 'ms' | 's' | 'min'];
  return Number(match[1]) * unit;
}

function render(values: { node: string; cli: string; config: string }): string {
  return TEMPLATE.replaceAll('@NODE@', values.node)
    .replaceAll('@CLI@', values.cli)
    .replaceAll('@CONFIG@', values.config);
}

await test('every setting says why on the line above', T, () => {
  const lines = TEMPLATE.split('\n');
  const bare = settings(TEMPLATE)
    .filter((s) => !lines[s.line - 1]?.trimStart().startsWith('#'))
    .map((s) => `${s.key}=${s.value}`);
  assert.deepEqual(bare, []);
});

await test('the template has what DESIGN §8 asks for', T, () => {
  const want: Record<string, string> = {
    Type: 'notify',
    NotifyAccess: 'main',
    ExecStart: '@NODE@ @CLI@ run --config @CONFIG@',
    Restart: 'on-failure',
    RestartPreventExitStatus: '78',
    WatchdogSec: '30s',
    StateDirectory: 'hermes-gateway',
    SyslogIdentifier: 'hermes-gateway',
    Environment: 'NODE_ENV=production',
    WantedBy: 'default.target',
  };
  for (const [key, expected] of Object.entries(want)) assert.equal(value(key), expected, key);
  // Above the gateway's own 10 s shutdown deadline (src/config DEFAULTS.shutdownTimeoutMs).
  assert.ok(seconds(value('TimeoutStopSec')) > 10);
  // Automatic restarts alone can never reach the start limit, so the unit is never parked.
  const maxAutoStarts =
    Math.floor(seconds(value('StartLimitIntervalSec')) / seconds(value('RestartSec'))) + 1;
  assert.ok(maxAutoStarts < Number(value('StartLimitBurst')), `${maxAutoStarts} starts fit`);
  assert.ok(
    settings(TEMPLATE).some((s) => s.key === 'Environment' && s.value === 'MALLOC_ARENA_MAX=2'),
    'malloc arenas capped',
  );
  // V8's JIT needs W+X pages: this one kills node at start (checked on 252).
  assert.equal(value('MemoryDenyWriteExecute'), undefined);
});

await test(
  'systemd-analyze verify passes on a rendered copy, and fails on a bad one',
  { ...T, skip: analyze?.code === 0 ? false : 'systemd-analyze not installed' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'hgw-unit-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const runtime = join(dir, 'run');
    await mkdir(runtime, { mode: 0o700 });
    const cli = join(dir, 'main.js');
    await writeFile(cli, '');
    const env = { ...process.env, XDG_RUNTIME_DIR: runtime, HOME: dir };
    const verify = async (text: string): Promise<{ code: number; output: string }> => {
      const unit = join(dir, 'hermes-gateway.service');
      await writeFile(unit, text);
      const result = await run('systemd-analyze', ['--user', 'verify', unit], env);
      return { code: result.code, output: (result.stderr + result.stdout).trim() };
    };

    const good = render({ node: process.execPath, cli, config: join(dir, 'config.yaml') });
    assert.doesNotMatch(good, /@[A-Z]+@/);
    // Unknown keys and bad values are only warnings (exit 0): no output at all is the bar.
    assert.deepEqual(await verify(good), { code: 0, output: '' });

    const missingNode = render({ node: join(dir, 'no-node'), cli, config: 'x' });
    assert.notEqual((await verify(missingNode)).code, 0);
    const typo = await verify(good.replace('Restart=on-failure', 'Restart=on-failur'));
    assert.match(typo.output, /restart specifier/);

    // What `install` renders from paths with spaces, specifiers (% with an unknown letter is
    // an error to systemd), variables, quotes and backslashes still verifies cleanly.
    const weird = join(dir, WEIRD_DIR);
    await mkdir(weird, { recursive: true });
    const nodeDir = join(dir, WEIRD_NODE_DIR);
    await mkdir(nodeDir);
    await symlink(process.execPath, join(nodeDir, 'node'));
    await writeFile(join(weird, 'main.js'), '');
    const escaped = renderUnit(TEMPLATE, {
      node: join(nodeDir, 'node'),
      cli: join(weird, 'main.js'),
      config: join(weird, 'config.yaml'),
    });
    assert.deepEqual(await verify(escaped), { code: 0, output: '' }, escaped);
  },
);

await test('`install` with a config path holding a newline: exit 78, GW_ERR_UNIT_PATH_UNSAFE, nothing written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-unit-nl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'con\nEnvironment=PWNED=1\nfig.yaml');
  await writeFile(config, 'platforms: {}\n');
  const result = await runGatewayCli(['install', '--config', config], {
    env: sandboxEnv(dir, { XDG_CONFIG_HOME: join(dir, 'xdg') }),
  });
  assert.equal(result.code, 78, result.stderr);
  assert.equal(stderrCode(result.stderr), 'GW_ERR_UNIT_PATH_UNSAFE');
  assert.equal(existsSync(join(dir, 'xdg', 'systemd', 'user', 'hermes-gateway.service')), false);
});

await test('install refuses a path with a newline or control character: GW_ERR_UNIT_PATH_UNSAFE', () => {
  for (const config of [
    '/tmp/a\nExecStartPre=/bin/sh -c evil\n/c.yaml',
    '/tmp/a\tb.yaml',
    '/tmp/\u007f',
  ]) {
    assert.throws(
      () => renderUnit(TEMPLATE, { node: process.execPath, cli: '/x/main.js', config }),
      (err: unknown) => err instanceof GatewayError && err.code === 'GW_ERR_UNIT_PATH_UNSAFE',
    );
  }
  for (const node of ['/opt/no"de', '/opt/no\\de']) {
    assert.throws(
      () => renderUnit(TEMPLATE, { node, cli: '/x/main.js', config: '/c.yaml' }),
      (err: unknown) => err instanceof GatewayError && err.code === 'GW_ERR_UNIT_PATH_UNSAFE',
    );
  }
});

/** Stands in for `hermes-gateway run --config FILE`: the same notify and log protocol. */
function fakeCli(packageJson: string): string {
  return `import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const sd = createRequire(${JSON.stringify(packageJson)})('sd-notify');
const [command, flag, file] = process.argv.slice(2);
if (command !== 'run' || flag !== '--config') process.exit(2);
const config = JSON.parse(readFileSync(file, 'utf8'));
if (config.exit !== undefined) {
  process.stdout.write('<3>{"level":50,"msg":"fake gateway: fatal"}\\n');
  process.exit(config.exit);
}
const stateDir = process.env.STATE_DIRECTORY;
writeFileSync(join(stateDir, 'argv.json'), JSON.stringify(process.argv.slice(1)));
writeFileSync(join(stateDir, 'probe.json'), JSON.stringify({
  stateDir,
  nodeEnv: process.env.NODE_ENV,
  journalStream: Boolean(process.env.JOURNAL_STREAM),
  watchdogUsec: process.env.WATCHDOG_USEC,
}));
process.stdout.write('<6>{"level":30,"msg":"fake gateway: running"}\\n');
sd.sendState('READY=1\\nSTATUS=fake: 0 adapters\\nMAINPID=' + process.pid);
const ping = setInterval(() => sd.sendState('WATCHDOG=1'), Number(process.env.WATCHDOG_USEC) / 2000);
process.on('SIGTERM', () => {
  sd.sendState('STOPPING=1\\nSTATUS=fake: stopping');
  clearInterval(ping);
});
`;
}

await test(
  'the rendered unit runs under a real user manager',
  {
    ...T,
    skip: !availability.ok
      ? availability.reason
      : availability.mode !== 'private'
        ? "StateDirectory= would be the developer's real ~/.config/hermes-gateway"
        : false,
  },
  async (t) => {
    const harness = await SystemdHarness.start();
    t.after(() => harness.stop());
    const unit = harness.uniqueUnitName('hermes-gateway');
    const cli = join(harness.stateDir, 'fake-gateway.mjs');
    const config = join(harness.stateDir, 'config.json');
    await writeFile(cli, fakeCli(join(REPO, 'package.json')));
    await writeFile(config, '{}');
    await harness.writeUnit(unit, render({ node: process.execPath, cli, config }));
    const props = [
      'ActiveState',
      'SubState',
      'Result',
      'ExecMainStatus',
      'NRestarts',
      'StatusText',
      'MainPID',
    ] as const;

    await t.test('READY=1 and STATUS= arrive; hardening and environment are in force', async () => {
      const start = await harness.systemctl(['start', unit]);
      assert.equal(start.code, 0, start.stderr);
      const p = await harness.show(unit, [...props, 'WatchdogUSec']);
      assert.equal(p.ActiveState, 'active');
      assert.equal(p.StatusText, 'fake: 0 adapters');
      assert.equal(p.WatchdogUSec, '30s');
      const status = readFileSync(`/proc/${p.MainPID}/status`, 'utf8');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^Seccomp:\s+2$/m);

      const stateDir = join(harness.env.XDG_CONFIG_HOME!, 'hermes-gateway');
      const probe = JSON.parse(await readFile(join(stateDir, 'probe.json'), 'utf8')) as unknown;
      assert.deepEqual(probe, {
        stateDir,
        nodeEnv: 'production',
        journalStream: true,
        watchdogUsec: '30000000',
      });
      assert.equal(statSync(stateDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(stateDir, 'probe.json')).mode & 0o777, 0o600);
    });

    await t.test('lines are filed under SyslogIdentifier= with their <N> priority', async () => {
      const entries = await harness.waitFor(
        async () => {
          const all = await harness.journalEntries(unit);
          return all.some((e) => e.message.includes('fake gateway: running')) && all;
        },
        5_000,
        { what: 'the running line' },
      );
      const line = entries.find((e) => e.message.includes('fake gateway: running'));
      assert.equal(line?.identifier, 'hermes-gateway');
      assert.equal(line?.priority, 6);
    });

    await t.test('SIGTERM: STOPPING=1, then a clean stop', async () => {
      const stop = await harness.systemctl(['stop', unit]);
      assert.equal(stop.code, 0, stop.stderr);
      const p = await harness.show(unit, props);
      assert.equal(p.ActiveState, 'inactive');
      assert.equal(p.Result, 'success');
    });

    await t.test('exit 78 stays down (RestartPreventExitStatus=78)', async () => {
      await writeFile(config, '{"exit":78}');
      const start = await harness.systemctl(['start', unit]);
      assert.notEqual(start.code, 0);
      const p = await harness.show(unit, props);
      assert.deepEqual(
        [p.ActiveState, p.SubState, p.Result, p.ExecMainStatus, p.NRestarts],
        ['failed', 'failed', 'exit-code', '78', '0'],
      );
      // journald ingests the stdout line asynchronously: poll for it, bounded.
      await harness.waitFor(
        async () =>
          (await harness.journalEntries(unit, { priority: 'err' })).some(
            (e) => e.identifier === 'hermes-gateway' && e.message.includes('fatal'),
          ),
        10_000,
        { what: 'the fatal line under -p err' },
      );
    });

    await t.test('exit 1 is restarted (Restart=on-failure)', async () => {
      await harness.systemctl(['reset-failed', unit]);
      await writeFile(config, '{"exit":1}');
      await harness.systemctl(['start', unit]);
      const p = await harness.show(unit, props);
      assert.deepEqual(
        [p.ActiveState, p.SubState, p.Result, p.ExecMainStatus],
        ['activating', 'auto-restart', 'exit-code', '1'],
      );
      const stop = await harness.systemctl(['stop', unit]);
      assert.equal(stop.code, 0, stop.stderr);
    });

    await t.test(
      'paths with spaces, %, $, quotes and backslashes reach the process unchanged',
      async () => {
        const weird = join(harness.stateDir, WEIRD_DIR);
        await mkdir(weird, { recursive: true });
        const nodeDir = join(harness.stateDir, WEIRD_NODE_DIR);
        await mkdir(nodeDir, { recursive: true });
        await symlink(process.execPath, join(nodeDir, 'node'));
        const cliDir = join(harness.stateDir, WEIRD_CLI_DIR);
        await mkdir(cliDir, { recursive: true });
        const weirdCli = join(cliDir, 'fake-gateway.mjs');
        const weirdConfig = join(weird, 'config.json');
        await writeFile(weirdCli, fakeCli(join(REPO, 'package.json')));
        await writeFile(weirdConfig, '{}');
        const weirdUnit = harness.uniqueUnitName('hermes-gateway-paths');
        await harness.writeUnit(
          weirdUnit,
          renderUnit(TEMPLATE, { node: join(nodeDir, 'node'), cli: weirdCli, config: weirdConfig }),
        );
        const start = await harness.systemctl(['start', weirdUnit]);
        const journal = async (): Promise<string> =>
          (await harness.journalEntries(weirdUnit)).map((e) => e.message).join('\n');
        assert.equal(start.code, 0, `${start.stderr}\n${await journal()}`);
        const stateDir = join(harness.env.XDG_CONFIG_HOME!, 'hermes-gateway');
        const argv = JSON.parse(await readFile(join(stateDir, 'argv.json'), 'utf8')) as unknown;
        assert.deepEqual(argv, [weirdCli, 'run', '--config', weirdConfig]);
        const stop = await harness.systemctl(['stop', weirdUnit]);
        assert.equal(stop.code, 0, stop.stderr);
      },
    );
  },
);

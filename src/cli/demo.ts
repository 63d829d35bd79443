/**
 * `demo`: the whole gateway as a child process with the echo handler, against bundled fake
 * platforms on loopback. One entry per platform in DEMO_PLATFORMS says how to start its fake,
 * what its instance looks like in the config and how a user message goes in and the reply
 * comes back; `--platform all` runs every entry in one gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EXIT } from '../errors.js';
import type { StateDocument } from '../state/schema.js';
import { CLI_PATH } from '../systemd/install.js';
import type { CommandContext } from './context.js';
import { DEMO_PLATFORMS, type DemoFake, type DemoPlatform } from './demo-platforms.js';

/** The CLI this demo is part of: the demo runs it as a gateway process. */
const CLI = CLI_PATH;
const STEP_TIMEOUT_MS = 8_000;

interface DemoLine {
  msg?: string;
  level?: number;
  platform?: string;
  to?: string;
}

function config(stateFile: string, fakes: Array<[DemoPlatform, DemoFake]>): string {
  return [
    `state_file: ${stateFile}`,
    'log_level: info',
    'shutdown_timeout_ms: 2000',
    'handler:',
    '  type: echo',
    'platforms:',
    ...fakes.flatMap(([platform, fake]) => [
      `  ${platform.name}:`,
      '    enabled: true',
      ...fake.configLines.map((line) => `    ${line}`),
    ]),
    '',
  ].join('\n');
}

/** Waits for `predicate` over the gateway's log lines, or fails after a bound. */
function waitForLine(
  lines: DemoLine[],
  child: ChildProcess,
  predicate: (line: DemoLine) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (lines.some(predicate)) finish(null);
    };
    const onExit = (): void => finish(new Error('the gateway exited early'));
    const timer = setTimeout(
      () => finish(new Error('timed out waiting for the gateway')),
      STEP_TIMEOUT_MS,
    );
    const interval = setInterval(check, 10);
    function finish(err: Error | null): void {
      clearTimeout(timer);
      clearInterval(interval);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.once('exit', onExit);
    check();
  });
}

/**
 * Runs the demo for `choice` (a DEMO_PLATFORMS name or `all`): starts the fakes, the gateway,
 * one message round trip per platform, shows the state file and stops with SIGTERM. Resolves
 * with the exit code: 0 when every step passed and the gateway exited 0, else 1.
 */
export async function runDemo(ctx: CommandContext, choice = 'qqbot'): Promise<number> {
  const { io } = ctx;
  const started = Date.now();
  const chosen = DEMO_PLATFORMS.filter((p) => choice === 'all' || p.name === choice);
  const dir = await mkdtemp(join(tmpdir(), 'hermes-gateway-demo-'));
  const fakes: Array<[DemoPlatform, DemoFake]> = [];
  let child: ChildProcess | null = null;
  try {
    for (const platform of chosen) fakes.push([platform, await platform.start()]);
    const stateFile = join(dir, 'gateway_state.json');
    const configFile = join(dir, 'config.yaml');
    await writeFile(configFile, config(stateFile, fakes), { mode: 0o600 });
    const labels = fakes.map(([p]) => p.label).join(' and ');
    io.out(`hermes-gateway demo: the real gateway against a ${labels} on loopback\n`);
    for (const [platform, fake] of fakes) io.out(`  ${platform.label.padEnd(22)} ${fake.url}`);
    io.out(`  ${'config'.padEnd(22)} ${configFile}`);

    const lines: DemoLine[] = [];
    const env = Object.assign({}, ...fakes.map(([, fake]) => fake.env)) as Record<string, string>;
    child = spawn(process.execPath, [CLI, 'run', '--config', configFile], {
      env: { ...io.env, ...env, JOURNAL_STREAM: '', NOTIFY_SOCKET: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        lines.push(JSON.parse(text) as DemoLine);
      } catch {
        io.out(`  gateway: ${text}`);
      }
    });
    io.out(`  ${'gateway'.padEnd(22)} pid ${child.pid}\n`);

    for (const [platform, fake] of fakes) {
      const gateway = child;
      await waitForLine(
        lines,
        gateway,
        (l) => l.platform === platform.name && l.to === 'connected',
      );
      io.out(`  ✓ ${platform.name} connected: ${fake.connectedNote} (${Date.now() - started} ms)`);
    }
    for (const [platform, fake] of fakes) {
      const text = `hello from the demo (${platform.name})`;
      const sentAt = Date.now();
      io.out(`  → a ${platform.name} user says  "${text}"`);
      const reply = await fake.roundTrip(text, STEP_TIMEOUT_MS);
      io.out(`  ← the bot says          "${reply}" (${Date.now() - sentAt} ms)`);
    }

    const state = JSON.parse(await readFile(stateFile, 'utf8')) as StateDocument;
    const states = (doc: StateDocument): string =>
      fakes.map(([p]) => `${p.name} ${doc.platforms[p.name]?.state}`).join(', ');
    io.out(`\n  state file ${stateFile}:`);
    io.out(`    gateway ${state.gateway.state}, ${states(state)}, write_seq ${state.write_seq}`);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    const final = JSON.parse(await readFile(stateFile, 'utf8')) as StateDocument;
    io.out(`  ✓ SIGTERM: exit ${code}, gateway ${final.gateway.state}, ${states(final)}`);
    io.out(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    child = null;
    return code === 0 ? EXIT.OK : 1;
  } catch (err) {
    io.err(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    for (const [, fake] of fakes) await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

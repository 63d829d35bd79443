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
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { EXIT } from '../errors.js';
import type { StateDocument } from '../state/schema.js';
import type { CommandContext } from './context.js';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const STEP_TIMEOUT_MS = 8_000;

interface DemoLine {
  msg?: string;
  level?: number;
  platform?: string;
  to?: string;
}

/** One platform's fake, started for one demo. */
interface DemoFake {
  /** Where the fake listens, for the user to see. */
  url: string;
  /** The instance's keys under `platforms.<name>` (indented by the caller). */
  configLines: string[];
  /** Environment the gateway needs (secrets go through `${VAR}`, never the config file). */
  env: Record<string, string>;
  /** What proves the platform accepted the bot, for the ✓ line. */
  connectedNote: string;
  /** A user sends `text`; resolves with the bot's reply text. Rejects after `timeoutMs`. */
  roundTrip(text: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/** A platform the demo can show: the instance name and how to start its fake. */
interface DemoPlatform {
  /** The instance name (= its type) in the demo config and in log lines. */
  name: string;
  /** How the fake is named to the user. */
  label: string;
  /** Loads the fake lazily: every other command (`run` above all) would pay for the import. */
  start(): Promise<DemoFake>;
}

/**
 * Every platform the demo knows, in the order `all` starts them. A new platform is one entry:
 * its fake comes from `src/fakes/<p>/`.
 */
export const DEMO_PLATFORMS: readonly DemoPlatform[] = [
  {
    name: 'qqbot',
    label: 'fake QQ server',
    async start() {
      const { FakeQQServer } = await import('../fakes/qq/server.js');
      const secret = 'demo-secret-0123456789';
      const fake = await FakeQQServer.start({ clientSecret: secret });
      return {
        url: fake.apiBase,
        configLines: [
          // The fake's own app id: unique per demo, so demos side by side hold no one credential.
          `app_id: "${fake.settings.appId}"`,
          'client_secret: ${DEMO_QQ_SECRET}',
          `token_url: ${fake.tokenUrl}`,
          `api_base: ${fake.apiBase}`,
        ],
        env: { DEMO_QQ_SECRET: secret },
        connectedNote: 'the fake server sent READY',
        async roundTrip(text, timeoutMs) {
          const reply = fake.waitFor('message-sent', timeoutMs);
          fake.dispatchC2CMessage({ content: text });
          const body = (await reply).body as { content?: unknown } | undefined;
          return String(body?.content);
        },
        close: () => fake.close(),
      };
    },
  },
  {
    name: 'telegram',
    label: 'fake Telegram Bot API',
    async start() {
      const { FakeTelegramServer } = await import('../fakes/telegram/server.js');
      // The fake's own bot id: unique per demo, so demos side by side hold no one credential.
      const fake = await FakeTelegramServer.start({ username: 'hermes_demo_bot' });
      const token = fake.token;
      return {
        url: fake.apiBase,
        configLines: ['token: ${DEMO_TELEGRAM_TOKEN}', `api_base: ${fake.apiBase}`],
        env: { DEMO_TELEGRAM_TOKEN: token },
        connectedNote: 'getMe accepted the token and the first getUpdates answered',
        async roundTrip(text, timeoutMs) {
          const reply = fake.waitFor<{ text: string }>('sent', timeoutMs);
          fake.message(text);
          return (await reply).text;
        },
        close: () => fake.close(),
      };
    },
  },
  {
    name: 'discord',
    label: 'fake Discord gateway + REST',
    async start() {
      const { FakeDiscordServer } = await import('../fakes/discord/index.js');
      const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 5_000 });
      return {
        url: fake.apiBase,
        configLines: ['token: ${DEMO_DISCORD_TOKEN}', `api_base: ${fake.apiBase}`],
        env: { DEMO_DISCORD_TOKEN: fake.settings.token },
        connectedNote: 'the fake gateway sent READY',
        async roundTrip(text, timeoutMs) {
          const before = fake.sent.length;
          // A DM: always answered, no mention needed.
          fake.dispatchMessage({ content: text, guildId: null, channelId: '320000000000000001' });
          await fake.until(() => fake.sent.length > before, 'the reply', timeoutMs);
          return String(fake.sent[before]!.body.content);
        },
        close: () => fake.close(),
      };
    },
  },
];

export const DEMO_CHOICES = [...DEMO_PLATFORMS.map((p) => p.name), 'all'];

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

export function registerDemoCommand(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description(
      'run the whole gateway against bundled fake platforms and show a message round trip',
    )
    .addOption(
      new Option(
        '-p, --platform <name>',
        'the fake platform to run against; all = every one at once',
      )
        .choices(DEMO_CHOICES)
        .default('qqbot'),
    )
    .action(async (opts: { platform: string }) => {
      ctx.result.code = await runDemo(ctx, opts.platform);
    });
}

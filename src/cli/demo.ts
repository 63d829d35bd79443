import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { FakeQQServer } from '../fakes/qq/server.js';
import { discordDemo, type DemoPlatform, type DemoSession } from './demo-discord.js';
import { EXIT } from '../errors.js';
import type { StateDocument } from '../state/schema.js';
import type { CommandContext } from './context.js';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const DEMO_SECRET = 'demo-secret-0123456789';
const STEP_TIMEOUT_MS = 8_000;

interface DemoLine {
  msg?: string;
  level?: number;
  platform?: string;
  to?: string;
}

function qqConfig(fake: FakeQQServer): string[] {
  return [
    '  qqbot:',
    '    enabled: true',
    // The fake's own app id: unique per demo, so demos side by side do not hold one credential.
    `    app_id: "${fake.settings.appId}"`,
    '    client_secret: ${DEMO_QQ_SECRET}',
    `    token_url: ${fake.tokenUrl}`,
    `    api_base: ${fake.apiBase}`,
  ];
}

/** The QQ demo: the fake QQ server, one C2C message. */
const qqDemo: DemoPlatform = {
  name: 'qqbot',
  label: 'QQ',
  async start(): Promise<DemoSession> {
    // Loaded here, not at the top: every other command (`run` above all) would pay for it.
    const { FakeQQServer } = await import('../fakes/qq/server.js');
    const fake = await FakeQQServer.start({ clientSecret: DEMO_SECRET });
    return {
      where: fake.apiBase,
      config: qqConfig(fake),
      env: { DEMO_QQ_SECRET: DEMO_SECRET },
      async say(text) {
        const replyPromise = fake.waitFor('message-sent', STEP_TIMEOUT_MS);
        fake.dispatchC2CMessage({ content: text });
        const reply = await replyPromise;
        return String((reply.body as { content?: unknown } | undefined)?.content);
      },
      close: () => fake.close(),
    };
  },
};

const DEMOS: Record<string, DemoPlatform> = { qqbot: qqDemo, discord: discordDemo };

function config(session: DemoSession, stateFile: string): string {
  return [
    `state_file: ${stateFile}`,
    'log_level: info',
    'shutdown_timeout_ms: 2000',
    'handler:',
    '  type: echo',
    'platforms:',
    ...session.config,
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
 * `demo`: the whole gateway, as a child process with the echo handler, against the bundled
 * fake QQ server on loopback. Shows a message go in, the reply come back, the state file, and
 * a clean stop.
 */
export async function runDemo(ctx: CommandContext, platform = 'qqbot'): Promise<number> {
  const { io } = ctx;
  const demo = DEMOS[platform];
  if (demo === undefined) {
    io.err(`demo: unknown platform ${platform} (one of ${Object.keys(DEMOS).join(', ')})`);
    return EXIT.USAGE;
  }
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'hermes-gateway-demo-'));
  const fake = await demo.start();
  const name = demo.name;
  let child: ChildProcess | null = null;
  try {
    const stateFile = join(dir, 'gateway_state.json');
    const configFile = join(dir, 'config.yaml');
    await writeFile(configFile, config(fake, stateFile), { mode: 0o600 });
    io.out(
      `hermes-gateway demo: the real gateway against a fake ${demo.label} server on loopback\n`,
    );
    io.out(`  fake ${demo.label} server  ${fake.where}`);
    io.out(`  config          ${configFile}`);

    const lines: DemoLine[] = [];
    child = spawn(process.execPath, [CLI, 'run', '--config', configFile], {
      env: { ...io.env, ...fake.env, JOURNAL_STREAM: '', NOTIFY_SOCKET: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        lines.push(JSON.parse(text) as DemoLine);
      } catch {
        io.out(`  gateway: ${text}`);
      }
    });
    io.out(`  gateway         pid ${child.pid}\n`);

    await waitForLine(lines, child, (l) => l.platform === name && l.to === 'connected');
    io.out(`  ✓ ${name} connected: the fake server sent READY (${Date.now() - started} ms)`);

    const text = 'hello from the demo';
    const sentAt = Date.now();
    io.out(`  → a user says   "${text}"`);
    const replyText = await fake.say(text);
    io.out(`  ← the bot says  "${replyText}" (${Date.now() - sentAt} ms)\n`);

    const state = JSON.parse(await readFile(stateFile, 'utf8')) as StateDocument;
    const status = state.platforms[name];
    io.out(`  state file ${stateFile}:`);
    io.out(
      `    gateway ${state.gateway.state}, ${name} ${status?.state}, write_seq ${state.write_seq}`,
    );

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    const final = JSON.parse(await readFile(stateFile, 'utf8')) as StateDocument;
    io.out(
      `  ✓ SIGTERM: exit ${code}, gateway ${final.gateway.state}, ${name} ${final.platforms[name]?.state}`,
    );
    io.out(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    child = null;
    return code === 0 ? EXIT.OK : 1;
  } catch (err) {
    io.err(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export function registerDemoCommand(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description(
      'run the whole gateway against a bundled fake platform server and show a message round trip',
    )
    .option('--platform <name>', 'the fake platform: qqbot or discord', 'qqbot')
    .action(async (options: { platform: string }) => {
      ctx.result.code = await runDemo(ctx, options.platform);
    });
}

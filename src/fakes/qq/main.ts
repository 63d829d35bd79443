/**
 * Standalone fake QQ Bot server, spawned by `hermes-gateway demo` and the systemd tests.
 *
 *   node dist/src/fakes/qq/main.js [--port N] [--host H] [--app-id ID] [--secret S]
 *     [--heartbeat-interval-ms N] [--hello-delay-ms N] [--token-ttl-sec N] [--no-control]
 *
 * Prints one JSON line `{"tokenUrl","apiBase","wsUrl","appId","controlUrl"}` on stdout once
 * listening; the `/_fake/*` control routes (see control.ts) are on unless `--no-control`.
 * Exits 0 after a clean close on SIGTERM/SIGINT, 2 on bad arguments, 1 if it cannot listen.
 */
import { parseArgs } from 'node:util';
import { DEFAULTS, type FakeQQServerOptions } from './options.js';
import { FakeQQServer } from './server.js';

function numberArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
}

function parseOptions(argv: string[]): FakeQQServerOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'app-id': { type: 'string' },
      secret: { type: 'string' },
      'heartbeat-interval-ms': { type: 'string' },
      'hello-delay-ms': { type: 'string' },
      'token-ttl-sec': { type: 'string' },
      'no-control': { type: 'boolean' },
    },
  });
  const port = numberArg(values.port, 'port');
  if (port !== undefined && (!Number.isInteger(port) || port > 65535)) {
    throw new Error('--port must be an integer from 0 to 65535');
  }
  const heartbeatIntervalMs = numberArg(values['heartbeat-interval-ms'], 'heartbeat-interval-ms');
  const helloDelayMs = numberArg(values['hello-delay-ms'], 'hello-delay-ms');
  const tokenTtlSec = numberArg(values['token-ttl-sec'], 'token-ttl-sec');
  return {
    controlApi: values['no-control'] !== true,
    clientSecret: values.secret ?? DEFAULTS.clientSecret,
    // Without --app-id, a unique one (the gateway locks app ids across processes).
    ...(values['app-id'] !== undefined && { appId: values['app-id'] }),
    ...(values.host !== undefined && { host: values.host }),
    ...(port !== undefined && { port }),
    ...(heartbeatIntervalMs !== undefined && { heartbeatIntervalMs }),
    ...(helloDelayMs !== undefined && { helloDelayMs }),
    ...(tokenTtlSec !== undefined && { tokenTtlSec }),
  };
}

async function main(): Promise<number> {
  let options: FakeQQServerOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fake-qq: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const fake = await FakeQQServer.start(options);
  const { tokenUrl, apiBase, wsUrl } = fake;
  const controlUrl = fake.settings.controlApi ? `${apiBase}/_fake` : null;
  process.stdout.write(
    `${JSON.stringify({ tokenUrl, apiBase, wsUrl, appId: fake.settings.appId, controlUrl })}\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.stderr.write(`fake-qq: ${signal}, closing\n`);
  await fake.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fake-qq: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

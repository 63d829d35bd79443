/**
 * The pieces of a scale-out test (docs/scale-out.md): a real nats-server, the QQ fake, a
 * gateway with `handler.type: nats` and workers, each the built product CLI in a child
 * process, each with tiny real timings from its config.
 */
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import type { StateDocument } from '../../src/state/schema.js';
import { startNatsServer, type NatsServer, type NatsServerOptions } from './nats-server.js';
import {
  PRODUCT_CLI,
  makeTempDir,
  removeTempDir,
  sandboxEnv,
  spawnGateway,
  writeConfig,
  type GatewayProcess,
  waitFor,
} from './spawn-gateway.js';
import { qqbotInstanceFor } from './qq-instance.js';

export const QQ_SECRET_ENV = 'HGW_TEST_QQ_SECRET';

/** Broker keys both sides share, with tiny timings; `extra` overrides. */
export function brokerConfig(
  nats: NatsServer,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    servers: [nats.url],
    stream: 'HT',
    subject_prefix: 'ht',
    partitions: 8,
    ack_wait_ms: 1_000,
    max_deliver: 5,
    publish_timeout_ms: 1_000,
    reconnect_wait_ms: 50,
    reconnect_wait_max_ms: 200,
    unreachable_budget_ms: 20_000,
    ...extra,
  };
}

export interface ScaleOut {
  /** The broker now (a new process after restartBroker). */
  readonly nats: NatsServer;
  fake: FakeQQServer;
  dir: string;
  /** Starts (or restarts) the gateway on the same config and state file. */
  startGateway(): Promise<GatewayProcess>;
  /** Starts one worker running `handler`; resolves once it consumes every partition. */
  startWorker(handler?: Record<string, unknown>, name?: string): Promise<GatewayProcess>;
  /** Restarts the broker on the same port and store (after a stop). */
  restartBroker(): Promise<void>;
  statePath: string;
  gatewayConfig: string;
  /** Messages the fake accepted (the platform delivered), as text. */
  delivered(): string[];
  dispose(): Promise<void>;
}

export interface ScaleOutOptions {
  broker?: Record<string, unknown>;
  /** Overrides of the gateway's `handler:` (beside the broker keys). */
  handler?: Record<string, unknown>;
  server?: NatsServerOptions;
  /** Environment of the gateway and the workers (secrets). */
  env?: Record<string, string>;
  /** Top-level keys of the gateway's config (`control`). */
  top?: Record<string, unknown>;
}

export async function startScaleOut(options: ScaleOutOptions = {}): Promise<ScaleOut> {
  const dir = await makeTempDir('hgw-nats-');
  const nats = await startNatsServer(options.server);
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: 5_000 });
  const statePath = `${dir}/gateway_state.json`;
  const broker = { ...brokerConfig(nats), ...options.broker };
  const gatewayConfig = await writeConfig(dir, {
    state_file: statePath,
    log_level: 'debug',
    log_format: 'json',
    shutdown_timeout_ms: 3_000,
    ...options.top,
    handler: { type: 'nats', ...broker, ...options.handler },
    platforms: {
      qqbot: {
        enabled: true,
        ...qqbotInstanceFor(fake, QQ_SECRET_ENV),
        reconnect: { backoff_ms: [20, 40], max_attempts: 3, healthy_after_ms: 10_000 },
        timeouts: { rest_ms: 2_000, token_ms: 2_000, close_ms: 200 },
        jitter: false,
      },
    },
  });
  const env = sandboxEnv(dir, { [QQ_SECRET_ENV]: fake.settings.clientSecret, ...options.env });
  const procs: GatewayProcess[] = [];
  let workers = 0;
  const servers: NatsServer[] = [nats];
  return {
    get nats() {
      return servers[servers.length - 1]!;
    },
    fake,
    dir,
    statePath,
    gatewayConfig,
    startGateway() {
      const proc = spawnGateway(['run', '--config', gatewayConfig], { env, cli: PRODUCT_CLI });
      procs.push(proc);
      return Promise.resolve(proc);
    },
    async startWorker(handler = { type: 'echo' }, name = `worker${++workers}`) {
      const path = await writeConfig(
        dir,
        { log_level: 'debug', log_format: 'json', shutdown_timeout_ms: 3_000, broker, handler },
        `${name}.yaml`,
      );
      const proc = spawnGateway(['worker', '--config', path], { env, cli: PRODUCT_CLI });
      procs.push(proc);
      await proc.waitForLine((l) => l.msg === 'worker consuming', `${name} consuming`, 20_000);
      return proc;
    },
    async restartBroker() {
      servers.push(
        await startNatsServer({ ...options.server, port: nats.port, storeDir: nats.storeDir }),
      );
    },
    delivered() {
      return fake.records.sentMessages.map((r) =>
        String((r.body as { content?: unknown }).content),
      );
    },
    async dispose() {
      for (const proc of procs) proc.kill();
      await Promise.all(procs.map((p) => p.exited));
      await fake.close();
      for (const server of servers.slice(1)) await server.stop('SIGKILL');
      await nats.dispose();
      await removeTempDir(dir);
    },
  };
}

/** The gateway runs, QQ is connected and the broker hop is up. */
export function gatewayReady(doc: StateDocument): boolean {
  return (
    doc.gateway.state === 'running' &&
    Object.values(doc.platforms).every((p) => p.state === 'connected') &&
    doc.broker?.state === 'connected'
  );
}

/**
 * What the broker still has to deliver, read from the broker itself: events and replies not
 * yet acked by their consumers (pending or in flight), summed over every durable consumer of
 * each stream; and the dead letters (which no consumer reads), by subject. Zero events and
 * replies: nothing more can be delivered. (A `kill -9` of the server can leave an acked
 * message in a work-queue stream's files for a while; it is not pending for any consumer, so
 * it is not counted here: `storedMessages` gives a stream's raw count.)
 */
export async function brokerBacklog(
  url: string,
  stream = 'HT',
  auth: { token?: string } = {},
): Promise<{ events: number; replies: number; dead: number }> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: [url], ...auth });
  try {
    const jsm = await jetstreamManager(nc);
    const pending = async (name: string): Promise<number> => {
      let sum = 0;
      for await (const ci of jsm.consumers.list(name)) sum += ci.num_pending + ci.num_ack_pending;
      return sum;
    };
    const replyInfo = await jsm.streams.info(`${stream}_REPLIES`, { subjects_filter: '>' });
    let dead = 0;
    for (const [subject, n] of Object.entries(replyInfo.state.subjects ?? {})) {
      if (subject.includes('.dead.')) dead += n;
    }
    return { events: await pending(stream), replies: await pending(`${stream}_REPLIES`), dead };
  } finally {
    await nc.close();
  }
}

/** Messages a stream holds right now (acked or not), read from the broker. */
export async function storedMessages(url: string, stream = 'HT'): Promise<number> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: [url] });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

/** Waits until no event and no reply is left in the broker: nothing more can be delivered. */
export async function waitDrained(url: string, timeoutMs = 20_000): Promise<void> {
  let last = { events: -1, replies: -1, dead: -1 };
  await waitFor(
    async () => {
      last = await brokerBacklog(url);
      return last.events === 0 && last.replies === 0;
    },
    'nothing left in the broker',
    timeoutMs,
    50,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; still there: ${JSON.stringify(last)}`);
  });
}

/** Replies the fake accepted, grouped by target (a C2C user's openid), in arrival order. */
export function deliveredByTarget(fake: FakeQQServer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of fake.records.sentMessages) {
    const text = String((r.body as { content?: unknown }).content);
    const list = out.get(r.targetId);
    if (list) list.push(text);
    else out.set(r.targetId, [text]);
  }
  return out;
}

/**
 * The one inbound HTTP server of the gateway (DESIGN §11): webhook transports (QQ, Telegram)
 * register a route (listen address + path) when their adapter starts and release it when it
 * stops. Instances that name the same listen address share one listener; each listener routes
 * by path. What the listener answers itself, before any handler runs: unknown path 404, a
 * method other than POST 405, a body over the route's bound 413, a body that does not arrive
 * within the route's request timeout 408, a route that is closing 503. Every request is
 * counted in `hermes_ingress_requests_total{route,status}` and every rejection in
 * `hermes_ingress_rejected_total{route,reason}` (the route label is the instance, or
 * `unrouted`). A handler gets the raw body bytes (verification before parsing is its job)
 * and answers when it is done: for a webhook, once the pipeline took the event.
 *
 * Listeners passed by systemd socket activation (`LISTEN_FDS`) are adopted at the first
 * registration and used for the route whose address is the socket's own address, instead of
 * binding; the variables are then removed from the environment, so children do not see them.
 */
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { chmod, unlink } from 'node:fs/promises';
import pino, { type Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { metrics as sharedMetrics, type GatewayMetrics } from '../metrics.js';
import { readBody } from '../net/body.js';
import { untilAborted } from '../util/abort.js';
import { formatListen, listenOn, prepareUnixPath, type ListenAddress } from '../net/listen.js';
import './errors.js';

/** Production defaults of a route (each webhook config exposes them as keys). */
export const DEFAULTS = {
  /** Loopback: a reverse proxy normally terminates TLS in front of the gateway. */
  listen: '127.0.0.1:8080',
  maxBodyBytes: 1024 * 1024,
  /** A client must have sent its whole request (headers and body) within this. */
  requestTimeoutMs: 10_000,
  /** A stopping route waits this long for its requests in flight before they are cut. */
  closeGraceMs: 2_000,
} as const;

/** The first file descriptor systemd passes (sd_listen_fds(3)). */
const SD_LISTEN_FDS_START = 3;

/** What a route handler gets: the request line, the headers and the raw body bytes. */
export interface IngressRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Exactly the bytes received: verify signatures over these, then parse. */
  readonly body: Buffer;
}

/** A handler's answer. */
export interface IngressReply {
  status: number;
  /** JSON-serialised as the body when not a string; no body when absent. */
  body?: unknown;
  /** For `hermes_ingress_rejected_total{reason}` when `status` >= 400 (default `status_<n>`). */
  reason?: string;
}

/**
 * Answers one request. Resolves with the reply; a rejection is answered 500 and logged as a
 * bug (`GW_ERR_INTERNAL`).
 */
export type RouteHandler = (request: IngressRequest) => Promise<IngressReply>;

export interface RouteSpec {
  listen: ListenAddress;
  /** Absolute path, matched exactly (the query string is ignored). */
  path: string;
  /** The instance that owns the route: the `route` label of the metrics. */
  instance: string;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  handler: RouteHandler;
  log?: Logger;
}

/** A registered route: release it with `close()` when the adapter stops. */
export interface IngressRoute {
  /** The address the listener is bound to (the real port when the config said 0). */
  readonly address: ListenAddress;
  /** True when the listener came from systemd socket activation. */
  readonly activated: boolean;
  /** The listener's server, shared with the other routes of its address: never close it. */
  readonly server: http.Server;
  /**
   * Resolves with GW_ERR_INGRESS_LISTENER_DIED when the listener closes or fails while this
   * route is registered; never rejects, and stays pending once the route is closed.
   */
  readonly died: Promise<GatewayError>;
  /**
   * Unregisters the route: new requests to it get 404, those in flight get up to the close
   * grace to finish. The listener closes with its last route. Never rejects; idempotent.
   */
  close(): Promise<void>;
}

interface RouteEntry {
  readonly spec: RouteSpec;
  readonly inflight: Set<Promise<void>>;
  closing: boolean;
  died: (error: GatewayError) => void;
}

/** Identity of an address for sharing: the same text in two configs is the same listener. */
export function listenKey(address: ListenAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
}

/** One bound server and its routes. */
class Listener {
  readonly routes = new Map<string, RouteEntry>();
  address: ListenAddress;
  private closeRequested = false;
  private dead = false;

  constructor(
    readonly server: http.Server,
    readonly activated: boolean,
    address: ListenAddress,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.address = address;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('error', (err: NodeJS.ErrnoException) => this.die(err.code ?? err.message));
    server.on('close', () => this.die('closed'));
  }

  /** The Node-level bound on headers and body: the longest of the routes' timeouts. */
  applyTimeouts(): void {
    let longest = 0;
    for (const route of this.routes.values()) {
      longest = Math.max(longest, route.spec.requestTimeoutMs);
    }
    if (longest === 0) return;
    // Node's own bound (408 and a cut) catches slow headers; each route times its body too.
    this.server.headersTimeout = longest;
    this.server.requestTimeout = longest;
  }

  async close(): Promise<void> {
    if (this.closeRequested) return;
    this.closeRequested = true;
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.server.closeAllConnections();
    await closed;
    if (this.address.kind === 'unix' && !this.activated) {
      await unlink(this.address.path).catch(() => undefined);
    }
  }

  private die(why: string): void {
    if (this.closeRequested || this.dead) return;
    this.dead = true;
    const error = new GatewayError(
      'GW_ERR_INGRESS_LISTENER_DIED',
      `the inbound listener on ${formatListen(this.address)} ended while running (${why})`,
      { details: { listen: formatListen(this.address), why } },
    );
    for (const route of this.routes.values()) route.died(error);
  }

  private count(route: string, status: number, reason: string | null): void {
    this.metrics.ingressRequestsTotal.inc({ route, status: String(status) });
    if (reason !== null) this.metrics.ingressRejectedTotal.inc({ route, reason });
  }

  private reject(
    res: ServerResponse,
    route: string,
    status: number,
    code: string,
    reason: string,
    headers: Record<string, string> = {},
  ): void {
    this.count(route, status, reason);
    this.log.debug({ code, route, status }, `inbound request rejected (${reason})`);
    writeReply(res, status, { error: { code } }, headers);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    const entry = this.routes.get(path);
    if (entry === undefined) {
      this.reject(res, 'unrouted', 404, 'GW_ERR_INGRESS_NOT_FOUND', 'not_found');
      return;
    }
    const { spec } = entry;
    const route = spec.instance;
    if (req.method !== 'POST') {
      this.reject(res, route, 405, 'GW_ERR_INGRESS_METHOD_NOT_ALLOWED', 'method', {
        allow: 'POST',
      });
      return;
    }
    if (entry.closing) {
      this.reject(res, route, 503, 'GW_ERR_INGRESS_UNAVAILABLE', 'closing', {
        connection: 'close',
      });
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > spec.maxBodyBytes) {
      // Answered before reading: the sender learns at once, and the connection is not reused.
      this.reject(res, route, 413, 'GW_ERR_INGRESS_BODY_TOO_LARGE', 'too_large', {
        connection: 'close',
      });
      return;
    }
    const task = this.serve(entry, req, res).finally(() => entry.inflight.delete(task));
    entry.inflight.add(task);
  }

  private async serve(entry: RouteEntry, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { spec } = entry;
    const route = spec.instance;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.reject(res, route, 408, 'GW_ERR_INGRESS_REQUEST_TIMEOUT', 'timeout', {
        connection: 'close',
      });
      // The rest of a body that is this slow is not worth reading.
      res.once('finish', () => req.destroy());
    }, spec.requestTimeoutMs);
    let body: Buffer | null;
    try {
      body = await readBody(req, spec.maxBodyBytes);
    } catch {
      // The client went away mid-body: nobody to answer.
      clearTimeout(timer);
      if (!timedOut) this.count(route, 400, 'aborted');
      return;
    }
    clearTimeout(timer);
    if (timedOut) return;
    if (body === null) {
      this.reject(res, route, 413, 'GW_ERR_INGRESS_BODY_TOO_LARGE', 'too_large', {
        connection: 'close',
      });
      return;
    }
    let reply: IngressReply;
    try {
      reply = await spec.handler({ method: 'POST', path: spec.path, headers: req.headers, body });
    } catch (err) {
      (spec.log ?? this.log).error(
        { code: 'GW_ERR_INTERNAL', route },
        `inbound handler failed: ${String(err)}`,
      );
      reply = { status: 500, body: { error: { code: 'GW_ERR_INTERNAL' } }, reason: 'internal' };
    }
    const reason = reply.status >= 400 ? (reply.reason ?? `status_${reply.status}`) : null;
    this.count(route, reply.status, reason);
    if (res.destroyed) return;
    writeReply(res, reply.status, reply.body);
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}

function writeReply(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, { 'content-length': '0', ...headers });
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export interface IngressHubOptions {
  /** Where requests and rejections are counted; the process's shared set by default. */
  metrics?: GatewayMetrics;
  /** Where LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES are read (and removed); `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** This process's pid, compared with LISTEN_PID. */
  pid?: number;
  /** How long a closing route waits for its requests in flight. */
  closeGraceMs?: number;
  log?: Logger;
}

/**
 * The listeners of one process, by listen address. The process has one, `ingress`; tests
 * create their own.
 */
export class IngressHub {
  private readonly listeners = new Map<string, Promise<Listener>>();
  /** Listeners being closed, by key: a new registration on the address waits for them. */
  private readonly closing = new Map<string, Promise<void>>();
  /** Listeners systemd passed that no route has claimed yet, by key. */
  private inherited: Map<string, Listener> | null = null;
  private readonly metrics: GatewayMetrics;
  private readonly env: NodeJS.ProcessEnv;
  private readonly pid: number;
  private readonly closeGraceMs: number;
  private readonly log: Logger;

  constructor(options: IngressHubOptions = {}) {
    this.metrics = options.metrics ?? sharedMetrics;
    this.env = options.env ?? process.env;
    this.pid = options.pid ?? process.pid;
    this.closeGraceMs = options.closeGraceMs ?? DEFAULTS.closeGraceMs;
    this.log = options.log ?? pino({ level: 'silent' });
  }

  /**
   * Registers a route. Resolves once the listener is bound (or adopted from systemd) and the
   * route answers. Rejects with GW_ERR_INGRESS_LISTEN (kind config: exit 78) when the address
   * cannot be bound, or GW_ERR_INGRESS_ROUTE_TAKEN when another instance has this path on it.
   */
  async register(spec: RouteSpec): Promise<IngressRoute> {
    const key = listenKey(spec.listen);
    const listener = await this.listenerFor(key, spec.listen, spec.log ?? this.log);
    if (listener.routes.has(spec.path)) {
      const owner = listener.routes.get(spec.path)!.spec.instance;
      this.releaseIfUnused(key, listener);
      throw new GatewayError(
        'GW_ERR_INGRESS_ROUTE_TAKEN',
        `${spec.instance}: webhook path ${spec.path} on ${formatListen(spec.listen)} is already taken by ${owner}`,
        { details: { path: spec.path, listen: formatListen(spec.listen), owner } },
      );
    }
    let resolveDied!: (error: GatewayError) => void;
    const died = new Promise<GatewayError>((resolve) => {
      resolveDied = resolve;
    });
    const entry: RouteEntry = { spec, inflight: new Set(), closing: false, died: resolveDied };
    listener.routes.set(spec.path, entry);
    listener.applyTimeouts();
    let closed: Promise<void> | null = null;
    return {
      address: listener.address,
      activated: listener.activated,
      server: listener.server,
      died,
      close: () => {
        closed ??= this.unregister(key, listener, entry);
        return closed;
      },
    };
  }

  /**
   * For `check --probe`: resolves when `listen` could be bound right now (it is bound and
   * closed again, or it is a socket systemd passes); rejects with GW_ERR_INGRESS_LISTEN.
   */
  async probe(listen: ListenAddress): Promise<void> {
    const key = listenKey(listen);
    if (this.listeners.has(key) || this.adoptInherited(this.log).has(key)) return;
    const listener = await this.bind(listen, this.log);
    await listener.close();
  }

  /** Closes every listener (tests; the process's own closes with its adapters). */
  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.listeners.values()]);
    this.listeners.clear();
    const inherited = [...(this.inherited?.values() ?? [])];
    this.inherited?.clear();
    await Promise.all([
      ...all.flatMap((r) => (r.status === 'fulfilled' ? [r.value.close()] : [])),
      ...inherited.map((l) => l.close()),
      ...this.closing.values(),
    ]);
  }

  private async listenerFor(key: string, address: ListenAddress, log: Logger): Promise<Listener> {
    await this.closing.get(key);
    let pending = this.listeners.get(key);
    if (pending === undefined) {
      const inherited = this.adoptInherited(log).get(key);
      if (inherited !== undefined) {
        this.inherited!.delete(key);
        pending = Promise.resolve(inherited);
      } else {
        pending = this.bind(address, log);
      }
      this.listeners.set(key, pending);
      // A failed bind is forgotten, so a later registration tries again.
      pending.catch(() => {
        if (this.listeners.get(key) === pending) this.listeners.delete(key);
      });
    }
    return pending;
  }

  private async bind(address: ListenAddress, log: Logger): Promise<Listener> {
    const server = http.createServer({ connectionsCheckingInterval: 1_000 });
    const where = formatListen(address);
    const fail = (why: string, errno: string, cause?: unknown): GatewayError =>
      new GatewayError(
        'GW_ERR_INGRESS_LISTEN',
        `webhook.listen: cannot listen on ${where} (${why})`,
        {
          ...(cause === undefined ? {} : { cause }),
          details: { listen: where, errno },
        },
      );
    if (address.kind === 'unix') {
      let problem;
      try {
        problem = await prepareUnixPath(address.path);
      } catch (err) {
        const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
        throw fail(errno, errno, err);
      }
      if (problem === 'not_a_socket') throw fail('the path exists and is not a socket', 'EEXIST');
      if (problem === 'in_use') throw fail('another process listens there', 'EADDRINUSE');
    }
    let bound: ListenAddress;
    try {
      bound = await listenOn(server, address);
      // Reachable by the reverse proxy's user: every request is verified, so the socket is no
      // more open than the public URL in front of it; the directory bounds who gets there.
      if (address.kind === 'unix') await chmod(address.path, 0o666);
    } catch (err) {
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw fail(errno, errno, err);
    }
    log.info({ listen: formatListen(bound) }, `webhook listener on ${formatListen(bound)}`);
    return new Listener(server, false, bound, this.metrics, log);
  }

  private releaseIfUnused(key: string, listener: Listener): void {
    if (listener.routes.size > 0) return;
    if (this.listeners.get(key) !== undefined) this.listeners.delete(key);
    const done = listener.close().finally(() => {
      if (this.closing.get(key) === done) this.closing.delete(key);
    });
    this.closing.set(key, done);
  }

  private async unregister(key: string, listener: Listener, entry: RouteEntry): Promise<void> {
    entry.closing = true;
    if (entry.inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.closeGraceMs);
      });
      await Promise.race([Promise.allSettled([...entry.inflight]), grace]);
      clearTimeout(timer);
    }
    if (listener.routes.get(entry.spec.path) === entry) listener.routes.delete(entry.spec.path);
    listener.applyTimeouts();
    this.releaseIfUnused(key, listener);
    await this.closing.get(key);
  }

  /** Takes the sockets systemd passed to this process, once (sd_listen_fds(3)). */
  private adoptInherited(log: Logger): Map<string, Listener> {
    if (this.inherited !== null) return this.inherited;
    this.inherited = new Map();
    const env = this.env;
    const count = Number(env.LISTEN_FDS);
    const forUs = env.LISTEN_PID === String(this.pid);
    if (!forUs || !Number.isInteger(count) || count < 1) return this.inherited;
    const names = (env.LISTEN_FDNAMES ?? '').split(':');
    // Not inherited further: a command handler's children must not think they were activated.
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    for (let i = 0; i < count; i += 1) {
      const fd = SD_LISTEN_FDS_START + i;
      const server = http.createServer({ connectionsCheckingInterval: 1_000 });
      server.listen({ fd });
      const info = server.address();
      const address: ListenAddress | null =
        typeof info === 'string'
          ? { kind: 'unix', path: info }
          : info === null
            ? null
            : { kind: 'tcp', host: info.address, port: info.port };
      if (address === null) {
        log.warn({ fd }, 'systemd passed a socket that is not listening: ignored');
        server.close();
        continue;
      }
      const listener = new Listener(server, true, address, this.metrics, log);
      this.inherited.set(listenKey(address), listener);
      log.info(
        { listen: formatListen(address), fd, name: names[i] ?? null },
        `webhook listener on ${formatListen(address)} from systemd socket activation`,
      );
    }
    return this.inherited;
  }
}

/** The process's hub: every webhook transport registers here. */
export const ingress = new IngressHub();

/**
 * A webhook transport's life on a route: registers `spec` on `hub`, runs `setUp` (the
 * platform calls that make the instance `connected`; it resolves false when a stop ended it),
 * then holds the route until `signal` aborts. Resolves after the stop; rejects with the
 * register error (GW_ERR_INGRESS_LISTEN, GW_ERR_INGRESS_ROUTE_TAKEN), `setUp`'s error, or
 * GW_ERR_INGRESS_LISTENER_DIED when the listener dies. The route is closed in every case.
 */
export async function holdRoute(
  hub: IngressHub,
  spec: RouteSpec,
  signal: AbortSignal,
  setUp: () => Promise<boolean>,
): Promise<void> {
  const route = await hub.register(spec);
  spec.log?.info(
    { listen: formatListen(route.address), path: spec.path, activated: route.activated },
    'webhook route registered',
  );
  try {
    if (!(await setUp())) return;
    const died = await Promise.race([route.died, untilAborted(signal)]);
    if (died !== null && !signal.aborted) throw died;
  } finally {
    await route.close();
  }
}

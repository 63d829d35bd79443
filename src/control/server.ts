import { chmod, unlink } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Adapter } from '../adapters/contract.js';
import type { Secret } from '../config/secret.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { deliver } from '../handlers/deliver.js';
import type { GatewayMetrics } from '../metrics.js';
import { readBody } from '../net/body.js';
import { secretDigest, secretMatches } from '../util/secret-compare.js';
import { listenOn, prepareUnixPath } from '../net/listen.js';
import type { StateDocument } from '../state/schema.js';
import { onReady, type Notifier } from '../systemd/notify.js';
import { formatListen, type ControlConfig, type ListenAddress } from './config.js';
import './errors.js';

export interface ControlServerOptions {
  /** `control` from the config; `listen` and `token` must be set. */
  config: ControlConfig;
  adapters: Iterable<Adapter>;
  /** Where `/healthz` reads the truth from: the StateStore. */
  state: { snapshot(): StateDocument };
  metrics: GatewayMetrics;
  log: Logger;
}

export interface ControlServer {
  /**
   * Starts listening. Resolves with the bound address (the real port when `listen` said 0);
   * rejects with `GW_ERR_CONTROL_LISTEN` (address in use, socket path unusable).
   */
  start(): Promise<ListenAddress>;
  /**
   * Returns a notifier that starts this server when the runner reports READY (the gateway is
   * running), and otherwise forwards every call to `notifier`. A start failure goes to
   * `onError`; `close()` waits for a start in progress.
   */
  startOnReady(notifier: Notifier, onError: (error: GatewayError) => void): Notifier;
  /**
   * Stops accepting, cancels sends in flight, ends every connection and removes the unix
   * socket. Resolves once the server is closed; idempotent; never rejects.
   */
  close(): Promise<void>;
  /** The bound address once started, else null. */
  readonly address: ListenAddress | null;
}

const sendRequestSchema = z
  .object({
    /** The instance name (the key under `platforms:`); the adapter of that instance sends. */
    platform: z.string().min(1),
    chat: z
      .object({ type: z.enum(['c2c', 'group', 'channel', 'dm']), id: z.string().min(1) })
      .strict(),
    text: z.string().refine((text) => text.trim() !== '', 'must not be empty'),
  })
  .strict();

/** The body of `POST /send`. */
export type SendRequest = z.infer<typeof sendRequestSchema>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Constant-time: both sides are hashed to the same length before comparing. */
function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  if (!match) return false;
  return secretMatches(match[1]!.trim(), expected);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Maps a failed delivery to the API's answer. */
function deliveryError(err: unknown): HttpError {
  const error = toGatewayError(err, 'GW_ERR_DELIVERY_FAILED');
  const status = error.details.status ?? error.details.http_status;
  if (error.details.chat_not_found === true || status === 404) {
    return new HttpError(404, 'GW_ERR_CONTROL_UNKNOWN_CHAT', error.message, {
      cause_code: error.code,
    });
  }
  // An id the platform cannot have was refused before any request: the caller's mistake.
  if (error.details.invalid_chat_id === true) {
    return new HttpError(400, error.code, error.message);
  }
  switch (error.code) {
    case 'GW_ERR_DELIVERY_TIMEOUT':
      return new HttpError(504, error.code, error.message);
    case 'GW_ERR_HANDLER_CANCELLED':
      return new HttpError(503, error.code, 'the gateway is stopping');
    default:
      return new HttpError(502, error.code, error.message);
  }
}

/**
 * The local control API (README: "Control API"): `GET /healthz` (no token), `GET /metrics`
 * and `POST /send` (bearer token). Errors are `{ "error": { "code", "message" } }`.
 */
export function createControlServer(options: ControlServerOptions): ControlServer {
  const { config, metrics } = options;
  const listen = config.listen;
  const token: Secret | undefined = config.token;
  if (!listen || !token) {
    throw new GatewayError(
      'GW_ERR_CONTROL_DISABLED',
      'control.listen and control.token are required',
    );
  }
  const expectedToken = secretDigest(token.reveal());
  const adapters = new Map([...options.adapters].map((a) => [a.name, a]));
  const log = options.log.child({ component: 'control' });
  const controller = new AbortController();
  const inflight = new Set<Promise<void>>();
  let bound: ListenAddress | null = null;
  let starting: Promise<ListenAddress> | null = null;
  let closing: Promise<void> | null = null;

  const server = http.createServer({
    requestTimeout: config.request_timeout_ms,
    headersTimeout: config.request_timeout_ms,
    connectionsCheckingInterval: Math.min(1_000, config.request_timeout_ms),
  });

  function health(res: ServerResponse): void {
    const doc = options.state.snapshot();
    const platforms = Object.fromEntries(
      Object.entries(doc.platforms).map(([name, p]) => [name, { state: p.state, since: p.since }]),
    );
    const list = Object.values(doc.platforms);
    const ok =
      doc.gateway.state === 'running' &&
      list.length > 0 &&
      list.every((p) => p.state === 'connected');
    sendJson(res, ok ? 200 : 503, {
      status: ok ? 'ok' : 'unavailable',
      gateway: doc.gateway.state,
      platforms,
    });
  }

  async function send(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, config.max_body_bytes);
    if (body === null) {
      throw new HttpError(
        413,
        'GW_ERR_CONTROL_BODY_TOO_LARGE',
        `request body larger than ${config.max_body_bytes} bytes`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'GW_ERR_CONTROL_BAD_REQUEST', 'the body is not valid JSON');
    }
    const parsed = sendRequestSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where =
        issue.code === 'unrecognized_keys'
          ? [...issue.path, ...issue.keys].join('.')
          : issue.path.join('.') || '(body)';
      throw new HttpError(400, 'GW_ERR_CONTROL_BAD_REQUEST', `${where}: ${issue.message}`);
    }
    const request = parsed.data;
    const adapter = adapters.get(request.platform);
    if (!adapter) {
      throw new HttpError(
        404,
        'GW_ERR_CONTROL_UNKNOWN_PLATFORM',
        `no platform instance named ${JSON.stringify(request.platform)} runs in this gateway (instances: ${[...adapters.keys()].join(', ')})`,
      );
    }
    try {
      const result = await deliver(
        adapter,
        { chat: request.chat, text: request.text },
        { timeoutMs: config.send_timeout_ms, signal: controller.signal, metrics },
      );
      log.info(
        { platform: adapter.name, chat_type: request.chat.type, chat_id: request.chat.id },
        'proactive message sent',
      );
      sendJson(res, 200, { ok: true, platform: adapter.name, ids: result.ids });
    } catch (err) {
      const error = deliveryError(err);
      log.warn(
        { code: error.code, platform: adapter.name, status: error.status },
        `proactive message not sent: ${error.message}`,
      );
      throw error;
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const method = req.method ?? 'GET';
    const only = (allowed: string): void => {
      if (method !== allowed) {
        throw new HttpError(
          405,
          'GW_ERR_CONTROL_METHOD_NOT_ALLOWED',
          `${path} takes ${allowed}, not ${method}`,
          { allow: allowed },
        );
      }
    };
    if (path === '/healthz') {
      only('GET');
      health(res);
      return;
    }
    // Everything but health needs the token, even to learn which paths exist.
    if (!tokenMatches(req.headers.authorization, expectedToken)) {
      throw new HttpError(401, 'GW_ERR_CONTROL_UNAUTHORIZED', 'a valid bearer token is required');
    }
    switch (path) {
      case '/metrics': {
        only('GET');
        const text = await metrics.registry.metrics();
        res.writeHead(200, {
          'content-type': metrics.registry.contentType,
          'content-length': String(Buffer.byteLength(text)),
          'cache-control': 'no-store',
        });
        res.end(text);
        return;
      }
      case '/send':
        only('POST');
        await send(req, res);
        return;
      default:
        throw new HttpError(404, 'GW_ERR_CONTROL_NOT_FOUND', `no endpoint ${path}`);
    }
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const task: Promise<void> = route(req, res)
      .catch((err: unknown) => {
        const error =
          err instanceof HttpError
            ? err
            : new HttpError(500, 'GW_ERR_INTERNAL', 'internal error in the control API');
        if (!(err instanceof HttpError)) {
          log.error({ code: 'GW_ERR_INTERNAL' }, `control API bug: ${String(err)}`);
        }
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const headers: Record<string, string> = {};
        if (error.status === 401) headers['www-authenticate'] = 'Bearer';
        if (typeof error.extra.allow === 'string') headers.allow = error.extra.allow;
        const { allow: _allow, ...extra } = error.extra;
        sendJson(
          res,
          error.status,
          { error: { code: error.code, message: error.message, ...extra } },
          headers,
        );
      })
      .then(() => {
        inflight.delete(task);
        log.debug(
          {
            method: req.method,
            path: req.url?.split('?')[0],
            status: res.statusCode,
            ms: Math.round(performance.now() - started),
          },
          'control request',
        );
      });
    inflight.add(task);
  }
  server.on('request', onRequest);

  async function doStart(): Promise<ListenAddress> {
    const address = listen!;
    let at: ListenAddress;
    try {
      if (address.kind === 'unix') {
        const problem = await prepareUnixPath(address.path);
        if (problem !== null) {
          throw new GatewayError(
            'GW_ERR_CONTROL_LISTEN',
            problem === 'not_a_socket'
              ? `control.listen: ${address.path} exists and is not a socket`
              : `control.listen: ${address.path} is in use by another process (another gateway?)`,
            { details: { path: address.path } },
          );
        }
      }
      at = await listenOn(server, address);
      if (address.kind === 'unix') await chmod(address.path, 0o600);
    } catch (err) {
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      if (err instanceof GatewayError) throw err;
      const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw new GatewayError(
        'GW_ERR_CONTROL_LISTEN',
        `control.listen: cannot listen on ${formatListen(address)} (${errno})`,
        { cause: err, details: { listen: formatListen(address), errno } },
      );
    }
    bound = at;
    log.info({ listen: formatListen(at) }, `control API listening on ${formatListen(at)}`);
    return at;
  }

  async function doClose(): Promise<void> {
    if (starting) await starting.catch(() => undefined);
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    controller.abort();
    await Promise.allSettled([...inflight]);
    server.closeAllConnections();
    await closed;
    if (bound?.kind === 'unix') await unlink(bound.path).catch(() => undefined);
    log.info('control API closed');
  }

  return {
    get address() {
      return bound;
    },
    start() {
      starting ??= doStart();
      return starting;
    },
    startOnReady(notifier, onError) {
      return onReady(notifier, () => {
        if (closing || starting) return;
        starting = doStart();
        starting.catch((err: unknown) => onError(toGatewayError(err, 'GW_ERR_CONTROL_LISTEN')));
      });
    },
    close() {
      closing ??= doClose();
      return closing;
    },
  };
}

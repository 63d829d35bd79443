import http from 'node:http';
import { GatewayError } from '../errors.js';
import { formatListen, type ListenAddress } from './config.js';
import './errors.js';

export interface ControlRequest {
  listen: ListenAddress;
  method: 'GET' | 'POST';
  path: string;
  /** Sent as `Authorization: Bearer ...` when given. */
  token?: string | undefined;
  /** A JSON value, or raw bytes sent as they are. */
  body?: unknown;
  timeoutMs: number;
}

export interface ControlResponse {
  status: number;
  contentType: string;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * One request to the control API over loopback TCP or its unix socket. Resolves with any
 * status; rejects with `GW_ERR_CONTROL_UNREACHABLE` when nothing answers (not running, wrong
 * address, timeout).
 */
export function controlRequest(request: ControlRequest): Promise<ControlResponse> {
  const where = formatListen(request.listen);
  const payload =
    request.body === undefined
      ? undefined
      : Buffer.isBuffer(request.body)
        ? request.body
        : Buffer.from(JSON.stringify(request.body), 'utf8');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const target =
    request.listen.kind === 'unix'
      ? { socketPath: request.listen.path }
      : { host: request.listen.host, port: request.listen.port };
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...target,
      method: request.method,
      path: request.path,
      headers,
      agent: false,
      timeout: request.timeoutMs,
    });
    req.on('timeout', () => {
      req.destroy(
        new GatewayError(
          'GW_ERR_CONTROL_UNREACHABLE',
          `no answer from the control API at ${where} within ${request.timeoutMs} ms`,
          { details: { listen: where } },
        ),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof GatewayError) {
        reject(err);
        return;
      }
      reject(
        new GatewayError(
          'GW_ERR_CONTROL_UNREACHABLE',
          `cannot reach the control API at ${where} (${err.code ?? err.message}): is the gateway running?`,
          { cause: err, details: { listen: where, errno: err.code ?? null } },
        ),
      );
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          text,
          json,
        });
      });
      res.on('error', (err) => {
        reject(
          new GatewayError('GW_ERR_CONTROL_UNREACHABLE', `answer from ${where} broke off`, {
            cause: err,
            details: { listen: where },
          }),
        );
      });
    });
    req.end(payload);
  });
}

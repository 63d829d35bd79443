/**
 * A webhook receiver as an operator would write one, on a real HTTP server (127.0.0.1, port
 * 0): it checks `X-Hermes-Signature` over the exact body bytes and answers 401 when it does
 * not match, records every request, and answers `{ "replies": [...] }`. Tests queue special
 * answers (`script`) to produce each failure mode over the wire.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { InboundEvent } from '../../../src/adapters/contract.js';

/** One scripted answer; requests beyond the script get the default answer. */
export type WebhookBehaviour =
  /** Answer with this status and JSON body (or raw text). */
  | {
      kind: 'status';
      status: number;
      body?: unknown;
      raw?: string;
      headers?: Record<string, string>;
    }
  /** Never answer (the socket stays open until the client gives up or the server closes). */
  | { kind: 'hang' }
  /** Cut the connection without an answer. */
  | { kind: 'reset' }
  /** Answer 200 with `bytes` bytes of JSON-looking text, with or without content-length. */
  | { kind: 'huge'; bytes: number; declareLength: boolean }
  /** Answer the default after `ms`. */
  | { kind: 'delay'; ms: number };

export interface WebhookRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed, when it was JSON. */
  event: InboundEvent | undefined;
  signatureValid: boolean;
}

export interface FakeWebhookOptions {
  secret: string;
  /** The default answer for an event; `[]` answers 204. */
  reply?: (event: InboundEvent) => string[];
}

export class FakeWebhook {
  readonly requests: WebhookRequest[] = [];
  readonly script: WebhookBehaviour[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private port = 0;

  constructor(private readonly options: FakeWebhookOptions) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.answer(req.headers, Buffer.concat(chunks), res));
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/hermes?key=not-for-logs`;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private verify(headers: IncomingHttpHeaders, body: Buffer): boolean {
    const given = String(headers['x-hermes-signature'] ?? '');
    const expected = `sha256=${createHmac('sha256', this.options.secret).update(body).digest('hex')}`;
    return (
      given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected))
    );
  }

  private answer(headers: IncomingHttpHeaders, body: Buffer, res: ServerResponse): void {
    let event: InboundEvent | undefined;
    try {
      event = JSON.parse(body.toString('utf8')) as InboundEvent;
    } catch {
      event = undefined;
    }
    const signatureValid = this.verify(headers, body);
    this.requests.push({ headers, body, event, signatureValid });
    if (!signatureValid) {
      json(res, 401, { error: 'bad signature' });
      return;
    }
    const behaviour = this.script.shift();
    switch (behaviour?.kind) {
      case undefined:
        this.answerDefault(event, res);
        return;
      case 'status':
        if (behaviour.raw !== undefined) {
          res.writeHead(behaviour.status, {
            'content-type': 'application/json',
            ...behaviour.headers,
          });
          res.end(behaviour.raw);
        } else if (behaviour.body === undefined) {
          res.writeHead(behaviour.status, behaviour.headers);
          res.end();
        } else {
          json(res, behaviour.status, behaviour.body, behaviour.headers);
        }
        return;
      case 'hang':
        return;
      case 'reset':
        res.socket?.destroy();
        return;
      case 'huge': {
        const chunk = Buffer.alloc(16 * 1024, 'x');
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(behaviour.declareLength ? { 'content-length': String(behaviour.bytes) } : {}),
        });
        let left = behaviour.bytes;
        const pump = (): void => {
          while (left > 0) {
            const part = chunk.subarray(0, Math.min(left, chunk.length));
            left -= part.length;
            if (!res.write(part)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
      case 'delay': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.answerDefault(event, res);
        }, behaviour.ms);
        this.timers.add(timer);
        return;
      }
    }
  }

  private answerDefault(event: InboundEvent | undefined, res: ServerResponse): void {
    const texts = event ? (this.options.reply?.(event) ?? [`hook: ${event.text}`]) : [];
    if (texts.length === 0) {
      res.writeHead(204);
      res.end();
      return;
    }
    json(res, 200, { replies: texts.map((text) => ({ text })) });
  }
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export async function startFakeWebhook(options: FakeWebhookOptions): Promise<FakeWebhook> {
  return new FakeWebhook(options).start();
}

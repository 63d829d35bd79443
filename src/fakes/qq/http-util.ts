/** Small HTTP helpers of the fake's REST half. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { traceId } from './protocol.js';

/** Request bodies above this are answered 413 and not read further. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the whole body as UTF-8; `null` when it exceeds `MAX_BODY_BYTES`. */
export async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses JSON, `undefined` when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Writes a JSON (or, for a string body, verbatim) answer with the platform's trace header. */
export function reply(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-tps-trace-id': traceId(),
    ...headers,
  });
  res.end(text);
}

/** Responses deliberately left unanswered (timeout faults), destroyed on close. */
export class HungResponses {
  private readonly responses = new Set<ServerResponse>();

  /** Never answers `res`; it ends when the client gives up or the fake closes. */
  hang(res: ServerResponse): void {
    this.responses.add(res);
    res.on('close', () => this.responses.delete(res));
  }

  destroyAll(): void {
    for (const res of this.responses) res.destroy();
    this.responses.clear();
  }
}

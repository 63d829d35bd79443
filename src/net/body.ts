/** Reading an HTTP request body within a size bound (the control API, the inbound webhook server). */
import type { IncomingMessage } from 'node:http';

/**
 * Reads a request body up to `max` bytes. Beyond that the rest is read and discarded (so the
 * client gets its 413 instead of a reset) and `null` is returned; the server's request
 * timeout bounds how long a client can keep sending. Rejects when the request ends before its
 * body is complete (the client went away, or the server destroyed it).
 */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    let tooLarge = Number.isFinite(declared) && declared > max;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > max) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
    // Destroyed without an error (the server cut it: a request timeout) there is no 'error'
    // and no 'end': without this the read, and whoever waits for it, would wait forever.
    req.on('close', () => {
      if (!req.complete) reject(new Error('request closed before its body was complete'));
    });
  });
}

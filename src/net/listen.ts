/**
 * Listen addresses shared by the servers of the gateway (the control API, the inbound webhook
 * server): parsing `HOST:PORT` or a unix socket path, writing one back, and binding an HTTP
 * server to one (a stale unix socket file left by a dead process is replaced, a live one is
 * not).
 */
import { lstat, mkdir, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';

/** Where a server listens: TCP or a unix socket. */
export type ListenAddress =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const octets = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return octets !== null && octets.slice(1).every((o) => Number(o) <= 255);
}

/**
 * Parses `HOST:PORT`, `[V6]:PORT`, an absolute unix socket path or `unix:/path`. Returns a
 * message (ending with `help`) when the value is not an address, or when `loopbackOnly` and
 * the host is not a loopback one.
 */
export function parseListenAddress(
  value: string,
  options: { loopbackOnly: boolean; help: string; why?: string },
): ListenAddress | string {
  const { help } = options;
  const unix = value.startsWith('unix:') ? value.slice('unix:'.length) : value;
  if (unix.startsWith('/')) return { kind: 'unix', path: unix };
  if (value.startsWith('unix:')) return `a unix socket path must be absolute; ${help}`;
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!match) return help;
  const host = match[1] ?? match[2]!;
  const port = Number(match[3]);
  if (port > 65_535) return `port ${port} is out of range; ${help}`;
  if (options.loopbackOnly && !isLoopback(host)) {
    return `${host} is not a loopback address${options.why ?? ''}; ${help}`;
  }
  return { kind: 'tcp', host, port };
}

/** How a listen address is written back in messages. */
export function formatListen(address: ListenAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Why a unix socket path cannot be listened on (see {@link prepareUnixPath}). */
export type UnixPathProblem = 'not_a_socket' | 'in_use';

/**
 * Makes `path` ready for a listen: creates its directory (0700) and removes a socket file a
 * dead process left. Resolves with null when ready; with the problem when the path is a
 * non-socket file or a socket that answers (a live process owns it).
 */
export async function prepareUnixPath(path: string): Promise<UnixPathProblem | null> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let stat;
  try {
    stat = await lstat(path);
  } catch {
    return null;
  }
  if (!stat.isSocket()) return 'not_a_socket';
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) return 'in_use';
  await unlink(path);
  return null;
}

/**
 * Binds `server` to `address` (port 0 picks one). Resolves with the bound address (the real
 * port); rejects with the listen error (`EADDRINUSE`, `EACCES`, ...) as Node gives it.
 */
export async function listenOn(server: Server, address: ListenAddress): Promise<ListenAddress> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const opts =
      address.kind === 'unix' ? { path: address.path } : { host: address.host, port: address.port };
    server.listen(opts, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (address.kind === 'unix') return address;
  const info = server.address();
  const port = typeof info === 'object' && info !== null ? info.port : address.port;
  return { kind: 'tcp', host: address.host, port };
}

/** Loopback ports for tests and benches that must name an address before the server binds it. */
import { createServer, type Server } from 'node:net';

/** A loopback port free right now: bound to 0 and released (the caller binds it just after). */
export async function freePort(): Promise<number> {
  const { server, port } = await occupyPort();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A loopback port held by a plain listener until `server.close()`: an address in use. */
export async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * What one reply's HTTP round trip costs the gateway's process, apart from everything else:
 * sequential keep-alive POSTs to a small JSON server in another process, through the
 * adapters' HttpClient and through a bare `http.request`, interleaved rounds; with, for
 * scale, the CPU one bare timer wake-up costs on the same machine. On a VM where a wake-up
 * is expensive this is most of an echo reply's CPU (docs/performance.md).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/http-roundtrip.js [--requests N] [--rounds N]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { HttpClient } from '../src/net/http.js';
import { median } from './lib/util.js';

const ANSWER = '{"id":"m1","timestamp":"2026-12-04T00:00:00+08:00"}';

if (process.argv[2] === '--server') {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': ANSWER.length });
      res.end(ANSWER);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!(typeof address === 'object' && address !== null ? address.port : 0);
  });
  process.on('disconnect', () => server.close(() => process.exit(0)));
} else {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const requests = Number(values.requests);
  const rounds = Number(values.rounds);
  const child = fork(new URL(import.meta.url).pathname, ['--server'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m) => resolve(Number(m))),
  );
  const body = JSON.stringify({ content: 'hello', msg_type: 0, msg_id: 'm1', msg_seq: 1 });
  const headers = { 'content-type': 'application/json', authorization: 'QQBot bench' };
  const client = new HttpClient();
  const agent = new http.Agent({ keepAlive: true });
  const url = `http://127.0.0.1:${port}/v2/users/U1/messages`;
  const viaClient = async (): Promise<void> => {
    await client.request(url, { method: 'POST', headers, body }, 5_000, undefined);
  };
  const viaBare = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            JSON.parse(Buffer.concat(chunks).toString('utf8'));
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const timerWake = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));
  const cases = [
    { name: 'HttpClient (src/net/http.ts)', run: viaClient },
    { name: 'bare http.request, keep-alive', run: viaBare },
    { name: 'one 1 ms timer wake-up (no I/O)', run: timerWake },
  ];
  const cpu = cases.map(() => [] as number[]);
  const wall = cases.map(() => [] as number[]);
  for (const c of cases) for (let i = 0; i < 200; i++) await c.run(); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [k, c] of cases.entries()) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < requests; i++) await c.run();
      const used = process.cpuUsage(cpu0);
      cpu[k]!.push((used.user + used.system) / requests);
      wall[k]!.push(((performance.now() - t0) * 1000) / requests);
    }
  }
  console.log(
    `${requests} sequential round trips per case, median of ${rounds} interleaved rounds`,
  );
  for (const [k, c] of cases.entries()) {
    console.log(
      `${c.name.padEnd(34)} CPU ${median(cpu[k]!).toFixed(0)} µs each, wall ${median(wall[k]!).toFixed(0)} µs`,
    );
  }
  client.close();
  agent.destroy();
  child.disconnect();
}

/**
 * Child process of fsync.test.ts, run under strace: the real StateStore commits `count`
 * documents to `path`, then the process exits. Argv: <path> <count>.
 */
import pino from 'pino';
import { StateStore } from '../../src/state/store.js';

const [path, countText] = process.argv.slice(2);
if (path === undefined || countText === undefined)
  throw new Error('usage: fsync-child <path> <count>');
const store = new StateStore({ path, heartbeatIntervalMs: 60_000, log: pino({ level: 'silent' }) });
for (let i = 0; i < Number(countText); i++) {
  store.setGateway({ state: i === 0 ? 'starting' : 'running' });
  await store.commit();
}
process.stdout.write('committed\n');

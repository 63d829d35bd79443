/**
 * One start through the bundle loader, in a process of its own (test/cli/bundle-loader.test.ts):
 * V8 keeps what it compiled for the life of an isolate and would answer a second compile of
 * the same source from memory, without ever looking at the cache file. Arguments: the bundle,
 * then JSON `{ argv, env, save }`. Prints JSON: the handle's status and file, what `save`
 * did, and what the bundle recorded when it ran.
 */
import { runBundle } from '../../src/cli/bundle-loader.js';

const [bundle, json] = process.argv.slice(2);
const options = JSON.parse(json!) as { argv: string[]; env: NodeJS.ProcessEnv; save: boolean };
const ran: unknown[] = [];
(globalThis as Record<symbol, unknown>)[Symbol.for('hermes-gateway.test.bundle-ran')] = ran;
const handle = runBundle(bundle!, { argv: options.argv, env: options.env });
const saved = options.save ? handle.save() : null;
process.stdout.write(JSON.stringify({ status: handle.status, file: handle.file, saved, ran }));

/**
 * Peers are installed in bench/node_modules (bench/package.json), never in the gateway's own
 * dependencies, and the main build must not need their types: they are loaded at run time
 * through a require() rooted at bench/, and typed here only as far as the bench uses them.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BENCH_DIR } from './util.js';

const requireFromBench = createRequire(join(BENCH_DIR, 'package.json'));

/** Loads a peer package (its CommonJS build) from bench/node_modules. */
export function loadPeer(name: string): unknown {
  if (!existsSync(join(BENCH_DIR, 'node_modules'))) {
    throw new Error('bench/node_modules is missing: run `npm ci --prefix bench`');
  }
  return requireFromBench(name);
}

/** The installed version of a peer, or null. */
export function peerVersion(name: string): string | null {
  try {
    const pkg = requireFromBench(`${name}/package.json`) as { version?: string };
    return pkg.version ?? null;
  } catch {
    return null;
  }
}

export const PEERS = ['qq-guild-bot', '@satorijs/adapter-qq', '@satorijs/core', 'grammy'] as const;

/**
 * Preloaded into a gateway (`NODE_OPTIONS=--import <this file>`) by the tests that assert what
 * `run` loads: appends the location of every module the process loads, ES modules (through a
 * loader hook) and CommonJS ones (`require`, `createRequire`, native addons), one per line, to
 * the file $HGW_MODULE_LOG names. What was loaded, not how long it took. The bundled CLI
 * holds the gateway's own modules in one file: each of them reports itself to a hook when it
 * is evaluated (scripts/bundle-cli), which logs it as the compiled module of dist/src it was
 * made from.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { fileURLToPath } from 'node:url';

const logFile = process.env.HGW_MODULE_LOG;
if (!logFile) throw new Error('module-log: HGW_MODULE_LOG is not set');

// Loader hooks run on a thread of their own: the hook writes to the log file itself.
const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(logFile)}, url + '\\n');
  return next(url, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

interface ModuleInternals {
  _load(request: string, parent: unknown, isMain: boolean): unknown;
  _resolveFilename(request: string, parent: unknown, isMain: boolean): string;
}
const Module = createRequire(import.meta.url)('node:module') as ModuleInternals;
const load = Module._load.bind(Module);
Module._load = (request, parent, isMain) => {
  const exports = load(request, parent, isMain);
  try {
    appendFileSync(logFile, `${Module._resolveFilename(request, parent, isMain)}\n`);
  } catch {
    // A builtin or a name that resolved some other way: not what these tests look for.
  }
  return exports;
};

/** Shared with scripts/bundle-cli, whose modules call it with their path from the package root. */
const EVALUATED_HOOK = Symbol.for('hermes-gateway.module-evaluated');
/** The package root: this file is dist/test/support/module-log.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
(globalThis as Record<symbol, unknown>)[EVALUATED_HOOK] = (path: string): void => {
  appendFileSync(logFile, `${ROOT}${path}\n`);
};

/**
 * What the package's CLI entry (dist/src/cli/main.js, made by scripts/bundle-cli) runs: it
 * compiles the bundled CLI (dist/src/cli/bundle/cli.cjs) with the V8 code cache an earlier
 * start of the same daemon left, and runs it. Node 22 does this for modules with
 * `module.enableCompileCache`; Node 20 has no such switch, but `vm.Script` takes and makes
 * the same V8 code cache. Compiling the CLI was most of what a start did beyond bare node's:
 * spawn → READY=1 about 500 → 330 ms on the 2-core VM (docs/performance.md).
 *
 * A cache never meets a bundle it was not made from: its file is named after a hash of the
 * bundle's bytes and the V8 version, and V8 itself checks its own version, its flags and the
 * source's length before it uses one, rejecting what does not match. V8 does not check the
 * cache's own bytes (a damaged payload is taken as it is), so the file starts with a digest
 * of the rest, checked before V8 sees it. Whatever is rejected, the bundle is compiled from
 * source as if there were no cache: nothing about the cache can stop the CLI from starting.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';
import {
  COMPILE_CACHE_HANDLE,
  type CompileCacheHandle,
  type CompileCacheSaved,
  type CompileCacheStatus,
} from './compile-cache.js';

/** The commands whose start is cached: the daemons, which systemd restarts. */
const CACHED_COMMANDS: ReadonlySet<string> = new Set(['run', 'worker']);

/** A cache file is this digest of the V8 cache, then the V8 cache. */
const DIGEST = 'sha1';
const DIGEST_BYTES = 20;

/** The function Node's CommonJS loader wraps a module in, with the same parameters. */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAPPER_TAIL = '\n})';

/**
 * The cache folder: systemd's CacheDirectory= ($CACHE_DIRECTORY), else the XDG cache home
 * (~/.cache), in a folder of its own.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const cacheDirectory = env.CACHE_DIRECTORY?.split(':')[0];
  if (cacheDirectory) return cacheDirectory;
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'hermes-gateway');
}

/**
 * The command a start with these arguments runs, when it is one whose start is cached. The
 * first argument that is not an option: a value of an option given before the command only
 * means a start without a cache.
 */
export function cachedCommand(argv: readonly string[]): string | null {
  const command = argv.slice(2).find((arg) => !arg.startsWith('-'));
  return command !== undefined && CACHED_COMMANDS.has(command) ? command : null;
}

export interface RunBundleOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Compiles and runs the CommonJS bundle `bundleFile` (an ASCII-only file: scripts/bundle-cli
 * makes it so), with a code cache for the commands of CACHED_COMMANDS unless
 * NODE_DISABLE_COMPILE_CACHE is set (Node 22's name for the same switch). Leaves the handle
 * on globalThis for the bundle (src/cli/compile-cache.ts) and returns it.
 */
export function runBundle(bundleFile: string, options: RunBundleOptions = {}): CompileCacheHandle {
  const env = options.env ?? process.env;
  const bytes = readFileSync(bundleFile);
  // ASCII, so latin1 decodes it exactly, at a fraction of UTF-8's cost for 1.6 MB.
  const source = bytes.toString('latin1');
  const command = env.NODE_DISABLE_COMPILE_CACHE
    ? null
    : cachedCommand(options.argv ?? process.argv);
  const file =
    command === null
      ? null
      : join(
          compileCacheDir(env),
          `${command}-${digest(bytes).toString('hex').slice(0, 16)}` +
            `-v8-${process.versions.v8}-${process.arch}.cache`,
        );
  let cachedData: Buffer | undefined;
  let damaged = false;
  if (file !== null) {
    let raw: Buffer | undefined;
    try {
      raw = readFileSync(file);
    } catch {
      // No cache yet (or none readable): compiled from source, and written after READY.
    }
    if (raw !== undefined) {
      const payload = raw.subarray(DIGEST_BYTES);
      if (raw.length > DIGEST_BYTES && digest(payload).equals(raw.subarray(0, DIGEST_BYTES))) {
        cachedData = payload;
      } else damaged = true;
    }
  }
  const script = new Script(WRAPPER_HEAD + source + WRAPPER_TAIL, {
    filename: bundleFile,
    ...(cachedData !== undefined && { cachedData }),
  });
  const status: CompileCacheStatus =
    file === null
      ? 'off'
      : damaged || script.cachedDataRejected === true
        ? 'rejected'
        : cachedData === undefined
          ? 'miss'
          : 'hit';
  let saved = false;
  const handle: CompileCacheHandle = {
    status,
    file,
    save: (): CompileCacheSaved => {
      if (saved || file === null || status === 'hit') return { outcome: 'unchanged' };
      saved = true;
      return writeCache(script, file, command!);
    },
  };
  (globalThis as Record<symbol, unknown>)[COMPILE_CACHE_HANDLE] = handle;
  const moduleFunction = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} };
  moduleFunction.call(
    module.exports,
    module.exports,
    createRequire(bundleFile),
    module,
    bundleFile,
    dirname(bundleFile),
  );
  return handle;
}

/**
 * Writes the code cache of everything compiled so far to `file`, whole or not at all (a
 * temporary file renamed over it), private to the user, and clears this command's leftovers.
 * Never throws.
 */
function writeCache(script: Script, file: string, command: string): CompileCacheSaved {
  const started = performance.now();
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const data = script.createCachedData();
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(temp, Buffer.concat([digest(data), data]), { mode: 0o600 });
      renameSync(temp, file);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    // This command's caches of other bundles or Node versions are dead weight, and so is the
    // temporary file of a process killed while it wrote (a concurrent writer whose file goes
    // loses only its own write: this one is whole).
    for (const name of readdirSync(dir)) {
      if (name === basename(file) || !name.startsWith(`${command}-`)) continue;
      if (name.endsWith('.cache') || name.endsWith('.tmp'))
        rmSync(join(dir, name), { force: true });
    }
    return {
      outcome: 'written',
      bytes: DIGEST_BYTES + data.length,
      ms: performance.now() - started,
    };
  } catch (err) {
    return { outcome: 'failed', error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Names the bundle and guards the cache against damage, not against an attacker (who could
 * write the user's cache folder could write the user's config): sha1 is enough, and fast.
 */
function digest(data: Uint8Array): Buffer {
  return createHash(DIGEST).update(data).digest();
}

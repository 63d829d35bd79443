/**
 * The bundled CLI's V8 code cache, seen from inside the bundle (docs/performance.md, "compile
 * cache"). The bundle loader (src/cli/bundle-loader.ts, the CLI's main.js) compiles the bundle
 * with the cache a previous start left and puts a handle under a registered symbol; the bundle
 * itself decides when the cache is worth writing: once the daemon is READY, when everything
 * a start runs has been compiled. The two halves live in different files of the package, so
 * they meet through the symbol, not through an import. Without the loader (the compiled tree
 * the tests import) there is no handle. This module imports nothing: the loader is bundled
 * with it, and should carry nothing else of the gateway (src/cli/save-compile-cache.ts is the
 * bundle's side).
 */
/** Where the loader leaves its handle on globalThis. */
export const COMPILE_CACHE_HANDLE = Symbol.for('hermes-gateway.compile-cache');

/**
 * How this start compiled the bundle: `hit` (from the cache), `miss` (no cache yet),
 * `rejected` (V8 refused the file: another Node, other V8 flags, a damaged file), `off`
 * (NODE_DISABLE_COMPILE_CACHE, or a command that keeps no cache).
 */
export type CompileCacheStatus = 'hit' | 'miss' | 'rejected' | 'off';

/** What `save` did: nothing to do, the file written, or the write failed (`error` says why). */
export type CompileCacheSaved =
  | { outcome: 'unchanged' }
  | { outcome: 'written'; bytes: number; ms: number }
  | { outcome: 'failed'; error: string };

export interface CompileCacheHandle {
  readonly status: CompileCacheStatus;
  /** The cache file this start read or will write; null when the cache is off. */
  readonly file: string | null;
  /** Writes the cache after a miss or a rejection, once; never throws. */
  save(): CompileCacheSaved;
}

/** The loader's handle, when the process was started through the bundle loader. */
export function compileCacheHandle(): CompileCacheHandle | undefined {
  return (globalThis as Record<symbol, unknown>)[COMPILE_CACHE_HANDLE] as
    CompileCacheHandle | undefined;
}

/**
 * Loads a CommonJS library with `require`: the one way the gateway's modules load ws,
 * commander and prom-client's classes.
 *
 * Why not `import`: from an ES module Node runs its export scanner over every file of a
 * CommonJS package, which cost the compiled tree about half a second per process for ws alone
 * on the 2-core VM (the tests spawn that tree hundreds of times). Why this one name:
 * scripts/bundle-cli turns each `requireLibrary(...)` call into a `require(...)` that esbuild
 * follows, so the CLI bundle holds these libraries and reads no module of theirs from
 * node_modules at start (docs/performance.md).
 */
import { createRequire } from 'node:module';

export const requireLibrary = createRequire(import.meta.url);

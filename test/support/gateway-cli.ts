/**
 * The test CLI end-to-end tests spawn (GATEWAY_CLI): the bundle of gateway-cli-main.ts, the
 * real CLI with the test platforms, started by the product's own loader exactly as
 * dist/src/cli/main.js starts the product's bundle. So the tests run what ships: one bundle,
 * compiled with a V8 code cache (src/cli/bundle-loader.ts). The cache is one folder beside
 * the bundle for every test, not each test's sandboxed HOME, where every start would compile
 * the bundle anew: 0.55 s of CPU a start against 0.42 s with the cache (a run that ends at
 * once, median of 9 each), hundreds of starts a test run. Tests of the cache itself spawn
 * the product's CLI (PRODUCT_CLI) in a sandbox of their own.
 */
import { fileURLToPath } from 'node:url';
import { runBundle } from '../../src/cli/bundle-loader.js';

const bundle = new URL('./bundle/', import.meta.url);
runBundle(fileURLToPath(new URL('gateway-cli.cjs', bundle)), {
  env: { ...process.env, CACHE_DIRECTORY: fileURLToPath(new URL('compile-cache', bundle)) },
});

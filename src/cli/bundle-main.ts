#!/usr/bin/env node
/**
 * The package's CLI entry once bundled: scripts/bundle-cli makes it dist/src/cli/main.js,
 * which runs the bundled CLI beside it (bundle/cli.cjs) through the loader, with the compile
 * cache (src/cli/bundle-loader.ts). `main.ts` is the entry the bundle is made from.
 */
import { fileURLToPath } from 'node:url';
import { runBundle } from './bundle-loader.js';

runBundle(fileURLToPath(new URL('./bundle/cli.cjs', import.meta.url)));

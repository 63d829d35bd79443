/**
 * The real CLI with extra test platforms (`scripted`, `scripted2`, `secretive`) registered.
 * End-to-end tests spawn this file: the process, its signals, exit codes, state file and logs
 * are the product's own (the same `runAndExit` as dist/src/cli/main.js); only the adapters
 * are scripted. Tests of the entry point itself spawn main.js (PRODUCT_CLI).
 */
import { runAndExit } from '../../src/cli/entry.js';
import { testRegistry } from './test-registry.js';

runAndExit(process.argv, { registry: testRegistry() });

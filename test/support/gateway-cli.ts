/**
 * The real CLI with extra test platforms (`scripted`, `scripted2`, `secretive`) registered.
 * End-to-end tests spawn this file: the process, its signals, exit codes, state file and logs
 * are the product's own; only the adapters are scripted.
 */
import { runCli } from '../../src/cli/program.js';
import { testRegistry } from './test-registry.js';

runCli(process.argv, { registry: testRegistry() }).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`internal error: ${String(err)}\n`);
    process.exit(70);
  },
);

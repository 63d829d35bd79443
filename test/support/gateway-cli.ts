/**
 * The real CLI with two extra test platforms (`scripted`, `scripted2`) registered. End-to-end
 * tests spawn this file: the process, its signals, exit codes, state file and logs are the
 * product's own; only the adapters are scripted.
 */
import { defaultRegistry } from '../../src/adapters/registry.js';
import { runCli } from '../../src/cli/program.js';
import { scriptedPlatform } from './scripted-platform.js';

const registry = new Map(defaultRegistry());
for (const name of ['scripted', 'scripted2']) registry.set(name, scriptedPlatform(name));

runCli(process.argv, { registry }).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`internal error: ${String(err)}\n`);
    process.exit(70);
  },
);

/**
 * The real CLI with extra test platforms (`scripted`, `scripted2`, `secretive`) registered:
 * what scripts/bundle-cli bundles into the test CLI (dist/test/support/bundle/gateway-cli.cjs),
 * exactly as it bundles the product's src/cli/main.ts. The process, its signals, exit codes,
 * state file and logs are the product's own (the same `runAndExit`); only the adapters are
 * scripted. No top-level await: a CommonJS bundle cannot hold one.
 */
import { defaultRegistry } from '../../src/adapters/registry.js';
import { runAndExit } from '../../src/cli/entry.js';
import { EXIT } from '../../src/errors.js';
import { withTestPlatforms } from './test-platforms.js';

defaultRegistry().then(
  (shipped) => runAndExit(process.argv, { registry: withTestPlatforms(shipped) }),
  (err: unknown) => {
    process.stderr.write(`test CLI: loading the shipped platforms failed: ${String(err)}\n`);
    process.exit(EXIT.INTERNAL);
  },
);

#!/usr/bin/env node
import { EXIT } from '../errors.js';
import { runCli } from './program.js';

// The one place the process exits: after the command has persisted and logged its outcome.
// process.exit (not exitCode) so that an adapter that ignored its stop cannot keep us alive.
runCli(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `hermes-gateway: internal error: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exit(EXIT.INTERNAL);
  },
);

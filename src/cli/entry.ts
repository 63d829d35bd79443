/**
 * The process's end: runs the CLI and exits with its code. The one place that calls
 * process.exit; `main.ts` is the product's entry and the end-to-end tests' CLI with extra test
 * platforms calls the same function, so their exit handling cannot drift apart.
 */
import { EXIT } from '../errors.js';
import { runCli, type CliDeps } from './program.js';

/**
 * Runs `argv` and ends the process with the command's exit code, after the command has
 * persisted and logged its outcome. process.exit (not exitCode) so that an adapter that
 * ignored its stop, or a socket still open, cannot keep the process alive.
 */
export function runAndExit(argv: string[], deps: CliDeps = {}): void {
  runCli(argv, deps).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `hermes-gateway: internal error: ${err instanceof Error ? err.stack : String(err)}\n`,
      );
      process.exit(EXIT.INTERNAL);
    },
  );
}

/**
 * The user unit `install` writes when no `--unit` is given. Its own module: the CLI's option
 * defaults name it, and importing install.ts for it would load child_process and the unit
 * writer on every start, `run` included.
 */
export const DEFAULT_UNIT = 'hermes-gateway.service';

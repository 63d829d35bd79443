import { dirname, isAbsolute, relative } from 'node:path';
import { z } from 'zod';
import { Secret } from '../config/secret.js';
import { readConfigDocument } from '../config/read.js';
import { resolveConfigValues } from '../config/secrets.js';
import { GatewayError } from '../errors.js';
import { parseListenAddress, type ListenAddress } from '../net/listen.js';
import './errors.js';

/** Production defaults of the control API (README: "Control API"). */
export const DEFAULTS = {
  /** Largest request body `POST /send` accepts (413 beyond). */
  maxBodyBytes: 64 * 1024,
  /** A client must have sent its whole request within this. */
  requestTimeoutMs: 10_000,
  /** `POST /send` waits this long for the adapter (then 504). */
  sendTimeoutMs: 30_000,
} as const;

/** Where the control API listens: loopback TCP or a unix socket. */
export type { ListenAddress } from '../net/listen.js';
export { formatListen } from '../net/listen.js';

const LOOPBACK_HELP =
  'expected 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or an absolute unix socket path under $XDG_RUNTIME_DIR';

/** Parses `control.listen`; returns a message for zod when the address is not acceptable. */
export function parseListen(value: string): ListenAddress | string {
  return parseListenAddress(value, {
    loopbackOnly: true,
    help: LOOPBACK_HELP,
    why: ': the control API must not be reachable from the network',
  });
}

const ms = z.number().int().positive().max(2_147_483_647);

const listenSchema = z.string().transform((value, ctx): ListenAddress => {
  const parsed = parseListen(value.trim());
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
    return z.NEVER;
  }
  return parsed;
});

/** `control:` in the config. Off unless `listen` is set; `token` is then required. */
export const controlSchema = z
  .object({
    listen: listenSchema.optional(),
    token: z
      .instanceof(Secret, {
        message: 'expected the bearer token from "${VAR}", token_file or token_credential',
      })
      .optional(),
    max_body_bytes: z
      .number()
      .int()
      .positive()
      .max(16 * 1024 * 1024)
      .default(DEFAULTS.maxBodyBytes),
    request_timeout_ms: ms.default(DEFAULTS.requestTimeoutMs),
    send_timeout_ms: ms.default(DEFAULTS.sendTimeoutMs),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.listen !== undefined && value.token === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['token'],
        message:
          'required when control.listen is set (token: "${VAR}", token_file or token_credential)',
      });
    }
  });

export type ControlConfig = z.output<typeof controlSchema>;

/**
 * The checks that need the environment, run at start-up (and by `send`): a unix socket must
 * live under `$XDG_RUNTIME_DIR` (a per-user 0700 directory), so only its owner can reach it.
 * Throws `GW_ERR_CONFIG_INVALID` naming `control.listen` and the file.
 */
export function checkControlConfig(
  control: ControlConfig | undefined,
  file: string,
  env: NodeJS.ProcessEnv,
): void {
  const listen = control?.listen;
  if (listen?.kind !== 'unix') return;
  const runtimeDir = env.XDG_RUNTIME_DIR;
  const fail = (why: string): never => {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `${file}: control.listen: ${why}`, {
      details: { file, key: 'control.listen' },
    });
  };
  if (!runtimeDir || !isAbsolute(runtimeDir)) {
    fail('a unix socket needs $XDG_RUNTIME_DIR, which is not set');
    return;
  }
  const rel = relative(runtimeDir, listen.path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    fail(`the unix socket ${listen.path} is not under $XDG_RUNTIME_DIR (${runtimeDir})`);
  }
}

/**
 * Reads only the `control` section of a config file, for `hermes-gateway send`: the
 * platforms' credentials (systemd credentials, env) need not be available in the shell.
 */
export function loadControlConfig(file: string, env: NodeJS.ProcessEnv): ControlConfig {
  const raw = readConfigDocument(file);
  const section = raw.control;
  if (section === undefined || section === null) {
    throw new GatewayError(
      'GW_ERR_CONTROL_DISABLED',
      `${file}: control.listen is not set: the control API is off`,
      { details: { file, key: 'control.listen' } },
    );
  }
  const resolved = resolveConfigValues({ control: section }, env, file, dirname(file)) as {
    control: unknown;
  };
  const parsed = controlSchema.safeParse(resolved.control);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys] : issue.path;
    const key = ['control', ...path].join('.');
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `${file}: ${key}: ${issue.message}`, {
      details: { file, key },
    });
  }
  if (parsed.data.listen === undefined) {
    throw new GatewayError(
      'GW_ERR_CONTROL_DISABLED',
      `${file}: control.listen is not set: the control API is off`,
      { details: { file, key: 'control.listen' } },
    );
  }
  checkControlConfig(parsed.data, file, env);
  return parsed.data;
}

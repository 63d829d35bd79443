/**
 * Config pieces every webhook transport shares (`platforms.<name>.webhook.*`): the listen
 * address, the path, and the request bounds, with the ingress defaults.
 */
import { z } from 'zod';
import { parseListenAddress, type ListenAddress } from '../net/listen.js';
import { DEFAULTS } from './server.js';

const LISTEN_HELP =
  'expected HOST:PORT (127.0.0.1:8080, [::1]:8080, 0.0.0.0:8443) or an absolute unix socket path';

/** `webhook.listen`: any host is accepted, but only when written: the default is loopback. */
export const listenSchema = z.string().transform((value, ctx): ListenAddress => {
  const parsed = parseListenAddress(value.trim(), { loopbackOnly: false, help: LISTEN_HELP });
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
    return z.NEVER;
  }
  return parsed;
});

/** `webhook.path`: an absolute URL path without query or fragment. */
export const pathSchema = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'must be an absolute URL path like /hooks/bot');

/** `webhook.max_body_bytes`. */
export const maxBodyBytesSchema = z
  .number()
  .int()
  .min(1024)
  .max(64 * 1024 * 1024)
  .default(DEFAULTS.maxBodyBytes);

/** `webhook.request_timeout_ms`. */
export const requestTimeoutMsSchema = z
  .number()
  .int()
  .positive()
  .max(2_147_483_647)
  .default(DEFAULTS.requestTimeoutMs);

/** The default `webhook.listen`, parsed. */
export function defaultListen(): ListenAddress {
  return listenSchema.parse(DEFAULTS.listen);
}

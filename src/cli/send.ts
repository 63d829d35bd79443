import type { ChatType } from '../adapters/contract.js';
import { locateConfig } from '../config/load.js';
import { controlRequest } from '../control/client.js';
import { loadControlConfig } from '../control/config.js';
import '../control/errors.js';
import { toGatewayError } from '../errors.js';
import type { CliIo } from './io.js';

/** `send` exit codes: sent; refused by the gateway; usage; gateway not reachable; config. */
export const SEND_EXIT = { SENT: 0, REFUSED: 1, USAGE: 2, UNREACHABLE: 3, CONFIG: 78 } as const;

const CHAT_TYPES: readonly ChatType[] = ['c2c', 'group', 'channel', 'dm'];

export interface SendOptions {
  config?: string | undefined;
  timeoutMs?: string | undefined;
  json?: boolean | undefined;
}

export interface SendTarget {
  platform: string;
  chat: { type: ChatType; id: string };
}

/**
 * `INSTANCE:CHATTYPE:CHAT` (INSTANCE: the key under `platforms:`, e.g. `qqbot`); the chat id
 * is everything after the second colon.
 */
export function parseTarget(target: string): SendTarget | string {
  const match = /^([^:]+):([^:]+):(.+)$/.exec(target);
  if (!match)
    return `target ${JSON.stringify(target)}: expected INSTANCE:CHATTYPE:CHAT, e.g. qqbot:c2c:OPENID`;
  const type = match[2] as ChatType;
  if (!CHAT_TYPES.includes(type)) {
    return `target ${JSON.stringify(target)}: chat type ${JSON.stringify(type)} is not one of ${CHAT_TYPES.join(', ')}`;
  }
  return { platform: match[1]!, chat: { type, id: match[3]! } };
}

/** `hermes-gateway send TARGET TEXT...`: a proactive message through the running gateway. */
export async function sendCommand(
  target: string,
  words: string[],
  options: SendOptions,
  io: CliIo,
): Promise<number> {
  const parsed = parseTarget(target);
  if (typeof parsed === 'string') {
    io.err(`error GW_ERR_CLI_USAGE: ${parsed}`);
    return SEND_EXIT.USAGE;
  }
  const text = words.join(' ');
  if (text.trim() === '') {
    io.err('error GW_ERR_CLI_USAGE: the message text is empty');
    return SEND_EXIT.USAGE;
  }
  let timeoutMs: number | undefined;
  if (options.timeoutMs !== undefined) {
    timeoutMs = Number(options.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      io.err('error GW_ERR_CLI_USAGE: --timeout-ms takes a positive integer');
      return SEND_EXIT.USAGE;
    }
  }
  const file = locateConfig(options.config, io.env);
  let control;
  try {
    control = loadControlConfig(file, io.env);
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    io.err(`error ${error.code}: ${error.message}`);
    return SEND_EXIT.CONFIG;
  }
  try {
    const response = await controlRequest({
      listen: control.listen!,
      method: 'POST',
      path: '/send',
      token: control.token?.reveal(),
      body: { platform: parsed.platform, chat: parsed.chat, text },
      // A little more than the gateway's own deadline, so its 504 arrives before ours.
      timeoutMs: timeoutMs ?? control.send_timeout_ms + 5_000,
    });
    if (options.json) io.out(response.text.trimEnd());
    if (response.status === 200) {
      const ids = (response.json as { ids?: unknown } | undefined)?.ids;
      if (!options.json)
        io.out(`sent to ${target}${Array.isArray(ids) ? ` (ids: ${ids.join(', ')})` : ''}`);
      return SEND_EXIT.SENT;
    }
    const error = (response.json as { error?: { code?: unknown; message?: unknown } } | undefined)
      ?.error;
    const code = typeof error?.code === 'string' ? error.code : 'GW_ERR_INTERNAL';
    const message = typeof error?.message === 'string' ? error.message : response.text.trim();
    io.err(`error ${code}: HTTP ${response.status}: ${message}`);
    return SEND_EXIT.REFUSED;
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONTROL_UNREACHABLE');
    io.err(`error ${error.code}: ${error.message}`);
    return SEND_EXIT.UNREACHABLE;
  }
}

/**
 * The Telegram platform (GitHub issue 18): config schema, adapter factory, credential probe
 * and the credential's non-secret identity.
 */
import { GatewayError } from '../../errors.js';
import { definePlatform, type PlatformDefinition } from '../platform.js';
import { TelegramAdapter } from './adapter.js';
import { botIdOf, telegramSchema, toSettings, type TelegramConfig } from './config.js';
import './errors.js';
import { callError } from './poller.js';
import { TelegramRest } from './rest.js';
import { ingress } from '../../ingress/server.js';

/** `telegram:<bot id>`: the token part before `:` names the bot without revealing the secret. */
export function credentialIdentity(config: TelegramConfig): string {
  return `telegram:${botIdOf(config.token)}`;
}

const definition: PlatformDefinition<TelegramConfig> & {
  credentialIdentity(config: TelegramConfig): string;
} = {
  name: 'telegram',
  schema: telegramSchema,
  create: (config: TelegramConfig, instance = 'telegram') =>
    new TelegramAdapter(toSettings(config), instance),
  credentialIdentity,
  /**
   * Calls getMe. Resolves when the platform accepts the token; rejects with
   * GW_ERR_TELEGRAM_UNAUTHORIZED (kind `config`) when it refuses it, or another
   * GW_ERR_TELEGRAM_* code when the API cannot be reached.
   */
  probe: async (config) => {
    const settings = toSettings(config);
    const rest = new TelegramRest(settings.apiBase, settings.token);
    try {
      const outcome = await rest.call('getMe', {}, settings.timeouts.restMs, undefined);
      const failure = callError('getMe', outcome);
      if (failure !== null) throw failure.error;
      if (outcome.kind !== 'reply' || !outcome.reply.ok) {
        throw new GatewayError('GW_ERR_TELEGRAM_BAD_RESPONSE', 'getMe: unexpected answer');
      }
    } finally {
      rest.close();
    }
    // Webhook mode: the listen address must be free to bind (GW_ERR_INGRESS_LISTEN otherwise).
    if (settings.webhook !== null) await ingress.probe(settings.webhook.listen);
  },
};

export const telegramPlatform = definePlatform<TelegramConfig>(definition);

export { TelegramAdapter } from './adapter.js';
export type { TelegramConfig, TelegramSettings } from './config.js';

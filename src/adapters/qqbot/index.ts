/**
 * The QQ Bot platform (GitHub issue 3): config schema, adapter factory and credential probe.
 */
import { definePlatform } from '../platform.js';
import { QQBotAdapter } from './adapter.js';
import { qqbotSchema, toSettings, type QQBotConfig } from './config.js';
import './errors.js';
import { QQRest } from './rest.js';
import { ingress } from '../../ingress/server.js';

export const qqbotPlatform = definePlatform<QQBotConfig>({
  name: 'qqbot',
  schema: qqbotSchema,
  create: (config, instance) => new QQBotAdapter(toSettings(config), { instance }),
  // The app id is public (it is in every bot's share link); the secret never leaves config.
  credentialIdentity: (config) => `qqbot:${config.app_id}`,
  /**
   * Fetches one access token. Resolves when the platform accepts the credentials; rejects
   * with GW_ERR_QQ_CREDENTIALS_REJECTED (kind `config`) when it refuses them, or
   * GW_ERR_QQ_TOKEN_FAILED when the endpoint cannot be reached. In webhook mode it then binds
   * `webhook.listen` and closes it again: GW_ERR_INGRESS_LISTEN (kind `config`) when it cannot
   * be bound (a running gateway holding it counts as that too).
   */
  probe: async (config) => {
    const settings = toSettings(config);
    const rest = new QQRest({
      appId: settings.appId,
      apiBase: settings.apiBase,
      tokenUrl: settings.tokenUrl,
      restMs: settings.timeouts.restMs,
      tokenMs: settings.timeouts.tokenMs,
    });
    try {
      await rest.fetchToken(settings.clientSecret);
    } finally {
      rest.close();
    }
    if (settings.transport === 'webhook') await ingress.probe(settings.webhook.listen);
  },
});

export { QQBotAdapter } from './adapter.js';
export type { QQBotConfig, QQBotSettings } from './config.js';

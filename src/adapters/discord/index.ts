/**
 * The Discord platform (GitHub issue 17): config schema, adapter factory, credential probe and
 * the credential's non-secret identity.
 */
import { definePlatform } from '../platform.js';
import { DiscordAdapter } from './adapter.js';
import { credentialIdentity, discordSchema, toSettings, type DiscordConfig } from './config.js';
import './errors.js';
import { DiscordRest } from './rest.js';

export const discordPlatform = definePlatform<DiscordConfig>({
  name: 'discord',
  schema: discordSchema,
  create: (config, instance) => new DiscordAdapter(toSettings(config), { instance }),
  // The token's first part is the bot's public user id: one gateway session per bot token.
  credentialIdentity: (config) => credentialIdentity(config.token),
  /**
   * Calls `GET /gateway/bot`. Resolves when Discord accepts the token; rejects with
   * GW_ERR_DISCORD_UNAUTHORIZED (kind `config`) when it refuses it, or
   * GW_ERR_DISCORD_GATEWAY_FAILED when the API cannot be reached.
   */
  probe: async (config) => {
    const settings = toSettings(config);
    const rest = new DiscordRest({
      apiBase: settings.apiBase,
      token: settings.token,
      restMs: settings.timeouts.restMs,
      globalPerSecond: settings.send.globalPerSecond,
      invalidRequestLimit: settings.send.invalidRequestLimit,
    });
    try {
      await rest.gatewayBot();
    } finally {
      rest.close();
    }
  },
});

export { DiscordAdapter } from './adapter.js';
export type { DiscordConfig, DiscordSettings } from './config.js';

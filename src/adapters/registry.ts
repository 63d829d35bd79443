// The inbound webhook server the webhook transports share registers its codes with the platforms.
import '../ingress/errors.js';
import type { PlatformDefinition, PlatformRegistry } from './platform.js';
import { discordPlatform } from './discord/index.js';
import { qqbotPlatform } from './qqbot/index.js';
import { telegramPlatform } from './telegram/index.js';

/** Every platform the gateway ships with, by config name. */
export function defaultRegistry(): PlatformRegistry {
  const platforms: PlatformDefinition[] = [qqbotPlatform, telegramPlatform, discordPlatform];
  return new Map(platforms.map((p) => [p.name, p]));
}

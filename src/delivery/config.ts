import { z } from 'zod';

/** Production defaults of the delivery store (docs/delivery.md, docs/configuration.md). */
export const DEFAULTS = {
  enabled: true,
  /** Telegram keeps unconfirmed updates 24 h: the longest replay window of any platform. */
  rememberMs: 86_400_000,
  maxEntries: 200_000,
  sync: 'normal',
  /**
   * A resume point older than this is not tried: QQ documents no resume window; another
   * gateway's QQ plugin treats a point as stale after 5 minutes.
   */
  resumeMaxAgeMs: 300_000,
} as const;

export interface DeliveryConfig {
  enabled: boolean;
  remember_ms: number;
  max_entries: number;
  sync: 'normal' | 'full';
  resume_max_age_ms: number;
}

const positiveMs = z.number().int().positive().max(2_147_483_647);

export const deliverySchema: z.ZodType<DeliveryConfig, z.ZodTypeDef, unknown> = z
  .object({
    enabled: z.boolean().default(DEFAULTS.enabled),
    remember_ms: positiveMs.default(DEFAULTS.rememberMs),
    max_entries: z.number().int().positive().max(10_000_000).default(DEFAULTS.maxEntries),
    sync: z.enum(['normal', 'full']).default(DEFAULTS.sync),
    resume_max_age_ms: positiveMs.default(DEFAULTS.resumeMaxAgeMs),
  })
  .strict();

import { z } from 'zod';
import type { PlatformRegistry } from '../adapters/platform.js';
import { controlSchema, type ControlConfig } from '../control/config.js';
import { deliverySchema, type DeliveryConfig } from '../delivery/config.js';
import { handlerSchema, type HandlerConfig } from '../handlers/config.js';
import { platformsSchema, type InstanceConfig } from './instances.js';
import { LOG_FORMATS, type LogFormat } from '../log/logger.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** Production defaults of the core's timings, in one place. */
export const DEFAULTS = {
  logLevel: 'info',
  logFormat: 'auto',
  shutdownTimeoutMs: 10_000,
  heartbeatIntervalMs: 30_000,
} as const;

export interface GatewayConfig {
  state_file?: string | undefined;
  log_level: (typeof LOG_LEVELS)[number];
  /** `text` lines for people (journald), `json` for machines; `auto` picks by stdout. */
  log_format: LogFormat;
  shutdown_timeout_ms: number;
  heartbeat_interval_ms: number;
  handler: HandlerConfig;
  /** The local control API; off unless `control.listen` is set. */
  control?: ControlConfig | undefined;
  /** The delivery store: resume points, answered set, outbox (docs/delivery.md). */
  delivery: DeliveryConfig;
  /** Keyed by instance name; each validated by its type's own schema (instances.ts). */
  platforms: Record<string, InstanceConfig | undefined>;
}

const positiveMs = z.number().int().positive().max(2_147_483_647);

/** The whole config schema, strict at every level, with the registered platforms' schemas. */
export function buildConfigSchema(
  registry: PlatformRegistry,
): z.ZodType<GatewayConfig, z.ZodTypeDef, unknown> {
  return z
    .object({
      state_file: z.string().min(1).optional(),
      log_level: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
      log_format: z.enum(LOG_FORMATS).default(DEFAULTS.logFormat),
      shutdown_timeout_ms: positiveMs.default(DEFAULTS.shutdownTimeoutMs),
      heartbeat_interval_ms: positiveMs.default(DEFAULTS.heartbeatIntervalMs),
      handler: handlerSchema.default({ type: 'echo' }),
      control: controlSchema.optional(),
      delivery: deliverySchema.default({}),
      platforms: platformsSchema(registry),
    })
    .strict();
}

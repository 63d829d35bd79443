/**
 * A platform for tests: its whole behaviour comes from its config, so both in-process runner
 * tests and end-to-end tests (through the real CLI) can script an adapter's life.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type {
  Adapter,
  AdapterContext,
  InboundEvent,
  OutboundMessage,
} from '../../src/adapters/contract.js';
import { definePlatform, type PlatformDefinition } from '../../src/adapters/platform.js';
import { GatewayError } from '../../src/errors.js';

export const ENDINGS = [
  'wait', // resolve only after the stop signal (a well-behaved adapter)
  'return', // resolve without a stop request (the original bug)
  'throw', // reject with error_code / retryable
  'reject_background', // a tracked background promise rejects
  'ignore_stop', // never settles, even after the stop signal
  'flap', // transition connected <-> reconnecting in a tight loop until stopped
  'uncaught', // throw from a timer callback (an uncaught exception)
  'unhandled', // leave a rejected promise nobody handles
  'echo_events', // emit `events` inbound events, then wait
] as const;

export const scriptedSchema = z
  .object({
    enabled: z.boolean().default(true),
    steps: z
      .array(z.enum(['connecting', 'connected', 'reconnecting']))
      .default(['connecting', 'connected']),
    then: z.enum(ENDINGS).default('wait'),
    after_ms: z.number().int().nonnegative().default(0),
    error_code: z.string().default('GW_ERR_ADAPTER_FAILED'),
    retryable: z.boolean().default(true),
    events: z.number().int().nonnegative().default(0),
  })
  .strict();

export type ScriptedConfig = z.infer<typeof scriptedSchema>;

/** Messages sent through every scripted adapter, for assertions. */
export const sentMessages: OutboundMessage[] = [];

/** Timers of `ignore_stop` adapters; in-process tests release them so the test process can exit. */
const stuckTimers = new Set<NodeJS.Timeout>();

/** Clears the handles every `ignore_stop` adapter holds (their run() promises stay pending). */
export function releaseStuckAdapters(): void {
  for (const timer of stuckTimers) clearInterval(timer);
  stuckTimers.clear();
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}

export class ScriptedAdapter implements Adapter {
  /** `name` is the instance; `type` the platform type it was configured as. */
  constructor(
    readonly name: string,
    private readonly config: ScriptedConfig,
    readonly type: string = name,
  ) {}

  async run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    for (const step of this.config.steps) await ctx.transition(step);
    ctx.log.info({ then: this.config.then }, 'scripted adapter ready');
    if (this.config.after_ms > 0) {
      await delay(this.config.after_ms, undefined, { signal }).catch(() => undefined);
    }
    const error = (): GatewayError =>
      new GatewayError(this.config.error_code, `scripted failure of ${this.name}`, {
        retryable: this.config.retryable,
      });
    switch (this.config.then) {
      case 'wait':
        return waitForAbort(signal);
      case 'return':
        return;
      case 'throw':
        throw error();
      case 'reject_background':
        ctx.track('scripted task', Promise.reject(error()));
        return waitForAbort(signal);
      case 'ignore_stop':
        return new Promise<void>(() => {
          // Keep the event loop alive the way a stuck socket would.
          stuckTimers.add(setInterval(() => undefined, 1_000));
        });
      case 'flap':
        while (!signal.aborted) {
          await ctx.transition('reconnecting', { reconnectAttempt: 1 });
          await ctx.transition('connected', { reconnectAttempt: 0 });
        }
        return;
      case 'uncaught':
        setTimeout(() => {
          throw new Error('scripted uncaught exception');
        }, 0);
        return waitForAbort(signal);
      case 'unhandled':
        // Deliberately unhandled: the process-level handler must turn it into a fatal.
        // eslint-disable-next-line @typescript-eslint/no-floating-promises
        Promise.reject(new Error('scripted unhandled rejection'));
        return waitForAbort(signal);
      case 'echo_events':
        for (let i = 0; i < this.config.events; i++) {
          const event: InboundEvent = {
            id: `${this.name}:m${i}`,
            platform: this.name,
            type: this.type,
            chat: { type: 'c2c', id: `user${i % 3}` },
            sender: { id: `user${i % 3}` },
            text: `message ${i}`,
            attachments: [],
            timestamp: new Date().toISOString(),
            reply: { msg_id: `m${i}` },
          };
          ctx.touch();
          ctx.emit(event);
        }
        return waitForAbort(signal);
    }
  }

  send(message: OutboundMessage): Promise<{ ids: string[] }> {
    sentMessages.push(message);
    process.stdout.write(`${JSON.stringify({ scripted_sent: message })}\n`);
    return Promise.resolve({ ids: [`sent-${sentMessages.length}`] });
  }
}

export function scriptedPlatform(name: string): PlatformDefinition {
  return definePlatform<ScriptedConfig>({
    name,
    schema: scriptedSchema,
    create: (config, instance) => new ScriptedAdapter(instance, config, name),
  });
}

/**
 * A test platform with a `token` Secret, to prove that secrets are resolved from the
 * environment, a file or a systemd credential, and that they never reach a log line, an
 * error message or the state file. Apart from the token it behaves like the scripted platform.
 */
import { z } from 'zod';
import type { Adapter, AdapterContext, OutboundMessage } from '../../src/adapters/contract.js';
import { definePlatform, type PlatformDefinition } from '../../src/adapters/platform.js';
import { Secret } from '../../src/config/secret.js';
import { GatewayError } from '../../src/errors.js';
import { ScriptedAdapter, scriptedSchema, type ScriptedConfig } from './scripted-platform.js';

export const secretSchema = scriptedSchema.extend({ token: z.instanceof(Secret) }).strict();

export type SecretConfig = z.infer<typeof secretSchema>;

export class SecretAdapter implements Adapter {
  private readonly inner: ScriptedAdapter;

  constructor(
    readonly name: string,
    private readonly config: SecretConfig,
  ) {
    const { token: _token, ...scripted } = config;
    this.inner = new ScriptedAdapter(name, scripted satisfies ScriptedConfig);
  }

  async run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    // Everything a careless adapter might do with its credential: log it as a field, inside
    // its config, in the message, and put it into an error that the runner persists.
    ctx.log.info(
      { token: this.config.token, config: this.config },
      `authenticating with ${String(this.config.token)}`,
    );
    if (this.config.then === 'throw') {
      for (const step of this.config.steps) await ctx.transition(step);
      throw new GatewayError(
        this.config.error_code,
        `token ${String(this.config.token)} rejected`,
        {
          retryable: this.config.retryable,
          details: { token: this.config.token },
        },
      );
    }
    return this.inner.run(ctx, signal);
  }

  send(message: OutboundMessage): Promise<{ ids: string[] }> {
    return this.inner.send(message);
  }
}

export function secretPlatform(name = 'secretive'): PlatformDefinition {
  return definePlatform<SecretConfig>({
    name,
    schema: secretSchema,
    create: (config, instance) => new SecretAdapter(instance, config),
  });
}

import { inspect } from 'node:util';
import { secretScrubber } from '../util/scrub.js';

/**
 * A secret value (client secret, token, API key). It never prints: JSON, util.inspect and
 * string conversion all give "[redacted]", so a secret that reaches a log line, an error
 * message or the state file is blanked by construction. Read it with `reveal()` at the one
 * place it is sent to its destination.
 *
 * Constructing one registers the value with the process scrubber (src/util/scrub.ts), so an
 * endpoint echoing it back in an error text is blanked too: an adapter that wraps each of its
 * credentials (rotating ones included) in a Secret has nothing more to do.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    secretScrubber.register(value);
  }

  /**
   * This value was replaced (a rotated token): keep scrubbing it until `forgetAt` (epoch ms),
   * for late echoes of requests that carried it, then forget it.
   */
  retire(forgetAt: number): void {
    secretScrubber.retire(this.#value, forgetAt);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

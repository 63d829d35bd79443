import { inspect } from 'node:util';

/**
 * A secret value (client secret, token, API key). It never prints: JSON, util.inspect and
 * string conversion all give "[redacted]", so a secret that reaches a log line, an error
 * message or the state file is blanked by construction. Read it with `reveal()` at the one
 * place it is sent to its destination.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
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

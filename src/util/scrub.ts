/**
 * The one scrubber of the process: it knows every live secret (config secrets register
 * themselves through `Secret`; access tokens as they rotate) and blanks them out of text
 * that came from outside — HTTP error bodies, platform messages, exception messages — before
 * it is logged, persisted or printed. Endpoints echo credentials back in forms an exact
 * match misses (a JSON body quoting a JSON body escapes quotes and backslashes; a query string
 * percent-encodes), so each secret is matched in every form it can take.
 */

export const REDACTED = '[redacted]';

/** `\uXXXX` for every character outside printable ASCII, as ensure_ascii JSON encoders write. */
function asciiEscaped(jsonEscaped: string): string {
  return jsonEscaped.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The forms in which `value` can appear in outside text. */
export function secretForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const ascii = asciiEscaped(json);
  const forms = new Set([
    value,
    json,
    // JSON text quoted inside another JSON string (an echoed request body in an error body).
    JSON.stringify(json).slice(1, -1),
    ascii,
    ascii.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`),
    // Encoders that escape "/" (PHP's json_encode).
    json.replaceAll('/', '\\/'),
    encodeURIComponent(value),
    new URLSearchParams({ k: value }).toString().slice(2),
  ]);
  forms.delete('');
  return [...forms];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A set of secrets and one regular expression matching any form of any of them (rebuilt only
 * when the set changes, so a scrub is one linear pass over the text).
 */
export class SecretScrubber {
  /** Secret value → epoch ms after which it is forgotten (Infinity while live). */
  private readonly secrets = new Map<string, number>();
  private pattern: RegExp | null = null;
  private nextExpiry = Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  /** Number of secrets known (live and retiring). */
  get size(): number {
    this.prune();
    return this.secrets.size;
  }

  /** Scrubs `value` from now on, until it is retired. Empty values are ignored. */
  register(value: string): void {
    if (value === '' || this.secrets.get(value) === Infinity) return;
    this.secrets.set(value, Infinity);
    this.pattern = null;
  }

  /**
   * A secret replaced by a newer one (a rotated access token) is still scrubbed until
   * `forgetAt` (epoch ms), for the answers still in flight that may echo it; then forgotten,
   * so the set stays bounded however long the process lives.
   */
  retire(value: string, forgetAt: number): void {
    if (!this.secrets.has(value)) return;
    this.secrets.set(value, forgetAt);
    this.nextExpiry = Math.min(this.nextExpiry, forgetAt);
  }

  /** `text` with every form of every known secret replaced by "[redacted]". */
  scrub(text: string): string {
    this.prune();
    if (this.secrets.size === 0 || text === '') return text;
    this.pattern ??= new RegExp(
      [...this.secrets.keys()]
        .flatMap(secretForms)
        // Longest first, so a form containing a shorter one is replaced whole.
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join('|'),
      'g',
    );
    return text.replace(this.pattern, REDACTED);
  }

  /** Strings scrubbed, arrays and plain objects walked (for error details and log fields). */
  scrubDeep(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (depth > 8 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((item) => this.scrubDeep(item, depth + 1));
    if (Object.getPrototypeOf(value) !== Object.prototype) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = this.scrubDeep(item, depth + 1);
    return out;
  }

  private prune(): void {
    const now = this.now();
    if (now <= this.nextExpiry) return;
    this.nextExpiry = Infinity;
    for (const [value, forgetAt] of this.secrets) {
      if (forgetAt < now) {
        this.secrets.delete(value);
        this.pattern = null;
      } else if (forgetAt !== Infinity) {
        this.nextExpiry = Math.min(this.nextExpiry, forgetAt);
      }
    }
  }
}

/** The process-wide scrubber every `Secret` registers with. */
export const secretScrubber = new SecretScrubber();

/** Scrubs text that came from outside with the process-wide scrubber. */
export function scrub(text: string): string {
  return secretScrubber.scrub(text);
}

/**
 * Entry point of the crash soak (scripts/crash-soak runs the built copy of this file):
 *
 *   node dist/test/crash-soak/main.js [--seed N] [--kills K] [--terms T] [--tail-seconds S]
 *     [--rate R] [--chats C] [--platforms qqbot,telegram,discord] [--keep]
 *
 * Prints progress on stderr, then a table (a column per platform) and one JSON line
 * `{"crash_soak_summary":true,...}` on stdout. Exits 0 only when no invariant was violated, 1 when one was, 2 on bad arguments.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllGateways } from '../chaos/gateway-process.js';
import {
  runCrashSoak,
  SOAK_PLATFORMS,
  type CrashSoakOptions,
  type CrashSoakSummary,
  type SoakPlatform,
} from './soak.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function parseOptions(argv: string[]): CrashSoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      'tail-seconds': { type: 'string' },
      kills: { type: 'string' },
      terms: { type: 'string' },
      rate: { type: 'string' },
      chats: { type: 'string' },
      platforms: { type: 'string' },
      keep: { type: 'boolean' },
    },
  });
  const num = (value: string | undefined, name: string, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  const platforms = (values.platforms ?? SOAK_PLATFORMS.join(',')).split(',');
  for (const p of platforms) {
    if (!SOAK_PLATFORMS.includes(p as SoakPlatform)) {
      throw new Error(`--platforms: ${p} is not one of ${SOAK_PLATFORMS.join(', ')}`);
    }
  }
  const kills = num(values.kills, 'kills', 50);
  const terms = num(values.terms, 'terms', 10);
  return {
    seed: num(values.seed, 'seed', Date.now() % 1_000_000),
    platforms: platforms as SoakPlatform[],
    upTimeoutMs: 30_000,
    tailMs: num(values['tail-seconds'], 'tail-seconds', 3) * 1000,
    kills,
    terms,
    rate: num(values.rate, 'rate', 200),
    chats: num(values.chats, 'chats', 50),
    cliPath: CLI,
    settleMs: 600_000,
    progress: (line) => process.stderr.write(`crash-soak: ${line}\n`),
    keepDir: values.keep === true,
  };
}

function table(s: CrashSoakSummary): string {
  const names = Object.keys(s.platforms) as SoakPlatform[];
  const per = (
    f: (p: NonNullable<CrashSoakSummary['platforms'][SoakPlatform]>) => string,
  ): string[] => names.map((n) => f(s.platforms[n]!));
  const ms = (v: number | null): string => (v === null ? '-' : `${v}`);
  const rows: string[][] = [
    ['', ...names],
    ['sent', ...per((p) => String(p.sent))],
    ['answered', ...per((p) => String(p.answered))],
    ['lost (target 0)', ...per((p) => String(p.lost))],
    [
      'duplicates (target 0 on QQ and Discord; counted on Telegram)',
      ...per((p) => String(p.duplicates)),
    ],
    ['  announced possible duplicates', ...per((p) => String(p.announced_duplicates))],
    [
      '  re-sends the platform knew (QQ 40054005, Discord nonce)',
      ...per((p) => String(p.deduplicated_resends)),
    ],
    ['per-chat order violations', ...per((p) => String(p.order_violations))],
    ['resume accepted / fell back', ...per((p) => `${p.resumes_accepted} / ${p.fell_back}`)],
    [
      '  already-answered messages a Resume replayed, max (share of all answered)',
      ...per((p) =>
        p.replayed_answered_max === null
          ? '-'
          : `${p.replayed_answered_max} (${p.replayed_answered_share})`,
      ),
    ],
    [
      'restart → first reply, median / p95 / max (ms)',
      ...per(
        (p) =>
          `${ms(p.first_reply_ms.median)} / ${ms(p.first_reply_ms.p95)} / ${ms(p.first_reply_ms.max)}`,
      ),
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [
    `seed ${s.seed}; ${s.duration_ms / 1000} s at ${s.rate} msg/s per platform over ${s.chats} chats each; ` +
      `${s.kills} SIGKILL + ${s.terms} SIGTERM, restart after 0.5 s; state file reads ${s.state_reads} (torn ${s.torn_state_reads}); ` +
      `unexpected exits ${s.unexpected_exits}; dropped by the queue limits ${s.queue_overflow_drops}; stream end → last answer ${s.settle_ms ?? '-'} ms`,
    line(rows[0]!),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ];
  return out.join('\n');
}

let options: CrashSoakOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`crash-soak: ${(err as Error).message}\n`);
  process.exit(2);
}
process.on('exit', killAllGateways);
process.on('SIGINT', () => {
  killAllGateways();
  process.exit(130);
});
const summary = await runCrashSoak(options);
process.stdout.write(`${table(summary)}\n`);
for (const v of summary.violations.slice(0, 20)) process.stdout.write(`violation: ${v}\n`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exitCode = summary.violations.length === 0 ? 0 : 1;

/**
 * Entry point of the crash soak (scripts/crash-soak runs the built copy of this file):
 *
 *   node dist/test/crash-soak/main.js [--seed N] [--kills K] [--terms T] [--tail-seconds S]
 *     [--rate R] [--chats C] [--keep]
 *
 * Prints progress on stderr, then a table and one JSON line `{"crash_soak_summary":true,...}`
 * on stdout. Exits 0 only when no invariant was violated, 1 when one was, 2 on bad arguments.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllGateways } from '../chaos/gateway-process.js';
import { runCrashSoak, type CrashSoakOptions, type CrashSoakSummary } from './soak.js';

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
      keep: { type: 'boolean' },
    },
  });
  const num = (value: string | undefined, name: string, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  const kills = num(values.kills, 'kills', 50);
  const terms = num(values.terms, 'terms', 10);
  return {
    seed: num(values.seed, 'seed', Date.now() % 1_000_000),
    upTimeoutMs: 30_000,
    tailMs: num(values['tail-seconds'], 'tail-seconds', 3) * 1000,
    kills,
    terms,
    rate: num(values.rate, 'rate', 200),
    chats: num(values.chats, 'chats', 50),
    cliPath: CLI,
    settleMs: 30_000,
    progress: (line) => process.stderr.write(`crash-soak: ${line}\n`),
    keepDir: values.keep === true,
  };
}

function table(s: CrashSoakSummary): string {
  const rows: Array<[string, string]> = [
    ['seed', String(s.seed)],
    ['duration', `${s.duration_ms / 1000} s at ${s.rate} msg/s over ${s.chats} chats`],
    ['restarts', `${s.kills} SIGKILL + ${s.terms} SIGTERM`],
    ['sent', String(s.sent)],
    ['answered', String(s.answered)],
    ['lost', String(s.lost)],
    ['duplicates', String(s.duplicates)],
    ['per-chat order violations', String(s.order_violations)],
    ['state file reads (torn)', `${s.state_reads} (${s.torn_state_reads})`],
    ['resume accepted / fell back', `${s.resumes_accepted} / ${s.fell_back_to_identify}`],
    ['re-sends deduplicated (40054005)', String(s.deduplicated_resends)],
    [
      'restart → first reply (median / p95 / max)',
      `${s.first_reply_ms.median ?? '-'} / ${s.first_reply_ms.p95 ?? '-'} / ${s.first_reply_ms.max ?? '-'} ms`,
    ],
    ['unexpected exits', String(s.unexpected_exits)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`).join('\n');
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

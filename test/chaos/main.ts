/**
 * Entry point of the chaos soak (scripts/chaos runs the built copy of this file):
 *
 *   node dist/test/chaos/main.js [--seed N] [--minutes M | --seconds S]
 *     [--heartbeat-ms N] [--rss-limit-mb N] [--keep] [--state-on-disk]
 *
 * Prints progress on stderr, then a human summary and one JSON line
 * `{"chaos_summary":true,...}` on stdout. Exits 0 only when no invariant was violated, 1
 * when one was (the seed and the first violations are printed), 2 on bad arguments and 130
 * when interrupted. Whatever happens, the gateway child is killed, the fake server closed
 * and the temporary directory removed (unless --keep).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllGateways } from './gateway-process.js';
import { runSoak, type SoakOptions, type SoakSummary } from './soak.js';
import { formatRunTime } from './violations.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      minutes: { type: 'string' },
      seconds: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'rss-limit-mb': { type: 'string' },
      keep: { type: 'boolean' },
      'state-on-disk': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(
      'usage: scripts/chaos [--seed N] [--minutes M | --seconds S] [--heartbeat-ms N] [--rss-limit-mb N] [--keep] [--state-on-disk]\n',
    );
    process.exit(0);
  }
  const num = (value: string | undefined, name: string, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  if (values.minutes !== undefined && values.seconds !== undefined) {
    throw new Error('give --minutes or --seconds, not both');
  }
  const seconds =
    values.seconds !== undefined
      ? num(values.seconds, 'seconds', 45)
      : num(values.minutes, 'minutes', 0.75) * 60;
  if (seconds < 15) throw new Error('a run needs at least 15 seconds (5 of them quiet)');
  const seed =
    values.seed !== undefined ? num(values.seed, 'seed', 1) : Math.floor(Date.now() % 1_000_000);
  if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer');
  return {
    seed,
    durationMs: Math.round(seconds * 1000),
    quietMs: 5_000,
    heartbeatMs: num(values['heartbeat-ms'], 'heartbeat-ms', 200),
    rssLimitMb: num(values['rss-limit-mb'], 'rss-limit-mb', 150),
    cliPath: CLI,
    keepDir: values.keep === true,
    stateOn: values['state-on-disk'] === true ? 'disk' : 'tmpfs',
    progress: (line) => process.stderr.write(`[chaos] ${line}\n`),
  };
}

function table(record: Record<string, number>): string {
  const entries = Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

function printSummary(s: SoakSummary): void {
  const out: string[] = [];
  const e = s.events;
  const f = s.state_file;
  const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  out.push('');
  out.push(
    `chaos soak: seed ${s.seed}, ${s.duration_ms / 1000} s (last ${s.quiet_ms / 1000} s quiet), heartbeat ${s.heartbeat_interval_ms} ms, state file on ${s.state_file_on}${s.aborted ? ' (ABORTED)' : ''}`,
  );
  out.push(`  faults injected (${total(s.faults.injected)}): ${table(s.faults.injected)}`);
  out.push(`    by parameter: ${table(s.faults.detail)}`);
  if (total(s.faults.skipped) > 0)
    out.push(`    skipped (no link at the time): ${table(s.faults.skipped)}`);
  out.push(
    `  recoveries: resumes accepted ${s.recoveries.resumes_accepted} (refused ${s.recoveries.resumes_refused}), identifies accepted ${s.recoveries.identifies_accepted}`,
  );
  out.push(`    reconnects by action: ${table(s.recoveries.reconnects_by_action)}`);
  out.push(`    reconnects by cause: ${table(s.recoveries.reconnects_by_code)}`);
  out.push(`  restarts: ${s.restarts.total} (${table(s.restarts.by_cause)})`);
  out.push(
    `  events: dispatched ${e.dispatched} (+${e.redeliveries} redeliveries, ${e.no_session} without a session), delivered ${e.delivered}, owed ${e.owed}, replied ${e.replied}, failed with a logged code ${e.failedWithCode}, lost in a crash/fatal ${e.lostInCrash}, lost with a re-identified session (not owed) ${e.notOwedUnanswered}, never delivered ${e.neverDelivered}`,
  );
  out.push(
    `  duplicates: redeliveries dropped ${s.duplicates_dropped}; duplicate replies ${e.duplicateReplies}, handled twice ${e.handledTwice}`,
  );
  out.push(
    `  state file: ${f.reads} reads, write_seq ${f.last_write_seq}, ${f.connectedEpochs} connected epochs; READY->connected max ${f.maxUpLatencyMs} ms (${f.upChecks} checks), close->left max ${f.maxCloseLatencyMs} ms, silent link->left max ${f.maxSilentLatencyMs} ms (${f.downChecks} checks); longest pause between reads ${f.max_poll_gap_ms} ms; past a bound but excused by machine stall: max ${f.maxExcusedMs} ms${s.stall_credit ? '' : ' (no PSI: no stall credit)'}`,
  );
  out.push(
    `  recovery after faults stopped: ${s.recovery_after_quiet_ms ?? 'never'} ms (bound ${s.bounds.recoveryMs}); fatal->exit max ${s.max_fatal_exit_ms ?? '-'} ms; RSS max ${s.rss_max_mb} MB${s.rss_longest_lived === null ? '' : ` (longest-lived pid ${s.rss_longest_lived.pid}: ${s.rss_longest_lived.early_mb} MB at 5 s, ${s.rss_longest_lived.last_mb} MB at ${s.rss_longest_lived.lived_s} s)`}`,
  );
  if (s.telegram !== null) {
    const t = s.telegram;
    out.push(
      `  telegram: pushed ${t.pushed}, answered ${t.answered} (again after a restart ${t.answered_again_after_restart}), failed with a logged code ${t.failed_with_code}, lost in a crash/fatal ${t.lost_in_crash}, never answered ${t.never_answered}; silent polls ${t.half_open_hung}: detected ${t.half_open_detected} (max ${t.half_open_max_ms ?? '-'} ms), cut short by the process ending ${t.half_open_cut_short}; ${t.fake_requests} Bot API requests`,
    );
  }
  if (s.discord !== null) {
    const d = s.discord;
    out.push(
      `  discord: pushed ${d.pushed}, answered ${d.answered} (twice ${d.answered_twice}), failed with a logged code ${d.failed_with_code}, lost in a crash/fatal ${d.lost_in_crash}, lost with a replaced session (not owed) ${d.lost_with_session}, never answered ${d.never_answered}; zombies ${d.zombies_made}: detected ${d.zombies_detected} (max ${d.zombie_max_ms ?? '-'} ms = ${d.zombie_max_intervals ?? '-'} × the interval), cut short by the process ending ${d.zombies_cut_short}; resumes ${d.resumes_accepted}, identifies ${d.identifies_accepted}; fake protocol violations ${d.fake_violations}`,
    );
  }
  if (s.webhook !== null) {
    const w = s.webhook;
    const refused = Object.entries(w.rejections)
      .map(
        ([k, r]) =>
          `${k} ${r.rejected}/${r.sent}${r.unreachable > 0 ? ` (+${r.unreachable} unreachable)` : ''}`,
      )
      .join(', ');
    out.push(
      `  qq webhook: pushed ${w.pushed}, acknowledged ${w.acknowledged}, answered ${w.answered} (twice ${w.answered_twice}, handled twice ${w.handled_twice}), failed with a logged code ${w.failed_with_code}, lost in a crash/fatal ${w.lost_in_crash}, never answered ${w.never_answered}, not acknowledged ${w.not_acknowledged}; retried ${w.retried}, acks lost ${w.acks_lost}, redelivered after ack ${w.redelivered_after_ack}, repeats dropped ${w.repeats_dropped}; op 13 answered ${w.validations.answered} (+${w.validations.unreachable} unreachable); refused with the right status: ${refused}; resets ${w.resets_sent}; ack->answer max ${w.answer_max_ms ?? '-'} ms; cut max ${w.cut_max_ms ?? '-'} ms; refusals logged ${table(w.refusals_logged)}; listener probes ${w.listener_probes}; fake protocol violations ${w.fake_violations}`,
    );
  }
  out.push(`  log codes: ${table(s.log_codes)}`);
  out.push(
    `  invariant violations: ${s.violations.count}${s.violations.count > 0 ? ` (${table(s.violations.by_invariant)})` : ''}`,
  );
  if (s.violations.count > 0) {
    out.push(`  FAILED with seed ${s.seed}; first violations:`);
    for (const v of s.violations.first) {
      out.push(`    ${formatRunTime(v.atMs)} [${v.invariant}] ${v.detail}`);
    }
    out.push(`  reproduce: scripts/chaos --seed ${s.seed} --seconds ${s.duration_ms / 1000}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  process.stdout.write(JSON.stringify(s) + '\n');
}

async function main(): Promise<number> {
  if (process.env.NODE_TEST_CONTEXT !== undefined && process.argv.length <= 2) {
    // `node --test dist/test/` runs every file under test/, this one included: do nothing.
    return 0;
  }
  let options: SoakOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts += 1;
    process.stderr.write(`[chaos] ${signal}: stopping (cleaning up)\n`);
    controller.abort();
    if (interrupts > 1) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last resort (a crash of the harness itself): no gateway outlives us.
  process.on('exit', killAllGateways);
  // A hard stop well past the planned end: a hung harness must not hang CI.
  const watchdog = setTimeout(() => {
    process.stderr.write('[chaos] the run overran its time budget: aborting\n');
    controller.abort();
  }, options.durationMs + 60_000);
  process.stderr.write(`[chaos] seed ${options.seed}, ${options.durationMs / 1000} s\n`);
  const summary = await runSoak(options, controller.signal);
  clearTimeout(watchdog);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  printSummary(summary);
  if (summary.aborted) return 130;
  return summary.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `chaos: internal error: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exit(70);
  },
);

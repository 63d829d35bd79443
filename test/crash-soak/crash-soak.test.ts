/**
 * The crash soak as part of the suite (GitHub issue 15), at a small size: 5 SIGKILLs and one
 * SIGTERM under 200 msg/s over 50 chats, with a fixed seed. Every message must be answered
 * exactly once, in order per chat; the state file never torn. It runs as its own process
 * (dist/test/crash-soak/main.js), exactly as `scripts/crash-soak` runs it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runSoakProcess } from '../support/run-soak-process.js';
import type { CrashSoakSummary } from './soak.js';

const ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));
const SEED = 20261204;

await test('crash soak', async (t) => {
  await t.test(
    `5 SIGKILLs + 1 SIGTERM at 200 msg/s (seed ${SEED}): nothing lost, nothing twice, in order`,
    { timeout: 115_000 },
    async () => {
      const run = await runSoakProcess(
        ENTRY,
        ['--kills', '5', '--terms', '1', '--seed', String(SEED)],
        100_000,
      );
      const line = run.stdout.split('\n').find((l) => l.startsWith('{"crash_soak_summary":true'));
      const report = `exit ${run.code}\n${run.stdout.replace(/^\{"crash_soak_summary".*$/m, '')}\n${run.stderr.slice(-3000)}`;
      assert.ok(line !== undefined, `no summary line:\n${report}`);
      const summary = JSON.parse(line) as CrashSoakSummary;
      assert.deepEqual(summary.violations, [], report);
      assert.equal(summary.kills, 5, report);
      assert.equal(summary.terms, 1, report);
      assert.ok(summary.sent > 1_000, report);
      assert.equal(summary.answered, summary.sent, report);
      assert.equal(summary.lost, 0, report);
      assert.equal(summary.duplicates, 0, report);
      assert.equal(summary.order_violations, 0, report);
      assert.equal(summary.torn_state_reads, 0, report);
      // Restarts resumed the session (a fallback would lose the gap: the fake never replays
      // to a new session), and in-flight replies were re-sent and deduplicated.
      assert.equal(summary.resumes_accepted, 6, report);
      assert.equal(run.code, 0, report);
    },
  );
});

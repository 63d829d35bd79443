/**
 * The crash soak as part of the suite (GitHub issue 15), at a small size: 5 SIGKILLs and one
 * SIGTERM under 300 msg/s (100 per platform) over 50 chats each, QQ, Telegram and Discord in one
 * gateway, with a fixed seed. Every message must be answered, on QQ and Discord exactly once, on
 * Telegram with every
 * duplicate announced; in order per chat; the state file never torn. It runs as its own process
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
    `QQ + Telegram + Discord, 5 SIGKILLs + 1 SIGTERM at 100 msg/s each (seed ${SEED}): nothing lost, nothing twice on QQ and Discord, in order`,
    { timeout: 200_000 },
    async () => {
      const run = await runSoakProcess(
        ENTRY,
        ['--kills', '5', '--terms', '1', '--rate', '100', '--seed', String(SEED)],
        180_000,
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
      assert.equal(summary.torn_state_reads, 0, report);
      const { qqbot, telegram, discord } = summary.platforms;
      assert.ok(qqbot !== undefined && telegram !== undefined && discord !== undefined, report);
      for (const p of [qqbot, telegram, discord]) {
        assert.ok(p.sent > 1_000, report);
        assert.equal(p.lost, 0, report);
        assert.equal(p.order_violations, 0, report);
      }
      assert.equal(qqbot.duplicates, 0, report);
      assert.equal(discord.duplicates, 0, report);
      assert.ok(telegram.duplicates <= telegram.announced_duplicates, report);
      // Restarts resumed (a QQ or Discord fallback would lose the gap: the fakes never replay
      // to a new session; Telegram continues after the last handled update), and in-flight
      // replies were re-sent (QQ and Discord: deduplicated by the platform).
      assert.equal(qqbot.resumes_accepted, 6, report);
      assert.equal(telegram.resumes_accepted, 6, report);
      assert.equal(discord.resumes_accepted, 6, report);
      // Each Resume started at the handled watermark: it replayed the few messages answered
      // out of order above it, not the whole session (a resume point stuck at its start
      // replays every answered message: share 1).
      assert.ok(
        discord.replayed_answered_share !== null && discord.replayed_answered_share < 0.25,
        report,
      );
      assert.equal(run.code, 0, report);
    },
  );
});

/**
 * The chaos soak as part of the suite (GitHub issue 6): 45 seconds of faults with a fixed
 * seed against the built gateway (a QQ, a Telegram, a Discord and a QQ webhook instance in one
 * process), which must
 * end with zero invariant violations. The soak
 * runs as its own process (dist/test/chaos/main.js), exactly as `scripts/chaos` runs it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runSoakProcess } from '../support/run-soak-process.js';
import { WEIGHTS } from './schedule.js';
import type { SoakSummary } from './soak.js';

const ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));
const SEED = 20250601;
const SECONDS = 45;

await test('chaos soak', async (t) => {
  await t.test(
    `${SECONDS} s of seeded faults (seed ${SEED}) end with zero invariant violations`,
    { timeout: 115_000 },
    async () => {
      const run = await runSoakProcess(
        ENTRY,
        ['--seconds', String(SECONDS), '--seed', String(SEED)],
        100_000,
      );
      const line = run.stdout.split('\n').find((l) => l.startsWith('{"chaos_summary":true'));
      const report = `exit ${run.code ?? run.signal}\n${run.stdout.replace(/^\{"chaos_summary".*$/m, '')}\n${run.stderr.slice(-4000)}`;
      assert.ok(line !== undefined, `no summary line:\n${report}`);
      const summary = JSON.parse(line) as SoakSummary;
      assert.equal(summary.seed, SEED);
      assert.equal(summary.violations.count, 0, `invariant violations:\n${report}`);
      assert.equal(run.code, 0, report);
      // The run did what it is for: faults of every class, restarts, and traffic. A fault
      // that needs a live link is skipped when drawn while a process restarts, and where the
      // draws fall moves with every lane added to the seed's schedule: each class must be
      // drawn, and most are also injected in practice (the summary lists both).
      const injected = summary.faults.injected;
      const planned = summary.faults.planned;
      const drawn = (kind: string): void =>
        assert.ok((planned[kind] ?? 0) > 0, `no ${kind} fault was drawn:\n${report}`);
      for (const kind of ['close_resume', 'close_identify', 'close_fatal', 'kill9', 'half_open']) {
        drawn(kind);
      }
      assert.ok(
        (injected.close_resume ?? 0) +
          (injected.close_identify ?? 0) +
          (injected.close_fatal ?? 0) >
          0,
        `no QQ close fault was injected:\n${report}`,
      );
      assert.ok(summary.restarts.total >= 2, report);
      assert.ok(summary.recoveries.resumes_accepted > 0, report);
      assert.ok(summary.events.replied > 50, report);
      assert.ok(summary.recovery_after_quiet_ms !== null, report);
      // The Telegram instance beside QQ: its faults drawn, its users answered.
      for (const kind of ['tg_poll_fault', 'tg_half_open', 'tg_send_fault']) drawn(kind);
      assert.ok(summary.telegram !== null, report);
      assert.ok(summary.telegram.answered > 30, report);
      assert.equal(summary.telegram.never_answered, 0, report);
      // A silent poll is noticed by the process that holds it; one killed or ended first (a
      // kill -9 or fatal fault drawn just after) leaves nobody to notice, and is no failure.
      const tg = summary.telegram;
      if (tg.half_open_hung > tg.half_open_cut_short) assert.ok(tg.half_open_detected > 0, report);
      // The Discord instance beside them: its faults drawn, its users answered exactly once.
      for (const kind of ['dc_close', 'dc_send_fault', 'dc_resume_refused']) drawn(kind);
      // A silent-link fault needs a live link: drawn while a process restarts, it is skipped
      // (the schedule is the seed's and shifts as lanes are added). Drawn is required; a zombie
      // verdict only when a link was made silent and its process lived on (below).
      const silentDrawn = (planned.dc_stop_acks ?? 0) + (planned.dc_half_open ?? 0);
      assert.ok(silentDrawn > 0, `no Discord silent-link fault was drawn:\n${report}`);
      assert.ok(summary.discord !== null, report);
      assert.ok(summary.discord.answered > 30, report);
      assert.equal(summary.discord.never_answered, 0, report);
      assert.equal(summary.discord.answered_twice, 0, report);
      assert.equal(summary.discord.fake_violations, 0, report);
      // As for Telegram's silent poll: a zombie whose process was killed first is not owed.
      const dc = summary.discord;
      if (dc.zombies_made > dc.zombies_cut_short) assert.ok(dc.zombies_detected > 0, report);
      assert.ok(summary.discord.resumes_accepted > 0, report);
      // The QQ webhook instance: its faults drawn, every refused request refused with its
      // status (or unreachable during a restart), nothing refused dispatched (a violation),
      // every acknowledged callback answered exactly once.
      // Every webhook kind is drawn (the schedule is the seed's); request faults wait up to 3 s
      // for a connected instance, so one drawn during a restart may be skipped.
      for (const kind of Object.keys(WEIGHTS).filter((k) => k.startsWith('wh_'))) {
        assert.ok((planned[kind] ?? 0) > 0, `no ${kind} fault was drawn:\n${report}`);
      }
      for (const kind of ['wh_forged', 'wh_timestamp', 'wh_oversized', 'wh_redeliver']) {
        assert.ok((injected[kind] ?? 0) > 0, `no ${kind} fault was injected:\n${report}`);
      }
      assert.ok((injected.wh_token_fault ?? 0) + (injected.wh_send_fault ?? 0) > 0, report);
      const wh = summary.webhook;
      assert.ok(wh !== null, report);
      assert.ok(wh.answered > 30, report);
      assert.equal(wh.never_answered, 0, report);
      assert.equal(wh.answered_twice, 0, report);
      assert.equal(wh.handled_twice, 0, report);
      assert.equal(wh.fake_violations, 0, report);
      assert.ok(wh.retried > 0 && wh.acks_lost + wh.redelivered_after_ack > 0, report);
      if ((injected.wh_validation ?? 0) > 0) {
        // A wrong op 13 answer is the fake's violation; here: one was answered at all.
        assert.ok(wh.validations.answered + wh.validations.unreachable > 0, report);
      }
      const forged = wh.rejections.forged;
      assert.ok(forged !== undefined && forged.sent > 0, report);
      assert.equal(forged.rejected, forged.sent - forged.unreachable, report);
      assert.ok(forged.rejected > 0, report);
      // Each refused signature is logged at warn with its code.
      assert.ok((wh.refusals_logged.GW_ERR_QQ_WEBHOOK_SIGNATURE ?? 0) >= forged.rejected, report);
      for (const [kind, count] of Object.entries(wh.rejections)) {
        assert.equal(count.rejected + count.unreachable, count.sent, `${kind}:\n${report}`);
      }
      // A hung or trickled body injected is cut (408) in time (a violation otherwise).
      if ((injected.wh_slow ?? 0) > 0) assert.ok(wh.cut_max_ms !== null, report);
    },
  );
});

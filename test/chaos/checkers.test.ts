/**
 * The chaos soak's own parts, on synthetic timelines: the PRNG and the schedule are
 * deterministic, and every invariant checker fires on the bug it exists for (a checker that
 * never fires would make a green soak meaningless) and stays quiet on correct behaviour.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StateDocument } from '../../src/state/schema.js';
import { DeliveryLedger } from './ledger.js';
import { Rng, mulberry32 } from './prng.js';
import { WEIGHTS, buildSchedule, countKinds, DEFAULT_SCHEDULE } from './schedule.js';
import { ConnectionTruth, StateFileWatcher, type Sample } from './state-truth.js';
import { Violations } from './violations.js';

const T0 = 1_700_000_000_000;

function violations(): Violations {
  return new Violations(() => 0);
}

function doc(pid: number, state: string, sinceMs: number, writeSeq = 1): StateDocument {
  const since = new Date(sinceMs).toISOString();
  return {
    schema_version: 1,
    pid,
    pid_start_time: null,
    started_at: since,
    updated_at: since,
    heartbeat_at: since,
    heartbeat_interval_ms: 1000,
    write_seq: writeSeq,
    gateway: { state: 'running', since, reason: null, exit_code: null },
    platforms: {
      qqbot: {
        state: state as StateDocument['platforms'][string]['state'],
        since,
        reconnect_attempt: 0,
        max_reconnect_attempts: 10,
        last_error: null,
        last_event_at: null,
        resumable: false,
        detail: null,
      },
    },
  };
}

function sample(at: number, d: StateDocument, stall = 0): Sample {
  return { at, stall, doc: d };
}

const BOUNDS = { upMs: 100, closeMs: 100, silentMs: 350 };

await test('prng', async (t) => {
  await t.test('mulberry32 is deterministic per seed and spreads over [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs.slice(0, 5),
      Array.from({ length: 5 }, () => b()),
    );
    assert.notEqual(xs[0], c());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });

  await t.test('forks are independent of draws on the parent', () => {
    const r1 = new Rng(7);
    const r2 = new Rng(7);
    r2.float();
    assert.equal(r1.fork('faults').float(), r2.fork('faults').float());
    assert.notEqual(r1.fork('faults').float(), r1.fork('messages').float());
  });
});

await test('schedule', async (t) => {
  const options = {
    ...DEFAULT_SCHEDULE,
    startMs: 1_000,
    endMs: 40_000,
    maxPayloadBytes: 65_536,
  };

  await t.test('is a pure function of the seed', () => {
    assert.deepEqual(buildSchedule(new Rng(9), options), buildSchedule(new Rng(9), options));
    assert.notDeepEqual(buildSchedule(new Rng(9), options), buildSchedule(new Rng(10), options));
  });

  await t.test('covers every kind, one kill -9, fatal closes, and stays inside the window', () => {
    const plan = buildSchedule(new Rng(1), options);
    const counts = countKinds(plan);
    for (const kind of Object.keys(WEIGHTS)) assert.ok((counts[kind] ?? 0) > 0, kind);
    assert.equal(counts.kill9, 1);
    assert.equal(counts.close_fatal, 2);
    assert.ok(plan.every((p) => p.atMs >= options.startMs && p.atMs < options.endMs));
    const restarts = plan.filter((p) =>
      ['kill9', 'close_fatal', 'token_rejected'].includes(p.fault.kind),
    );
    assert.ok(restarts.every((p) => p.atMs <= options.endMs - options.restartMarginMs));
    for (let i = 1; i < plan.length; i++) assert.ok(plan[i]!.atMs >= plan[i - 1]!.atMs);
  });
});

await test('state file watcher', async (t) => {
  await t.test(
    'flags a write_seq going back, a torn file and a secret, and accepts a good file',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'chaos-watch-'));
      try {
        const path = join(dir, 'state.json');
        const v = violations();
        const watcher = new StateFileWatcher(path, v, () => ['s3cret']);
        assert.equal(watcher.poll(), null); // not yet written: fine
        await writeFile(path, JSON.stringify(doc(1, 'connected', T0, 5)), { mode: 0o600 });
        assert.ok(watcher.poll());
        assert.equal(v.count, 0);
        await writeFile(path, JSON.stringify(doc(1, 'connected', T0, 4)), { mode: 0o600 });
        watcher.poll();
        assert.match(v.list[0]!.detail, /write_seq went back from 5 to 4/);
        await writeFile(path, '{"schema_version": 1, "pid"', { mode: 0o600 });
        assert.equal(watcher.poll(), null);
        assert.match(v.list[1]!.detail, /unparseable/);
        await writeFile(path, JSON.stringify({ ...doc(1, 'connected', T0, 6), x: 's3cret' }), {
          mode: 0o600,
        });
        watcher.poll();
        assert.match(v.list[2]!.detail, /secret/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

await test('connection truth', async (t) => {
  await t.test('accepts a file that follows READY and a close in time', () => {
    const v = violations();
    const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
    truth.up(1, T0, 100, 'READY');
    truth.sample(sample(T0 + 10, doc(100, 'connecting', T0 - 50)), 100);
    truth.sample(sample(T0 + 20, doc(100, 'connected', T0 + 15)), 100);
    truth.down(1, T0 + 1000, 'close 4009', 100);
    truth.sample(sample(T0 + 1040, doc(100, 'reconnecting', T0 + 1030)), 100);
    truth.sample(sample(T0 + 1200, doc(100, 'reconnecting', T0 + 1030)), 100);
    truth.tick(() => '');
    assert.equal(v.count, 0);
    assert.equal(truth.stats.maxUpLatencyMs, 20);
    assert.equal(truth.stats.maxCloseLatencyMs, 40);
  });

  await t.test(
    'flags a file still connected after the close bound (the bug this project exists for)',
    () => {
      const v = violations();
      const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
      truth.up(1, T0, 100, 'READY');
      truth.sample(sample(T0 + 20, doc(100, 'connected', T0 + 15)), 100);
      truth.down(1, T0 + 1000, 'TCP reset', 100);
      truth.sample(sample(T0 + 1050, doc(100, 'connected', T0 + 15)), 100);
      truth.tick(() => '');
      assert.equal(v.count, 0, 'no verdict before a sample past the deadline');
      truth.sample(sample(T0 + 1101, doc(100, 'connected', T0 + 15)), 100);
      truth.tick(() => '');
      assert.equal(v.count, 1);
      assert.match(
        v.list[0]!.detail,
        /TCP reset on connection 1, but the state file still said connected/,
      );
    },
  );

  await t.test('credits machine stall to a deadline, and only that', () => {
    const v = violations();
    let stall = 1_000;
    const truth = new ConnectionTruth(
      v,
      BOUNDS,
      (x) => x - T0,
      () => stall,
    );
    truth.up(1, T0, 100, 'READY');
    truth.sample(sample(T0 + 10, doc(100, 'connected', T0 + 5), stall), 100);
    truth.down(1, T0 + 1000, 'TCP reset', 100);
    stall += 80; // the machine could not run everything for 80 ms meanwhile
    truth.sample(sample(T0 + 1150, doc(100, 'connected', T0 + 5), stall), 100);
    truth.tick(() => '');
    assert.equal(v.count, 0, 'within 100 ms + 80 ms of stall');
    truth.sample(sample(T0 + 1170, doc(100, 'reconnecting', T0 + 1160), stall), 100);
    assert.equal(truth.stats.maxExcusedMs, 70);
    truth.up(2, T0 + 2000, 100, 'RESUMED');
    truth.sample(sample(T0 + 2181, doc(100, 'reconnecting', T0 + 1160), stall + 80), 100);
    truth.tick(() => '');
    assert.equal(v.count, 1);
    assert.match(v.list[0]!.detail, /within 100 ms \+ 80 ms of machine stall/);
  });

  await t.test('does not take a later READY of the same link for a reconnect', () => {
    const v = violations();
    const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
    truth.up(1, T0, 100, 'READY');
    truth.down(1, T0 + 5, 'close 4009', 100);
    // READY processed after the close, and the close never noticed: since > down time.
    truth.sample(sample(T0 + 150, doc(100, 'connected', T0 + 7)), 100);
    truth.tick(() => '');
    assert.equal(v.count, 1);
  });

  await t.test('accepts a quick reconnect that a new READY explains', () => {
    const v = violations();
    const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
    truth.up(1, T0, 100, 'READY');
    truth.sample(sample(T0 + 10, doc(100, 'connected', T0 + 5)), 100);
    truth.down(1, T0 + 500, 'close 4009', 100);
    truth.up(2, T0 + 540, 100, 'RESUMED');
    truth.sample(sample(T0 + 560, doc(100, 'connected', T0 + 545)), 100);
    truth.sample(sample(T0 + 700, doc(100, 'connected', T0 + 545)), 100);
    truth.tick(() => '');
    assert.equal(v.count, 0);
  });

  await t.test(
    'gives a second fault on a closing link its own bound (op 7, then half-open)',
    () => {
      const v = violations();
      const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
      truth.up(1, T0, 100, 'READY');
      truth.sample(sample(T0 + 10, doc(100, 'connected', T0 + 5)), 100);
      truth.down(1, T0 + 1000, 'op 7 Reconnect', 100);
      truth.down(1, T0 + 1001, 'half-open link', 350);
      truth.sample(sample(T0 + 1200, doc(100, 'connected', T0 + 5)), 100);
      truth.tick(() => '');
      assert.equal(v.count, 0);
      truth.sample(sample(T0 + 1360, doc(100, 'connected', T0 + 5)), 100);
      truth.tick(() => '');
      assert.equal(v.count, 1);
      assert.match(v.list[0]!.detail, /op 7 Reconnect, then half-open link/);
    },
  );

  await t.test('flags connected without a READY, and a READY the file never shows', () => {
    const v = violations();
    const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
    truth.sample(sample(T0 + 10, doc(100, 'connected', T0 + 5)), 100);
    assert.match(v.list[0]!.detail, /no READY\/RESUMED before that/);
    truth.up(2, T0 + 1000, 100, 'READY');
    truth.sample(sample(T0 + 1200, doc(100, 'reconnecting', T0 + 900)), 100);
    truth.tick(() => '');
    assert.match(v.list[1]!.detail, /did not say connected within 100 ms/);
  });

  await t.test('ignores a dead process and samples written by another pid', () => {
    const v = violations();
    const truth = new ConnectionTruth(v, BOUNDS, (t) => t - T0);
    truth.up(1, T0, 100, 'READY');
    truth.sample(sample(T0 + 10, doc(100, 'connected', T0 + 5)), 100);
    truth.down(1, T0 + 100, 'TCP reset', 100);
    truth.processEnded(100);
    truth.sample(sample(T0 + 500, doc(100, 'connected', T0 + 5)), null);
    truth.tick(() => '');
    assert.equal(v.count, 0);
  });
});

await test('delivery ledger', async (t) => {
  await t.test('owes acknowledged events exactly one answer', () => {
    const v = violations();
    const ledger = new DeliveryLedger(v, (t) => t - T0, 8_000);
    ledger.dispatched('m1', 'u1', 'S', 2, T0);
    ledger.dispatched('m2', 'u1', 'S', 3, T0);
    ledger.dispatched('m3', 'u1', 'S', 4, T0);
    ledger.delivered('S', 2);
    ledger.delivered('S', 3);
    ledger.delivered('S', 4);
    ledger.claim('S', 4, T0 + 100, 100);
    ledger.sendRequest('m1', 1, true, 100, T0);
    ledger.sendRequest('m2', 1, false, 100, T0);
    ledger.failureLogged('m2', 'GW_ERR_QQ_SEND_FAILED');
    ledger.check(T0 + 1_000, false);
    assert.equal(v.count, 0, 'm3 still has time');
    ledger.check(T0 + 9_000, false);
    assert.equal(v.count, 1);
    assert.match(v.list[0]!.detail, /m3: acknowledged .* never answered/);
    const stats = ledger.stats();
    assert.equal(stats.owed, 3);
    assert.equal(stats.replied, 1);
    assert.equal(stats.failedWithCode, 1);
  });

  await t.test('flags a duplicate reply and a second handling (a new msg_seq)', () => {
    const v = violations();
    const ledger = new DeliveryLedger(v, (t) => t - T0, 8_000);
    ledger.dispatched('m1', 'u1', 'S', 2, T0);
    ledger.sendRequest('m1', 1, false, 100, T0);
    ledger.sendRequest('m1', 1, true, 100, T0); // a retry of the same seq: fine
    assert.equal(v.count, 0);
    ledger.sendRequest('m1', 2, true, 100, T0);
    assert.deepEqual(
      v.list.map((x) => /replies accepted|more than once/.exec(x.detail)?.[0]),
      ['replies accepted', 'more than once'],
    );
  });

  await t.test(
    'does not owe what a re-identified session lost, nor what died with a killed process',
    () => {
      const v = violations();
      const ledger = new DeliveryLedger(v, (t) => t - T0, 8_000);
      ledger.dispatched('lost-with-session', 'u1', 'S1', 2, T0);
      ledger.delivered('S1', 2); // written, never acknowledged: the client re-identified
      ledger.dispatched('killed', 'u1', 'S2', 2, T0);
      ledger.delivered('S2', 2);
      ledger.claim('S2', 2, T0 + 10, 200);
      ledger.processEnded(200, T0 + 20, 'kill9');
      ledger.dispatched('stopped', 'u1', 'S3', 2, T0);
      ledger.delivered('S3', 2);
      ledger.claim('S3', 2, T0 + 10, 300);
      ledger.processEnded(300, T0 + 20, 'stop');
      ledger.check(T0 + 60_000, true);
      assert.equal(v.count, 1);
      assert.match(v.list[0]!.detail, /stopped: acknowledged/);
      const stats = ledger.stats();
      assert.equal(stats.notOwedUnanswered, 1);
      assert.equal(stats.lostInCrash, 1);
    },
  );

  await t.test('a crash excuses only what was still in flight when it came', () => {
    const v = violations();
    const ledger = new DeliveryLedger(v, (x) => x - T0, 8_000);
    ledger.dispatched('old', 'u1', 'S', 2, T0);
    ledger.delivered('S', 2);
    ledger.claim('S', 2, T0 + 10, 200);
    ledger.processEnded(200, T0 + 20_000, 'fatal');
    ledger.check(T0 + 60_000, true);
    assert.equal(v.count, 1);
    assert.match(v.list[0]!.detail, /old: acknowledged/);
  });

  await t.test('a crash does not excuse an event a later one of its chat overtook', () => {
    const v = violations();
    const ledger = new DeliveryLedger(v, (x) => x - T0, 8_000);
    ledger.dispatched('dropped', 'u1', 'S', 2, T0);
    ledger.dispatched('other-chat', 'u2', 'S', 3, T0 + 50);
    ledger.dispatched('later', 'u1', 'S', 4, T0 + 100);
    for (const s of [2, 3, 4]) ledger.delivered('S', s);
    ledger.claim('S', 4, T0 + 200, 300);
    ledger.sendRequest('later', 1, true, 300, T0 + 150);
    ledger.processEnded(300, T0 + 1_000, 'kill9');
    ledger.check(T0 + 60_000, true);
    assert.equal(v.count, 1);
    assert.match(v.list[0]!.detail, /dropped: acknowledged/);
    assert.equal(ledger.stats().lostInCrash, 1, 'other-chat was still waiting: excused');
  });

  await t.test('counts an acknowledgement only for what was written before it', () => {
    const v = violations();
    const ledger = new DeliveryLedger(v, (t) => t - T0, 8_000);
    ledger.dispatched('buffered', 'u1', 'S', 5, T0);
    ledger.claim('S', 4, T0 + 10, 100);
    ledger.delivered('S', 5); // replayed after a Resume at seq 4
    ledger.claim('S', 5, T0 + 20, 100);
    ledger.check(T0 + 60_000, true);
    assert.equal(v.count, 1);
    assert.equal(ledger.stats().owed, 1);
  });
});

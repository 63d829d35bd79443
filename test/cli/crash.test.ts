/**
 * Crash safety of gateway_state.json: SIGKILL the gateway at random moments while an adapter
 * flaps connected <-> reconnecting (a state write per transition), hundreds of times, reusing
 * each state file across runs. After every kill the file must parse, and write_seq must never
 * go back compared to the value after the previous kill of that file.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  killAllChildren,
  readState,
  sandboxEnv,
  spawnGateway,
  writeConfig,
  scratchRoot,
} from '../support/spawn-gateway.js';

/** Files written concurrently (one gateway each at a time) and kills per file. */
const LANES = 4;
const KILLS_PER_LANE = 50;

const root = await scratchRoot('hgw-crash-');

/** Set when a lane fails, so that the others stop spawning gateways. */
let aborted = false;

interface LaneResult {
  kills: number;
  /** Kills that landed after this run had written (so in the middle of the flapping). */
  midRun: number;
  /** Runs killed only once they had written three transitions. */
  flapRuns: number;
  finalSeq: number;
}

async function lane(index: number): Promise<LaneResult> {
  const dir = join(root, `lane${index}`);
  const statePath = join(dir, 'gateway_state.json');
  const configPath = await writeConfig(dir, {
    state_file: statePath,
    log_level: 'warn',
    platforms: { scripted: { then: 'flap' } },
  });
  const env = sandboxEnv(dir);
  let lastSeq: number | null = null;
  let midRun = 0;
  let flapRuns = 0;
  for (let kill = 1; kill <= KILLS_PER_LANE; kill++) {
    // Another lane failed: stop spawning, the test is over.
    if (aborted) throw new Error(`lane ${index} aborted`);
    const proc = spawnGateway(['run', '--config', configPath], { env });
    const before = lastSeq ?? 0;
    if (kill % 4 === 0) {
      // Some kills land anywhere in start-up (module loading, resumeSequence, first writes).
      await delay(randomInt(0, 150));
    } else {
      // Most land while transitions are being written back to back. Every poll must parse.
      await proc.waitForState(
        statePath,
        (doc) => doc.write_seq >= before + 3,
        `lane ${index} run ${kill} flapping`,
        15_000,
      );
      await delay(randomInt(0, 15));
      flapRuns += 1;
    }
    proc.kill();
    const exit = await proc.waitForExit(10_000);
    assert.equal(
      exit.signal,
      'SIGKILL',
      `lane ${index} run ${kill} ended by itself: ${proc.stderr}`,
    );

    let doc;
    try {
      doc = readState(statePath);
    } catch (err) {
      assert.fail(`lane ${index} kill ${kill}: state file does not parse: ${String(err)}`);
    }
    if (doc === undefined) {
      assert.equal(lastSeq, null, `lane ${index} kill ${kill}: the state file disappeared`);
      continue;
    }
    assert.ok(
      doc.write_seq >= before,
      `lane ${index} kill ${kill}: write_seq went back from ${before} to ${doc.write_seq}`,
    );
    assert.equal(doc.schema_version, 1);
    if (doc.pid === proc.pid) midRun += 1;
    lastSeq = doc.write_seq;
  }
  return { kills: KILLS_PER_LANE, midRun, flapRuns, finalSeq: lastSeq ?? 0 };
}

await test('state file crash safety', async (t) => {
  t.after(killAllChildren);
  await t.test(
    `survives ${LANES * KILLS_PER_LANE} SIGKILLs at random moments`,
    { timeout: 180_000 },
    async () => {
      const results = await Promise.all(
        Array.from({ length: LANES }, (_, i) =>
          lane(i).catch((err: unknown) => {
            aborted = true;
            throw err;
          }),
        ),
      );
      const kills = results.reduce((sum, r) => sum + r.kills, 0);
      const midRun = results.reduce((sum, r) => sum + r.midRun, 0);
      assert.equal(kills, LANES * KILLS_PER_LANE);
      assert.ok(kills >= 200);
      // The soak means something only if most kills interrupted a writing gateway.
      assert.ok(midRun >= kills / 2, `only ${midRun} of ${kills} kills hit a writing gateway`);
      // Each run that was killed while flapping added at least three writes to its file.
      for (const r of results) assert.ok(r.finalSeq >= 3 * r.flapRuns, `finalSeq ${r.finalSeq}`);
    },
  );
});

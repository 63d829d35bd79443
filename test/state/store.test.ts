import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { isGatewayError, type GatewayError } from '../../src/errors.js';
import { STATE_SCHEMA_VERSION, type StateDocument } from '../../src/state/schema.js';
import { StateStore } from '../../src/state/store.js';
import { processStartTime } from '../../src/util/proc.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot } from '../support/spawn-gateway.js';

let counter = 0;

const root = await scratchRoot('hgw-store-');

/** A fresh directory and a store writing `gateway_state.json` into it. */
async function freshStore(heartbeatIntervalMs = 30_000): Promise<{
  store: StateStore;
  path: string;
  dir: string;
  logs: ReturnType<typeof captureLogger>;
}> {
  const dir = join(root, `s${++counter}`);
  await mkdir(dir);
  const path = join(dir, 'gateway_state.json');
  const logs = captureLogger();
  return { store: new StateStore({ path, heartbeatIntervalMs, log: logs.log }), path, dir, logs };
}

function readDoc(path: string): StateDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as StateDocument;
}

function assertStateWriteError(err: unknown): GatewayError {
  assert.ok(isGatewayError(err), `expected a GatewayError, got ${String(err)}`);
  assert.equal(err.code, 'GW_ERR_STATE_WRITE');
  return err;
}

await test('StateStore', async (t) => {
  await t.test('writes the documented fields on the first commit', async () => {
    const { store, path } = await freshStore(1234);
    store.setPlatform('alpha', { state: 'connecting' });
    await store.commit();
    const doc = readDoc(path);
    assert.equal(doc.schema_version, STATE_SCHEMA_VERSION);
    assert.equal(doc.pid, process.pid);
    assert.equal(doc.pid_start_time, processStartTime(process.pid));
    assert.equal(doc.heartbeat_interval_ms, 1234);
    assert.equal(doc.write_seq, 1);
    assert.equal(doc.gateway.state, 'starting');
    assert.equal(doc.gateway.exit_code, null);
    for (const key of ['started_at', 'updated_at', 'heartbeat_at'] as const) {
      assert.ok(!Number.isNaN(Date.parse(doc[key])), key);
    }
    const alpha = doc.platforms.alpha;
    assert.ok(alpha);
    assert.equal(alpha.state, 'connecting');
    assert.equal(alpha.reconnect_attempt, 0);
    assert.equal(alpha.max_reconnect_attempts, null);
    assert.equal(alpha.last_error, null);
    assert.equal(alpha.last_event_at, null);
    assert.equal(alpha.resumable, false);
  });

  await t.test('writes the file with mode 0600, even over an existing 0644 file', async () => {
    const { store, path } = await freshStore();
    await writeFile(path, '{}', { mode: 0o644 });
    await chmod(path, 0o644);
    await store.commit();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await store.commit();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  await t.test('creates a missing state directory', async () => {
    const { dir, logs } = await freshStore();
    const path = join(dir, 'a', 'b', 'gateway_state.json');
    const store = new StateStore({ path, heartbeatIntervalMs: 1000, log: logs.log });
    await store.commit();
    assert.equal(readDoc(path).write_seq, 1);
  });

  await t.test('increases write_seq by exactly one per write', async () => {
    const { store, path } = await freshStore();
    for (let i = 1; i <= 5; i++) {
      store.setGateway({ reason: `r${i}` });
      await store.commit();
      const doc = readDoc(path);
      assert.equal(doc.write_seq, i);
      assert.equal(doc.gateway.reason, `r${i}`);
    }
    assert.equal(store.writeCount, 5);
  });

  await t.test(
    'writes many queued commits one at a time, in commit order, never torn',
    async () => {
      const { store, path } = await freshStore();
      const n = 150;
      const seen: number[] = [];
      const observed: Array<Promise<void>> = [];
      // A concurrent reader: every read parses and write_seq never goes back.
      let reading = true;
      let lastRead = 0;
      let reads = 0;
      const reader = (async () => {
        while (reading) {
          let text: string;
          try {
            text = await readFile(path, 'utf8');
          } catch {
            continue; // not written yet
          }
          const doc = JSON.parse(text) as StateDocument;
          assert.ok(
            doc.write_seq >= lastRead,
            `write_seq went back: ${doc.write_seq} < ${lastRead}`,
          );
          lastRead = doc.write_seq;
          reads += 1;
        }
      })();
      for (let i = 1; i <= n; i++) {
        store.setPlatform('alpha', { detail: `d${i}` });
        const expected = i;
        observed.push(
          store.commit().then(() => {
            // When commit i resolves, write i is on disk and write i+1 has not completed yet.
            const doc = readDoc(path);
            assert.equal(doc.write_seq, expected);
            assert.equal(doc.platforms.alpha?.detail, `d${expected}`);
            seen.push(expected);
          }),
        );
      }
      await Promise.all(observed);
      reading = false;
      await reader;
      assert.deepEqual(
        seen,
        Array.from({ length: n }, (_, i) => i + 1),
      );
      assert.equal(readDoc(path).write_seq, n);
      assert.ok(reads > 0);
    },
  );

  await t.test('snapshots the document at commit time, not at write time', async () => {
    const { store, path } = await freshStore();
    store.setGateway({ reason: 'first' });
    const first = store.commit();
    store.setGateway({ reason: 'second' });
    await first;
    // The first write carries what the document was when commit() was called.
    assert.equal(readDoc(path).gateway.reason, 'first');
    await store.commit();
    assert.equal(readDoc(path).gateway.reason, 'second');
  });

  await t.test(
    'continues write_seq from the file a previous process left (resumeSequence)',
    async () => {
      const { store, path, logs } = await freshStore();
      store.setGateway({ reason: 'previous run' });
      for (let i = 0; i < 3; i++) await store.commit();
      const previous = readDoc(path);
      previous.write_seq = 41;
      await writeFile(path, JSON.stringify(previous));

      const next = new StateStore({ path, heartbeatIntervalMs: 1000, log: logs.log });
      await next.resumeSequence();
      await next.commit();
      assert.equal(readDoc(path).write_seq, 42);
      await next.commit();
      assert.equal(readDoc(path).write_seq, 43);
    },
  );

  await t.test('starts write_seq from zero when there is no usable previous file', async () => {
    const { store, path } = await freshStore();
    await store.resumeSequence(); // missing file
    await store.commit();
    assert.equal(readDoc(path).write_seq, 1);

    const { path: junkPath, logs } = await freshStore();
    await writeFile(junkPath, '{"write_seq": 9'); // torn junk from elsewhere
    const junk = new StateStore({ path: junkPath, heartbeatIntervalMs: 1000, log: logs.log });
    await junk.resumeSequence();
    await junk.commit();
    assert.equal(readDoc(junkPath).write_seq, 1);
  });

  await t.test(
    'after one failed write, rejects every later commit with the same code',
    async () => {
      const { dir, logs } = await freshStore();
      // The state directory is a regular file: mkdir and every write fail with ENOTDIR/EEXIST.
      const blocker = join(dir, 'blocker');
      await writeFile(blocker, 'not a directory');
      const path = join(blocker, 'gateway_state.json');
      const store = new StateStore({ path, heartbeatIntervalMs: 1000, log: logs.log });

      const queued = [store.commit(), store.commit(), store.commit()];
      const results = await Promise.allSettled(queued);
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        assertStateWriteError(result.reason);
      }
      const first = assertStateWriteError((results[0] as PromiseRejectedResult).reason);
      assert.equal(first.details.path, path);

      // Even once the path could be written again, the store stays broken: a state file that
      // silently skipped a transition would lie.
      await rm(blocker);
      await assert.rejects(store.commit(), (err) => assertStateWriteError(err) === first);
      await assert.rejects(store.flush(), (err) => assertStateWriteError(err) === first);
      await assert.rejects(readFile(path), { code: 'ENOENT' });

      const errorLines = logs.lines.filter((l) => l.code === 'GW_ERR_STATE_WRITE');
      assert.equal(errorLines.length, 1, 'the failure is logged once');
      // warn: the runner's fatal line is the one error line (test/cli/fatal-log.test.ts).
      assert.equal(errorLines[0]?.level, 40);
      assert.equal(errorLines[0]?.path, path);
    },
  );

  await t.test(
    'a failure mid-run keeps the last good file intact and rejects later commits',
    async () => {
      const { store, path, dir } = await freshStore();
      store.setGateway({ reason: 'good' });
      await store.commit();
      // Replace the directory by a regular file (root ignores chmod, so this is how to fail).
      await rename(dir, `${dir}.moved`);
      await writeFile(dir, 'not a directory');
      const err: unknown = await store.commit().then(
        () => assert.fail('commit should fail'),
        (e: unknown) => e,
      );
      const error = assertStateWriteError(err);
      assert.equal(error.details.errno, 'ENOTDIR');
      assert.equal(error.details.path, path);
      // The last good write is whole; the failed one left nothing half-written behind.
      const moved = readDoc(join(`${dir}.moved`, 'gateway_state.json'));
      assert.equal(moved.gateway.reason, 'good');
      assert.equal(moved.write_seq, 1);
      await rm(dir);
      await mkdir(dir);
      await assert.rejects(store.commit(), (e) => assertStateWriteError(e) === error);
    },
  );

  await t.test('never writes a secret: Secret values serialise as [redacted]', async () => {
    const { store, path } = await freshStore();
    const secret = new Secret('sup3r-s3cret-value');
    // Even if a careless caller puts a Secret into a free-form field, the file stays clean.
    store.setPlatform('alpha', { detail: `token=${String(secret)}` });
    store.setGateway({ reason: JSON.stringify({ secret }) });
    await store.commit();
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes('sup3r-s3cret-value'));
    assert.ok(text.includes('[redacted]'));
  });
});

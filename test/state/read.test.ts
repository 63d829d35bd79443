import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { readStateFile } from '../../src/state/read.js';
import { StateStore } from '../../src/state/store.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const dir = await scratchRoot('hgw-read-');

await test('readStateFile', async (t) => {
  await t.test('reads what the store wrote', async () => {
    const path = join(dir, 'ok.json');
    const store = new StateStore({ path, heartbeatIntervalMs: 1000, log: captureLogger().log });
    store.setPlatform('alpha', { state: 'connected' });
    await store.commit();
    const doc = await readStateFile(path);
    assert.equal(doc.platforms.alpha?.state, 'connected');
    assert.equal(doc.write_seq, 1);
  });

  const bad: Array<[string, string | null]> = [
    ['a missing file', null],
    ['invalid JSON', '{"schema_version": 1,'],
    ['an unknown schema version', '{"schema_version": 999}'],
    ['a JSON value that is not an object', '42'],
  ];
  for (const [what, content] of bad) {
    await t.test(`rejects ${what} with GW_ERR_STATE_READ`, async () => {
      const path = join(dir, `bad-${what.replace(/\W+/g, '-')}.json`);
      if (content !== null) await writeFile(path, content);
      await assert.rejects(
        readStateFile(path),
        (err: Error & { code?: string; details?: unknown }) => {
          assert.equal(err.code, 'GW_ERR_STATE_READ');
          assert.equal((err.details as { path: string }).path, path);
          return true;
        },
      );
    });
  }
});

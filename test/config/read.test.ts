/**
 * readConfigDocument answers a repeated read of an unchanged file from its last parse (`run`
 * reads its config three times before it is running): each caller still gets data of its
 * own, and a file whose text changed is parsed again.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { readConfigDocument } from '../../src/config/read.js';
import { isGatewayError } from '../../src/errors.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-config-read-');

await test('a second read of the same text is equal data, not the same objects', async () => {
  const file = join(root, 'same.yaml');
  await writeFile(file, 'handler:\n  type: echo\nplatforms:\n  qqbot:\n    app_id: "1"\n');
  const first = readConfigDocument(file);
  (first.handler as Record<string, unknown>).type = 'changed by the first caller';
  first.extra = true;
  const second = readConfigDocument(file);
  assert.deepEqual(second, { handler: { type: 'echo' }, platforms: { qqbot: { app_id: '1' } } });
  assert.notEqual(second.platforms, readConfigDocument(file).platforms);
});

await test('a file whose text changed is parsed again', async () => {
  const file = join(root, 'edited.yaml');
  await writeFile(file, 'log_level: info\n');
  assert.deepEqual(readConfigDocument(file), { log_level: 'info' });
  await writeFile(file, 'log_level: debug\n');
  assert.deepEqual(readConfigDocument(file), { log_level: 'debug' });
  await writeFile(file, 'log_level: [unclosed\n');
  assert.throws(
    () => readConfigDocument(file),
    (err: unknown) => isGatewayError(err) && err.code === 'GW_ERR_CONFIG_PARSE',
  );
});

await test('the same text in another file is that file, read and parsed as its own', async () => {
  const a = join(root, 'a.yaml');
  const b = join(root, 'b.yaml');
  await writeFile(a, 'log_level: warn\n');
  await writeFile(b, 'log_level: warn\n');
  assert.deepEqual(readConfigDocument(a), { log_level: 'warn' });
  await writeFile(b, 'log_level: [bad\n');
  assert.throws(
    () => readConfigDocument(b),
    (err: unknown) => isGatewayError(err),
  );
});

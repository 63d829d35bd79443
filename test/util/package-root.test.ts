/**
 * packageRoot: the folder holding dist/src/cli/main.js, from the compiled tree, from a chunk
 * of the bundled CLI in a copy without package.json, and a fallback instead of a throw.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CLI_FROM_ROOT, packageRoot } from '../../src/util/package-root.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-package-root-');

await test('from the compiled tree: the project, where package.json and the CLI are', () => {
  const found = packageRoot();
  assert.ok(existsSync(join(found, 'package.json')), found);
  assert.ok(existsSync(join(found, CLI_FROM_ROOT)), found);
});

await test('from a chunk of the bundle in a bare copy: the copy (no package.json asked)', async () => {
  const copy = join(root, 'copy');
  await mkdir(join(copy, 'dist/src/cli/bundle'), { recursive: true });
  await writeFile(join(copy, CLI_FROM_ROOT), '');
  const chunk = pathToFileURL(join(copy, 'dist/src/cli/bundle/chunk-X.js')).href;
  assert.equal(packageRoot(chunk), copy);
});

await test('without any CLI above: the root as seen from the compiled tree, no throw', async () => {
  const lone = join(root, 'lone/dist/src/systemd');
  await mkdir(lone, { recursive: true });
  const module = pathToFileURL(join(lone, 'install.js')).href;
  assert.equal(packageRoot(module), resolve(lone, '../../..'));
});

/**
 * The npm package (issue 14): `npm pack` on a copy of the project builds dist/src in its
 * `prepack` and ships what the product needs at run time (the bundled CLI of
 * scripts/bundle-cli, the systemd units, README, docs, LICENSE), and nothing else: no tests,
 * benches, TypeScript sources, source maps or the compiled tree the bundle was made from.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packProject, REPO, type Packed } from '../support/package.js';
import { scratchRoot } from '../support/spawn-gateway.js';

/**
 * Bounds on the package, with room for growth: a test or bench slipping in breaks them. The
 * bundled CLI carries pino, yaml and zod (0.7 MB of its 1.65 MB), which the package therefore
 * no longer installs as dependencies (6 MB of node_modules). It is one CommonJS file, left
 * readable (not minified: its line numbers mean something in a stack trace), in which esbuild
 * indents each module that is evaluated only on demand.
 */
const MAX_TARBALL_BYTES = 500_000;
const MAX_UNPACKED_BYTES = 2_100_000;

const root = await scratchRoot('hgw-pack-');
let packed: Packed;

await test(
  'npm pack builds the package from the sources (prepack)',
  { timeout: 180_000 },
  async () => {
    packed = await packProject(root);
    assert.match(packed.filename, /^hermes-gateway-\d+\.\d+\.\d+\.tgz$/);
  },
);

await test('it holds what runs, and nothing of the tests, benches or sources', () => {
  const paths = packed.files.map((f) => f.path);
  const unwanted = paths.filter(
    (p) =>
      /^(dist\/(test|bench)|test|bench|scripts|src|\.ci)\//.test(p) ||
      /\.(ts|map)$/.test(p) ||
      p.endsWith('.tsbuildinfo'),
  );
  assert.deepEqual(unwanted, []);
  for (const need of [
    'package.json',
    'README.md',
    'LICENSE',
    'systemd/hermes-gateway.service',
    'docs/operations.md',
    'docs/errors.md',
    'docs/configuration.md',
    'dist/src/cli/main.js',
  ]) {
    assert.ok(paths.includes(need), `${need} is missing`);
  }
  // Every file of the bundle is there (an import of a file left out fails at run time only),
  // and nothing else under dist/ (no compiled module, no stale chunk of an earlier build).
  const meta = JSON.parse(
    readFileSync(join(packed.copy, 'dist/src/cli/bundle/meta.json'), 'utf8'),
  ) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const bundle = Object.keys(meta.outputs)
    .filter((output) => /\.c?js$/.test(output))
    .map((output) => `dist/src/cli/${output.replace(/^\.bundle\//, '')}`)
    .sort();
  assert.deepEqual(paths.filter((p) => p.startsWith('dist/')).sort(), bundle);
  // What the demo starts: the fake QQ server ships as product code, in the bundle.
  const bundled = Object.values(meta.outputs).flatMap((o) => Object.keys(o.inputs));
  assert.ok(bundled.includes('../fakes/qq/server.js'), 'the fake QQ server is bundled');
});

await test('the bin is in it, executable, with a node shebang', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    license: string;
  };
  assert.deepEqual(Object.keys(pkg.bin), ['hermes-gateway']);
  const bin = packed.files.find((f) => f.path === pkg.bin['hermes-gateway']);
  assert.ok(bin, 'the bin is packed');
  assert.equal(bin.mode & 0o111, 0o111, `mode ${bin.mode.toString(8)}`);
  const text = readFileSync(join(packed.copy, bin.path), 'utf8');
  assert.ok(text.startsWith('#!/usr/bin/env node\n'), text.slice(0, 40));
  // The license file says what package.json says.
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(join(REPO, 'LICENSE'), 'utf8'), /^MIT License\n/);
});

await test(`it stays small: under ${MAX_TARBALL_BYTES} B packed, ${MAX_UNPACKED_BYTES} B unpacked`, () => {
  assert.ok(packed.size < MAX_TARBALL_BYTES, `${packed.size} B`);
  assert.ok(packed.unpackedSize < MAX_UNPACKED_BYTES, `${packed.unpackedSize} B`);
  assert.equal(packed.entryCount, packed.files.length);
});

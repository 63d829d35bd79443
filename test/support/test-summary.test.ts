/**
 * The test run's summary (scripts/test): the product / test-tooling split of the count, and
 * the rule that under CI=true or HERMES_REQUIRE_SYSTEMD=1 a skipped systemd test fails the run.
 * The last test runs node's test runner for real with the reporter on a probe file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ResultLine } from './results-reporter.js';
import { report, subjectOf, summarize } from './test-summary.js';

const REPORTER = fileURLToPath(new URL('./results-reporter.js', import.meta.url));
const SUMMARY = fileURLToPath(new URL('./test-summary.js', import.meta.url));

function result(file: string, skip: string | true | null = null): ResultLine {
  return { file, name: 'a test', nesting: 0, outcome: 'pass', skip, todo: false };
}

await test('test files are product tests unless they test the fakes, chaos checkers or harness', () => {
  const root = '/home/ci/hermes-gateway/dist/test';
  const cases: Array<[string, string]> = [
    [`${root}/fakes/qq/server.test.js`, 'fakes'],
    [`${root}/chaos/checkers.test.js`, 'chaos checkers'],
    [`${root}/systemd/harness.test.js`, 'harness'],
    [`${root}/support/test-summary.test.js`, 'harness'],
    [`${root}/chaos/chaos.test.js`, 'product'],
    [`${root}/systemd/service-lifecycle.test.js`, 'product'],
    [`${root}/adapters/qqbot/close-codes.test.js`, 'product'],
    [`/srv/test/checkout/dist/test/fakes/qq/server.test.js`, 'fakes'],
  ];
  for (const [file, subject] of cases) assert.equal(subjectOf(file), subject, file);
});

await test('a skipped systemd test fails the run under CI=true or HERMES_REQUIRE_SYSTEMD=1 only', () => {
  const summary = summarize([
    result('/r/dist/test/systemd/service-lifecycle.test.js'),
    result('/r/dist/test/systemd/service-install.test.js', 'not root'),
    result('/r/dist/test/fakes/qq/server.test.js'),
    result('/r/dist/test/state/store.test.js', 'elsewhere'),
  ]);
  assert.deepEqual(summary.bySubject, {
    product: 3,
    fakes: 1,
    'chaos checkers': 0,
    harness: 0,
  });
  assert.equal(summary.skipped, 2);
  assert.equal(summary.systemd.ran, 1);
  assert.equal(summary.systemd.skipped.length, 1);
  assert.equal(report(summary, {}).code, 0);
  assert.equal(report(summary, { CI: 'false' }).code, 0);
  assert.equal(report(summary, { CI: 'true' }).code, 1);
  assert.equal(report(summary, { HERMES_REQUIRE_SYSTEMD: '1' }).code, 1);
  const lines = report(summary, { CI: 'true' }).lines;
  assert.ok(
    lines.some((l) => l.includes('systemd/service-install.test.js') && l.includes('not root')),
  );
  // Skips outside the systemd tests are counted, not failed.
  const elsewhere = summarize([result('/r/dist/test/state/store.test.js', 'elsewhere')]);
  assert.equal(report(elsewhere, { CI: 'true' }).code, 0);
});

await test('end to end: node --test with the reporter, then the summary, on a probe file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-summary-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const probeDir = join(dir, 'test', 'systemd');
  await mkdir(probeDir, { recursive: true });
  const probe = join(probeDir, 'probe.test.mjs');
  // A subtest made by a helper elsewhere (like test/support/concurrent.ts) still counts for
  // the file that runs it.
  await mkdir(join(dir, 'test', 'support'));
  await writeFile(
    join(dir, 'test', 'support', 'helper.mjs'),
    "export const sub = (t) => t.test('made by a helper', () => {});\n",
  );
  await writeFile(
    probe,
    [
      "import { test } from 'node:test';",
      "import { sub } from '../support/helper.mjs';",
      "test('runs', async (t) => { await sub(t); });",
      "test('cannot run here', { skip: 'no user manager' }, () => {});",
      '',
    ].join('\n'),
  );
  const results = join(dir, 'results.jsonl');
  // A test runner inside a test: without this variable the child would report to us.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.CI;
  delete env.HERMES_REQUIRE_SYSTEMD;
  const run = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-reporter=tap',
      '--test-reporter-destination=stdout',
      `--test-reporter=${REPORTER}`,
      `--test-reporter-destination=${results}`,
      probe,
    ],
    { env, encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const lines = (await readFile(results, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 3);

  const summary = (extra: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [SUMMARY, results], {
      env: { ...env, ...extra },
      encoding: 'utf8',
      timeout: 30_000,
    });
  const relaxed = summary({});
  assert.equal(relaxed.status, 0, relaxed.stdout + relaxed.stderr);
  assert.match(relaxed.stdout, /tests 3: product 3, test tooling 0/);
  assert.match(relaxed.stdout, /systemd tests: 2 ran, 1 skipped/);
  const ci = summary({ CI: 'true' });
  assert.equal(ci.status, 1, ci.stdout + ci.stderr);
  assert.match(ci.stdout, /cannot run here \(no user manager\)/);
  assert.equal(summary({ HERMES_REQUIRE_SYSTEMD: '1' }).status, 1);
});

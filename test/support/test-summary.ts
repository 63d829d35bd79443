/**
 * Prints what a test run means (`node dist/test/support/test-summary.js <results.jsonl>`,
 * called by scripts/test with the output of results-reporter.js):
 * - the test count split into tests of the product and tests of the test tooling (the fakes,
 *   the chaos soak's checkers, the systemd harness), so the number means what it says;
 * - how many systemd tests ran and how many were skipped. Under `CI=true`, or with
 *   `HERMES_REQUIRE_SYSTEMD=1` anywhere, a skipped systemd test is a failure (exit 1): a
 *   machine without the rights to run them must not go green without them.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ResultLine } from './results-reporter.js';

/** What a test file exercises, from where it lives (paths relative to `test/`). */
export type Subject = 'product' | 'fakes' | 'chaos checkers' | 'harness';

/** Test files whose subject is the test tooling; every other test file tests the product. */
const TOOLING: ReadonlyArray<readonly [RegExp, Subject]> = [
  [/^fakes\//, 'fakes'],
  [/^chaos\/checkers\.test\.[jt]s$/, 'chaos checkers'],
  [/^systemd\/harness\.test\.[jt]s$/, 'harness'],
  [/^support\//, 'harness'],
];

/** The path below the `test/` directory (built or not), or null outside it. */
export function testPath(file: string | null): string | null {
  if (file === null) return null;
  const normalized = file.replace(/^file:\/\//, '').replaceAll('\\', '/');
  // The built tree first (a checkout may itself live under a directory named test/).
  const match = /\/dist\/test\/(.+)$/.exec(normalized) ?? /(?:^|.*\/)test\/(.+)$/.exec(normalized);
  return match === null ? null : match[1]!;
}

export function subjectOf(file: string | null): Subject {
  const path = testPath(file);
  if (path === null) return 'product';
  for (const [pattern, subject] of TOOLING) if (pattern.test(path)) return subject;
  return 'product';
}

export function isSystemdTest(file: string | null): boolean {
  return testPath(file)?.startsWith('systemd/') === true;
}

export interface Summary {
  total: number;
  bySubject: Record<Subject, number>;
  skipped: number;
  systemd: { ran: number; skipped: ResultLine[] };
}

export function summarize(results: readonly ResultLine[]): Summary {
  const bySubject: Record<Subject, number> = {
    product: 0,
    fakes: 0,
    'chaos checkers': 0,
    harness: 0,
  };
  const systemd = { ran: 0, skipped: [] as ResultLine[] };
  let skipped = 0;
  for (const result of results) {
    bySubject[subjectOf(result.file)] += 1;
    if (result.skip !== null) skipped += 1;
    if (!isSystemdTest(result.file)) continue;
    if (result.skip !== null) systemd.skipped.push(result);
    else systemd.ran += 1;
  }
  return { total: results.length, bySubject, skipped, systemd };
}

/** Whether skipped systemd tests fail the run, and why. */
export function systemdRequired(env: NodeJS.ProcessEnv): string | null {
  if (env.HERMES_REQUIRE_SYSTEMD === '1') return 'HERMES_REQUIRE_SYSTEMD=1';
  if (env.CI === 'true') return 'CI=true';
  return null;
}

/** The lines to print and the exit code. */
export function report(
  summary: Summary,
  env: NodeJS.ProcessEnv,
): { lines: string[]; code: number } {
  const { bySubject } = summary;
  const tooling = summary.total - bySubject.product;
  const lines = [
    `tests ${summary.total}: product ${bySubject.product}, test tooling ${tooling} ` +
      `(fakes ${bySubject.fakes}, chaos checkers ${bySubject['chaos checkers']}, harness ${bySubject.harness}); skipped ${summary.skipped}`,
    `systemd tests: ${summary.systemd.ran} ran, ${summary.systemd.skipped.length} skipped`,
  ];
  const required = systemdRequired(env);
  if (required === null || summary.systemd.skipped.length === 0) return { lines, code: 0 };
  lines.push(`FAIL: systemd tests must run under ${required}, but these were skipped:`);
  for (const test of summary.systemd.skipped) {
    const reason = test.skip === true ? 'no reason given' : test.skip;
    lines.push(`  - ${testPath(test.file) ?? '?'}: ${test.name} (${reason})`);
  }
  return { lines, code: 1 };
}

export function parseResults(text: string): ResultLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ResultLine);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: test-summary.js <results.jsonl>\n');
    process.exit(2);
  }
  const { lines, code } = report(summarize(parseResults(readFileSync(file, 'utf8'))), process.env);
  for (const line of lines) process.stdout.write(`==> ${line}\n`);
  process.exit(code);
}

/**
 * A node:test reporter (`--test-reporter=dist/test/support/results-reporter.js`) that writes
 * one JSON line per finished test: its file, name, nesting, outcome and skip reason.
 * scripts/test feeds that to test-summary.js, which splits the count and enforces the
 * "required tests must not skip" rules.
 */

/** One line of the reporter's output. */
export interface ResultLine {
  /** The test file (for a subtest: its top-level test's file). */
  file: string | null;
  name: string;
  nesting: number;
  outcome: 'pass' | 'fail';
  /** The skip reason (`true` when none was given); null when the test ran. */
  skip: string | true | null;
  todo: boolean;
}

interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  skip?: string | boolean;
  todo?: string | boolean;
}

interface TestEvent {
  type: string;
  data: TestEventData;
}

/**
 * node reports a test's file as where `test()` / `t.test()` was called, which for subtests
 * made by a helper (test/support/concurrent.ts) is the helper's file. A test file's events
 * arrive together, subtests before their top-level test, and top-level tests are declared in
 * the test file itself: so each subtest is written with its top-level test's file.
 */
export default async function* resultsReporter(
  source: AsyncIterable<TestEvent>,
): AsyncGenerator<string> {
  let pending: ResultLine[] = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const line: ResultLine = {
      file: data.file ?? null,
      name: data.name,
      nesting: data.nesting,
      outcome: event.type === 'test:pass' ? 'pass' : 'fail',
      skip: data.skip === undefined || data.skip === false ? null : data.skip,
      todo: data.todo !== undefined && data.todo !== false,
    };
    pending.push(line);
    if (line.nesting > 0) continue;
    for (const sub of pending) yield `${JSON.stringify({ ...sub, file: line.file })}\n`;
    pending = [];
  }
  for (const sub of pending) yield `${JSON.stringify(sub)}\n`;
}

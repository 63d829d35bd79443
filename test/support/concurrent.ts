import type { TestContext } from 'node:test';

type TestFn = (t: TestContext) => void | Promise<void>;

/**
 * Starts subtests of `t` without awaiting each one, so they run concurrently up to the
 * parent's `concurrency` option; `done()` waits for all of them.
 */
export function concurrent(t: TestContext): {
  it(name: string, fn: TestFn): void;
  it(name: string, options: { timeout?: number }, fn: TestFn): void;
  done(): Promise<void>;
} {
  const started: Array<Promise<void>> = [];
  return {
    it(name: string, a: TestFn | { timeout?: number }, b?: TestFn): void {
      started.push(typeof a === 'function' ? t.test(name, a) : t.test(name, a, b));
    },
    async done(): Promise<void> {
      await Promise.all(started);
    },
  };
}

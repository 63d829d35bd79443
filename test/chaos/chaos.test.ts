/**
 * The chaos soak as part of the suite (GitHub issue 6): 45 seconds of faults with a fixed
 * seed against the built gateway, which must end with zero invariant violations. The soak
 * runs as its own process (dist/test/chaos/main.js), exactly as `scripts/chaos` runs it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { SoakSummary } from './soak.js';

const ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));
const SEED = 20250601;
const SECONDS = 45;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChaos(args: string[], timeoutMs: number): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [ENTRY, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    // SIGINT first: the soak cleans up (kills its gateway, closes the fake) on SIGINT.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    const hard = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

await test('chaos soak', async (t) => {
  await t.test(
    `${SECONDS} s of seeded faults (seed ${SEED}) end with zero invariant violations`,
    { timeout: 115_000 },
    async () => {
      const run = await runChaos(['--seconds', String(SECONDS), '--seed', String(SEED)], 100_000);
      const line = run.stdout.split('\n').find((l) => l.startsWith('{"chaos_summary":true'));
      const report = `exit ${run.code ?? run.signal}\n${run.stdout.replace(/^\{"chaos_summary".*$/m, '')}\n${run.stderr.slice(-4000)}`;
      assert.ok(line !== undefined, `no summary line:\n${report}`);
      const summary = JSON.parse(line) as SoakSummary;
      assert.equal(summary.seed, SEED);
      assert.equal(summary.violations.count, 0, `invariant violations:\n${report}`);
      assert.equal(run.code, 0, report);
      // The run did what it is for: faults of every class, restarts, and traffic.
      const injected = summary.faults.injected;
      for (const kind of ['close_resume', 'close_identify', 'close_fatal', 'kill9', 'half_open']) {
        assert.ok((injected[kind] ?? 0) > 0, `no ${kind} fault was injected:\n${report}`);
      }
      assert.ok(summary.restarts.total >= 2, report);
      assert.ok(summary.recoveries.resumes_accepted > 0, report);
      assert.ok(summary.events.replied > 50, report);
      assert.ok(summary.recovery_after_quiet_ms !== null, report);
    },
  );
});

/**
 * Time from an adapter's fatal to the process's exit (issue 2's closing figure).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/fatal-exit.js [--runs N]
 *
 * Spawns the real CLI (with the scripted test platform) whose adapter returns without a stop
 * request 100 ms after it connected: the original silent-death bug. Measures, per run, from
 * the `fatal` log line's timestamp (written the moment the runner judged the return) to the
 * child's exit as the parent sees it, and checks that `fatal` was persisted first.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CLI = fileURLToPath(new URL('../test/support/gateway-cli.js', import.meta.url));

interface Sample {
  fatalToExitMs: number;
  exitCode: number | null;
  persisted: boolean;
}

async function once(dir: string, i: number): Promise<Sample> {
  const state = join(dir, `state-${i}.json`);
  const config = join(dir, `config-${i}.yaml`);
  await writeFile(
    config,
    `state_file: ${state}\nplatforms:\n  scripted:\n    then: return\n    after_ms: 100\n`,
  );
  const child = spawn(process.execPath, [CLI, 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH ?? '' },
  });
  let fatalAt: number | null = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as { time?: string; code?: string; msg?: string };
    if (fatalAt === null && parsed.msg?.startsWith('fatal:') && parsed.time) {
      fatalAt = Date.parse(parsed.time);
    }
  });
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const exitAt = Date.now();
  const doc = JSON.parse(await readFile(state, 'utf8')) as { gateway: { state: string } };
  if (fatalAt === null) throw new Error(`run ${i}: no fatal line`);
  return { fatalToExitMs: exitAt - fatalAt, exitCode, persisted: doc.gateway.state === 'fatal' };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const dir = await mkdtemp(join(tmpdir(), 'hermes-bench-fatal-'));
  try {
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await once(dir, i));
    const ms = samples.map((s) => s.fatalToExitMs).sort((a, b) => a - b);
    const result = {
      runs,
      median_ms: quantile(ms, 0.5),
      p90_ms: quantile(ms, 0.9),
      max_ms: ms[ms.length - 1],
      all_exit_1: samples.every((s) => s.exitCode === 1),
      all_fatal_persisted: samples.every((s) => s.persisted),
    };
    console.log('adapter fatal (silent return) -> process exit');
    console.log(
      `  runs ${runs}: median ${result.median_ms} ms, p90 ${result.p90_ms} ms, max ${result.max_ms} ms`,
    );
    console.log(
      `  every exit code 1: ${result.all_exit_1}; fatal persisted before exit: ${result.all_fatal_persisted}`,
    );
    console.log(JSON.stringify(result));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

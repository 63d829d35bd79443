/**
 * Runs a soak entry point (the chaos soak, the crash soak) as its own node process, exactly as
 * its script does, and collects its output. Past `timeoutMs` it gets SIGINT (a soak kills its
 * gateways and closes its fake on SIGINT), and SIGKILL 10 s later.
 */
import { spawn } from 'node:child_process';

export interface SoakRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runSoakProcess(entry: string, args: string[], timeoutMs: number): Promise<SoakRun> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The soak is a program, not a test file: node's test runner must not take it over.
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [entry, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    const hard = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The npm package as a user gets it: `npm pack` run on a copy of the project (so its
 * `prepack` build cannot disturb the dist/ other tests run from), and `npm install -g` of the
 * tarball into a temporary prefix.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, symlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { HARNESS_SCRIPT } from './systemd-harness.js';

/** The project's root (the worktree the tests were built from). */
export const REPO = join(HARNESS_SCRIPT, '..', '..');

export interface PackedFile {
  path: string;
  size: number;
  mode: number;
}

/** What `npm pack --json` reports for one tarball. */
export interface Packed {
  tarball: string;
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: PackedFile[];
  /** The copy of the project that was packed. */
  copy: string;
}

export interface CommandOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Runs a command to completion; rejects only when it outlives `timeoutMs` (it is killed). */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandOutcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: AbortSignal.timeout(options.timeoutMs),
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err) =>
      reject(
        new Error(
          err.name === 'AbortError'
            ? `${command} ${args.join(' ')} still running after ${options.timeoutMs} ms\n${stderr}`
            : `cannot run ${command}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, durationMs: Date.now() - started }),
    );
  });
}

/** What is not part of the project's sources: build output, installed modules, git. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git']);

/**
 * Copies the project into `dir/project` (sources only; node_modules linked for the build) and
 * packs it there: `npm pack` runs `prepack`, which builds dist/src from scratch. Resolves with
 * npm's own account of the tarball; rejects when npm fails.
 */
export async function packProject(dir: string, timeoutMs = 180_000): Promise<Packed> {
  const copy = join(dir, 'project');
  await cp(REPO, copy, {
    recursive: true,
    filter: (source) => !NOT_COPIED.has(relative(REPO, source).split('/')[0] ?? ''),
  });
  await symlink(join(REPO, 'node_modules'), join(copy, 'node_modules'));
  const out = join(dir, 'out');
  await mkdir(out);
  const result = await runCommand('npm', ['pack', '--json', '--pack-destination', out], {
    cwd: copy,
    timeoutMs,
  });
  if (result.code !== 0) throw new Error(`npm pack exited ${result.code}:\n${result.stderr}`);
  // Lifecycle output (prepack's) goes to stderr; stdout holds the JSON alone.
  const [report] = JSON.parse(result.stdout) as Array<Omit<Packed, 'tarball' | 'copy'>>;
  if (!report) throw new Error(`npm pack printed no report:\n${result.stdout}`);
  return { ...report, tarball: join(out, report.filename), copy };
}

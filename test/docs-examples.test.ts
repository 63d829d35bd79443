/**
 * Every code block of README.md and docs/**.md is exercised, so the docs cannot drift from
 * the product: a ```yaml block is a gateway config (whole, or top-level sections of one) and
 * must pass the real `hermes-gateway check`; every `hermes-gateway ...` line of a ```sh block
 * must name a real command with real flags (the commander program itself), `npm run X` a real
 * script and `bash scripts/X` a real file; a ```json block must parse (the state-file sample
 * must also read as a state file). Any other block must say what it is with an inert info
 * string (text, ini, jsonc): a block without one fails, so nothing is skipped silently.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { test } from 'node:test';
import type { Command, Option } from 'commander';
import { parse, stringify } from 'yaml';
import { defaultRegistry } from '../src/adapters/registry.js';
import { buildProgram, runCli } from '../src/cli/program.js';
import { readStateFile } from '../src/state/read.js';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');

/** Info strings of blocks that are neither config nor command: shown, not run. */
const INERT = new Set(['text', 'ini', 'jsonc']);
/** Top-level keys of a gateway config (src/config/schema.ts). */
const TOP_LEVEL = new Set([
  'state_file',
  'log_level',
  'log_format',
  'shutdown_timeout_ms',
  'heartbeat_interval_ms',
  'handler',
  'control',
  'platforms',
]);
/** What a `handler`- or `control`-only example runs with: a QQ bot, as in the quick start. */
const BASE_PLATFORMS = {
  qqbot: { app_id: '102000000', client_secret: '${DOCS_EXAMPLE_QQ_SECRET}' },
};
// Shaped like a Telegram bot token (<bot id>:<secret>), which other platforms take as any string.
const SECRET_VALUE = '123456789:docs-example-secret-0123456789abcdef';

interface Block {
  file: string;
  line: number;
  info: string;
  body: string;
}

function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files.sort();
}

/** The fenced blocks of one markdown text (``` fences; the info string's first word). */
function fencedBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^(\s*)```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i += 1) body.push(lines[i]!);
    assert.ok(i < lines.length, `${file}:${start + 1}: a code block is never closed`);
    blocks.push({
      file,
      line: start + 1,
      info: open[2]!.trim().split(/\s+/)[0] ?? '',
      body: body.join('\n'),
    });
  }
  return blocks;
}

const ALL_BLOCKS = markdownFiles().flatMap((file) =>
  fencedBlocks(file, readFileSync(join(ROOT, file), 'utf8')),
);
const where = (block: Block): string => `${block.file}:${block.line}`;

// ---------------------------------------------------------------------------------------------
// Shell lines.

/** Words of one shell command, quotes removed (enough for documentation lines). */
function shellWords(command: string): string[] {
  const words: string[] = [];
  for (const match of command.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) {
    words.push(match[1] ?? match[2] ?? match[3]!);
  }
  return words;
}

/** The commands of a sh block: continuation lines joined, comments dropped, split on && ; |. */
function shellCommands(body: string): string[] {
  const commands: string[] = [];
  const joined = body.replace(/\\\n/g, ' ');
  let heredoc: string | null = null;
  for (const raw of joined.split('\n')) {
    if (heredoc !== null) {
      if (raw.trim() === heredoc) heredoc = null;
      continue;
    }
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const here = /<<-?\s*'?"?(\w+)/.exec(line);
    if (here) heredoc = here[1]!;
    for (const part of line.split(/&&|\|\||;|\|/)) if (part.trim()) commands.push(part.trim());
  }
  return commands;
}

function findOption(command: Command, flag: string): Option | undefined | 'help' {
  if (flag === '-h' || flag === '--help') return 'help';
  return command.options.find((o) => o.short === flag || o.long === flag);
}

/**
 * Checks `args` (what follows `hermes-gateway`) against the program; returns what is wrong,
 * or null. Placeholders in CAPITALS (CONFIG, N) stand for values.
 */
function checkInvocation(program: Command, args: string[]): string | null {
  if (args.length === 0) return null;
  if (args[0] === '--help' || args[0] === '-h' || args[0] === '--version' || args[0] === '-V') {
    return null;
  }
  const command = program.commands.find(
    (c) => c.name() === args[0] || c.aliases().includes(args[0]!),
  );
  if (!command) return `no command "${args[0]}"`;
  const positional: string[] = [];
  for (let i = 1; i < args.length; i += 1) {
    const word = args[i]!;
    if (!word.startsWith('-') || word === '-') {
      positional.push(word);
      continue;
    }
    const [flag, inline] = word.startsWith('--') ? word.split('=', 2) : [word, undefined];
    const option = findOption(command, flag);
    if (option === undefined) return `${command.name()}: no flag ${flag}`;
    if (option === 'help') continue;
    if (option.required && inline === undefined) {
      if (i + 1 >= args.length) return `${command.name()} ${flag}: the value is missing`;
      i += 1;
    }
    if (!option.required && !option.optional && inline !== undefined) {
      return `${command.name()} ${flag} takes no value`;
    }
  }
  const declared = command.registeredArguments;
  const required = declared.filter((a) => a.required).length;
  const variadic = declared.some((a) => a.variadic);
  if (positional.length < required) return `${command.name()}: ${required} arguments needed`;
  if (!variadic && positional.length > declared.length) {
    return `${command.name()}: unexpected argument "${positional[declared.length]}"`;
  }
  return null;
}

const program = buildProgram({
  registry: { all: defaultRegistry, forPlatforms: defaultRegistry },
  io: { out: () => undefined, err: () => undefined, env: {} },
  result: { code: 0 },
});
const scripts = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

/** What is wrong with one shell command, or null; commands of other programs pass. */
function checkShellCommand(command: string): string | null {
  const words = shellWords(command);
  if (words[0] === 'hermes-gateway') return checkInvocation(program, words.slice(1));
  if (words[0] === 'node' && words[1] === 'dist/src/cli/main.js') {
    return checkInvocation(program, words.slice(2));
  }
  if (words[0] === 'npm' && words[1] === 'run') {
    return words[2] !== undefined && words[2] in scripts ? null : `no npm script "${words[2]}"`;
  }
  if (words[0] === 'bash' && words[1]?.startsWith('scripts/')) {
    return existsSync(join(ROOT, words[1])) ? null : `no file ${words[1]}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Configs.

/** Runs the real `hermes-gateway check` on one yaml block; resolves with what went wrong. */
async function checkConfigBlock(block: Block, dir: string): Promise<string | null> {
  const doc = parse(block.body) as unknown;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'not a YAML mapping';
  const unknown = Object.keys(doc).filter((key) => !TOP_LEVEL.has(key));
  if (unknown.length > 0) {
    return `not a gateway config: top-level ${unknown.join(', ')} (nest it, or mark it text)`;
  }
  const config = { platforms: BASE_PLATFORMS, ...(doc as Record<string, unknown>) };
  const credentials = join(dir, 'credentials');
  const runtime = join(dir, 'runtime');
  await mkdir(credentials, { recursive: true });
  await mkdir(runtime, { recursive: true });
  // The secret files and systemd credentials the example names, created for it.
  const provide = async (node: unknown): Promise<void> => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (typeof value === 'string' && key.endsWith('_file')) {
        const path = isAbsolute(value) ? join(dir, 'root', value) : join(dir, value);
        // An absolute path is re-rooted under the scratch dir: the test must not touch /etc.
        if (isAbsolute(value)) (node as Record<string, unknown>)[key] = path;
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, `${SECRET_VALUE}\n`, { mode: 0o600 });
      } else if (typeof value === 'string' && key.endsWith('_credential')) {
        await writeFile(join(credentials, value), SECRET_VALUE, { mode: 0o600 });
      } else {
        await provide(value);
      }
    }
  };
  await provide(config);
  const file = join(dir, 'config.yaml');
  await writeFile(file, stringify(config), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'xdg-config'),
    XDG_STATE_HOME: join(dir, 'xdg-state'),
    XDG_RUNTIME_DIR: runtime,
    CREDENTIALS_DIRECTORY: credentials,
  };
  // Every ${VAR} the example names: a directory for *_DIR, else a secret-looking value.
  for (const match of block.body.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = match[1]!;
    env[name] ??= name.endsWith('_DIR')
      ? runtime
      : // A Telegram webhook secret_token allows only A-Z a-z 0-9 _ - (no ':').
        name.endsWith('_WEBHOOK_SECRET')
        ? 'docs-example-webhook-secret_0123456789'
        : SECRET_VALUE;
  }
  env.DOCS_EXAMPLE_QQ_SECRET = SECRET_VALUE;
  const out: string[] = [];
  const code = await runCli(['node', 'hermes-gateway', 'check', '--config', file], {
    io: { out: (s) => out.push(s), err: (s) => out.push(s), env },
  });
  return code === 0 ? null : `check exits ${code}: ${out.join(' ')}`;
}

// ---------------------------------------------------------------------------------------------

await test('the docs have code blocks to check', () => {
  assert.ok(ALL_BLOCKS.filter((b) => b.info === 'yaml').length >= 5);
  assert.ok(ALL_BLOCKS.filter((b) => b.info === 'sh').length >= 3);
});

await test('every code block says what it is', () => {
  const unmarked = ALL_BLOCKS.filter(
    (b) => b.info !== 'yaml' && b.info !== 'sh' && b.info !== 'json' && !INERT.has(b.info),
  ).map((b) => `${where(b)} \`\`\`${b.info}`);
  assert.deepEqual(unmarked, []);
});

await test('every yaml block is a config `hermes-gateway check` accepts', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hgw-docs-'));
  try {
    const failures: string[] = [];
    for (const [i, block] of ALL_BLOCKS.filter((b) => b.info === 'yaml').entries()) {
      const problem = await checkConfigBlock(block, join(root, String(i)));
      if (problem) failures.push(`${where(block)}: ${problem}`);
    }
    assert.deepEqual(failures, []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

await test('every hermes-gateway line of a sh block is a real command with real flags', () => {
  const failures: string[] = [];
  let checked = 0;
  for (const block of ALL_BLOCKS.filter((b) => b.info === 'sh')) {
    for (const command of shellCommands(block.body)) {
      if (/^(hermes-gateway|node dist\/src\/cli\/main\.js)\b/.test(command)) checked += 1;
      const problem = checkShellCommand(command);
      if (problem) failures.push(`${where(block)}: ${command}: ${problem}`);
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(checked >= 5, `only ${checked} gateway command lines found`);
});

await test('every json block parses; the state-file sample reads as a state file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hgw-docs-json-'));
  try {
    for (const [i, block] of ALL_BLOCKS.filter((b) => b.info === 'json').entries()) {
      assert.doesNotThrow(() => JSON.parse(block.body), where(block));
      if (block.file === join('docs', 'state-file.md')) {
        const path = join(root, `${i}.json`);
        await writeFile(path, block.body);
        await readStateFile(path);
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

await test('every relative link points at a file and heading that exist', () => {
  const broken: string[] = [];
  for (const file of markdownFiles()) {
    const text = readFileSync(join(ROOT, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const linked = path === '' ? file : join(dirname(file), path);
      if (!existsSync(join(ROOT, linked))) broken.push(`${file}: ${target} (no file)`);
      else if (anchor !== undefined && !anchorsOf(linked).has(anchor)) {
        broken.push(`${file}: ${target} (no heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

await test('the checker itself catches what it must', async (t) => {
  await t.test('a wrong command, flag, value or argument count', () => {
    assert.equal(checkInvocation(program, ['status', '--json']), null);
    assert.equal(checkInvocation(program, ['logs', '-p', 'err', '-n', '50']), null);
    assert.equal(checkInvocation(program, ['send', 'qqbot:group:X', 'hello', 'there']), null);
    assert.match(checkInvocation(program, ['stauts']) ?? '', /no command/);
    assert.match(checkInvocation(program, ['status', '--jsn']) ?? '', /no flag/);
    assert.match(checkInvocation(program, ['logs', '-p']) ?? '', /value is missing/);
    assert.match(checkInvocation(program, ['check', 'extra']) ?? '', /unexpected argument/);
    assert.match(checkInvocation(program, ['send', 'qqbot:group:X']) ?? '', /arguments needed/);
  });

  await t.test('shell lines: comments, && chains, continuations and heredocs', () => {
    assert.deepEqual(
      shellCommands(
        'npm ci && npm run demo   # a comment\nhermes-gateway logs \\\n  -f\ncat > x <<EOF\nnot a command\nEOF',
      ),
      ['npm ci', 'npm run demo', 'hermes-gateway logs    -f', 'cat > x <<EOF'],
    );
    assert.equal(checkShellCommand('npm run demo'), null);
    assert.match(checkShellCommand('npm run dmeo') ?? '', /no npm script/);
    assert.match(checkShellCommand('bash scripts/tset') ?? '', /no file/);
  });

  await t.test('a config block with an unknown key, or a fragment, fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hgw-docs-self-'));
    try {
      const block = (body: string): Block => ({ file: 'x.md', line: 1, info: 'yaml', body });
      assert.equal(await checkConfigBlock(block('log_format: text\n'), join(dir, '1')), null);
      assert.match(
        (await checkConfigBlock(block('log_format: txt\n'), join(dir, '2'))) ?? '',
        /check exits 78/,
      );
      assert.match(
        (await checkConfigBlock(block('client_secret: x\n'), join(dir, '3'))) ?? '',
        /not a gateway config/,
      );
      // A control socket outside $XDG_RUNTIME_DIR: `run` refuses it, so `check` does too.
      assert.match(
        (await checkConfigBlock(
          block('control:\n  listen: /tmp/elsewhere.sock\n  token: ${T}\n'),
          join(dir, '4'),
        )) ?? '',
        /check exits 78/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  await t.test('heading anchors as GitHub makes them', () => {
    assert.equal(slug('Logs and the journal'), 'logs-and-the-journal');
    assert.equal(slug('The state file: `gateway_state.json`'), 'the-state-file-gateway_statejson');
  });

  await t.test('an unmarked block is reported', () => {
    const blocks = fencedBlocks('x.md', 'text\n```\nplain\n```\n');
    assert.deepEqual(
      blocks.map((b) => [b.line, b.info]),
      [[2, '']],
    );
    assert.ok(!INERT.has(blocks[0]!.info));
  });
});

/** Usage conventions of the CLI: exit 2 for usage errors, 0 for --help on every command. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { concurrent } from '../support/concurrent.js';
import {
  killAllChildren,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
} from '../support/spawn-gateway.js';

const dir = await scratchRoot('hgw-usage-');
const env = sandboxEnv(dir);

/** Command names listed under "Commands:" in the top-level help. */
function commandsIn(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!);
}

await test('CLI usage', { concurrency: 3 }, async (t) => {
  t.after(killAllChildren);
  const c = concurrent(t);
  c.it('--help and -h exit 0 and list the core commands', async () => {
    const [long, short] = await Promise.all([
      runGatewayCli(['--help'], { env }),
      runGatewayCli(['-h'], { env }),
    ]);
    assert.equal(long.code, 0);
    assert.equal(short.code, 0);
    const commands = commandsIn(long.stdout);
    for (const name of ['run', 'status', 'check']) assert.ok(commands.includes(name), name);
  });

  c.it('--help on every command exits 0 (and `help <command>` too)', async () => {
    const help = await runGatewayCli(['--help'], { env });
    const commands = commandsIn(help.stdout);
    assert.ok(commands.length >= 3, help.stdout);
    const calls = commands.flatMap((name) => [
      [name, '--help'],
      // `help help` is commander asking for help on a non-command: not a convention to keep.
      ...(name === 'help' ? [] : [['help', name]]),
    ]);
    // A few at a time: twenty CLIs started at once on a small machine wait on each other
    // longer than a single one's deadline, and that is not what this test is about.
    const results: Array<{ args: string; r: Awaited<ReturnType<typeof runGatewayCli>> }> = [];
    for (let i = 0; i < calls.length; i += 4) {
      const batch = calls.slice(i, i + 4);
      results.push(
        ...(await Promise.all(
          batch.map((args) =>
            runGatewayCli(args, { env }).then((r) => ({ args: args.join(' '), r })),
          ),
        )),
      );
    }
    for (const { args, r } of results) {
      assert.equal(r.code, 0, `${args}: ${r.stderr}`);
      assert.match(r.stdout, /Usage:/, args);
    }
  });

  c.it('--version exits 0 and prints the version', async () => {
    const r = await runGatewayCli(['--version'], { env });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });

  c.it('an unknown command exits 2', async () => {
    const r = await runGatewayCli(['frobnicate'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /frobnicate/);
  });

  c.it('no command at all exits 2', async () => {
    assert.equal((await runGatewayCli([], { env })).code, 2);
  });

  c.it('an unknown flag exits 2, on the program and on every core command', async () => {
    const results = await Promise.all(
      [['--bogus'], ['run', '--bogus'], ['status', '--bogus'], ['check', '--bogus']].map((args) =>
        runGatewayCli(args, { env }).then((r) => ({ args, r })),
      ),
    );
    for (const { args, r } of results) {
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /--bogus/);
    }
  });

  c.it('an option missing its value exits 2', async () => {
    assert.equal((await runGatewayCli(['run', '--config'], { env })).code, 2);
  });
  await c.done();
});

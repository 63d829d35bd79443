/**
 * What a person sees in the journal (issue 10, item 5): the gateway installed as a unit under
 * a REAL user manager and journald (scripts/systemd-harness), with the default
 * `log_format: auto`, so journald's stream makes it write text lines.
 *
 *   - a user message with newlines, echoed by a failing command handler into its stderr,
 *     is one journal entry (one line), not three;
 *   - the adapter goes fatal (the platform refuses every reconnect): `journalctl -p err -o cat`
 *     shows the fatal as one readable text line carrying its code, and no JSON.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  FakeQQProcess,
  gatewayCli,
  gatewayConfig,
  journalUntil,
  pollState,
  removeGatewayUnit,
  scenarioSkipReason,
  showUs,
  writeDropIn,
} from '../support/service-scenario.js';
import { parseLogLine, parseTextLine } from '../support/log-lines.js';
import { SystemdHarness } from '../support/systemd-harness.js';

const skip = await scenarioSkipReason();
const WAIT_MS = 20_000;
const SECRET = `hgw-journal-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
/** What the user sends: three lines, one of them dressed as a journald priority prefix. */
const USER_TEXT = 'first line of the user\n<3>second line\nthird "quoted" line';

/** A bot program that chokes on its input: writes the user's text to stderr and exits 3. */
const FAILING_BOT = `
let input = '';
process.stdin.setEncoding('utf8').on('data', (c) => (input += c)).on('end', () => {
  process.stderr.write(JSON.parse(input).text);
  process.exit(3);
});
`;

await test('journal lines a person can read', { skip, timeout: 120_000 }, async (t) => {
  const harness = await SystemdHarness.start();
  const unit = harness.uniqueUnitName('hgw-journal');
  const fakes: FakeQQProcess[] = [];
  t.after(async () => {
    await removeGatewayUnit(harness, unit);
    for (const fake of fakes) await fake.stop();
    await harness.stop();
  });
  const fake = await FakeQQProcess.start(SECRET);
  fakes.push(fake);
  const bot = join(harness.stateDir, 'failing-bot.mjs');
  await writeFile(bot, FAILING_BOT);
  const statePath = join(harness.stateDir, 'journal-state.json');
  const config = join(harness.stateDir, 'journal.yaml');
  await writeFile(
    config,
    gatewayConfig({
      fake,
      secret: { env: 'QQ_SECRET' },
      stateFile: statePath,
      reconnect: { backoff_ms: [100], max_attempts: 2 },
      handler: { type: 'command', argv: [process.execPath, bot] },
    }),
    { mode: 0o600 },
  );
  // One run, one fatal: no restart to add a second one.
  await writeDropIn(harness, unit, ['Restart=no', `Environment=QQ_SECRET=${SECRET}`]);
  const install = await gatewayCli(harness, [
    'install',
    '--config',
    config,
    '--unit',
    unit,
    '--now',
  ]);
  assert.equal(install.code, 0, `install: ${install.stderr}${install.stdout}`);
  await harness.waitFor(
    async () =>
      (await showUs(harness, unit, ['StatusText'])).StatusText === 'running: qqbot connected',
    WAIT_MS,
    { what: `${unit}: connected` },
  );

  await t.test('a message with newlines stays one journal line', async () => {
    await fake.control('message', { content: USER_TEXT });
    const entries = await journalUntil(
      harness,
      unit,
      (all) => all.some((e) => parseLogLine(e.message)?.code === 'GW_ERR_HANDLER_COMMAND_EXIT'),
      'the handler failure',
    );
    const holding = entries.filter((e) => e.message.includes('first line of the user'));
    assert.equal(holding.length, 1, entries.map((e) => e.message).join('\n'));
    const entry = holding[0]!;
    assert.equal(entry.priority, 4, 'a warn line');
    const line = parseTextLine(entry.message);
    assert.equal(line?.code, 'GW_ERR_HANDLER_COMMAND_EXIT');
    assert.equal(line.platform, 'qqbot');
    assert.equal(line.stderr, USER_TEXT, 'the whole text, in one entry');
    assert.ok(
      !entries.some((e) => /^(<3>)?second line|^third/.test(e.message)),
      'no entry starts with a later line of the message',
    );
  });

  await t.test(
    'journalctl -p err -o cat: one readable text line per fatal, with its code',
    async () => {
      await fake.control('refuse', { gateway: true });
      await fake.control('terminate');
      const fatal = await pollState(
        statePath,
        (d) => d.gateway.state === 'fatal',
        WAIT_MS,
        'fatal',
      );
      assert.equal(fatal.gateway.exit_code, 1);
      await journalUntil(
        harness,
        unit,
        (all) => all.some((e) => parseLogLine(e.message)?.msg === 'gateway ended'),
        'the last line',
      );
      const cat = await harness.exec('journalctl', [
        `--user-unit=${unit}`,
        '-p',
        'err',
        '-o',
        'cat',
        '--no-pager',
      ]);
      assert.equal(cat.code, 0, cat.stderr);
      const lines = cat.stdout.split('\n').filter((l) => l !== '');
      t.diagnostic(`journalctl -p err -o cat:\n${lines.join('\n')}`);
      assert.ok(!lines.some((l) => l.startsWith('{')), 'no JSON in the journal');
      const fatalLines = lines.filter((l) => l.startsWith('error qqbot fatal: '));
      assert.equal(fatalLines.length, 1, lines.join('\n'));
      const parsed = parseTextLine(fatalLines[0]!);
      assert.equal(parsed?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      assert.equal(parsed.exit_code, 1);
      // Every gateway err line is a text line, and the code is in it.
      for (const line of lines) {
        const text = parseTextLine(line);
        if (text === undefined) continue;
        assert.match(line, / \(GW_ERR_[A-Z0-9_]+\)( |$)/, line);
      }
      const all = await harness.exec('journalctl', [
        `--user-unit=${unit}`,
        '-o',
        'cat',
        '--no-pager',
      ]);
      t.diagnostic(`journalctl -o cat:\n${all.stdout}`);
      assert.ok(!all.stdout.includes(SECRET), 'the secret is in the journal');
    },
  );
});

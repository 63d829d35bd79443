/**
 * `log_format: text`: the product's own pino logger with the text formatter on its
 * destination. One event is one line, whatever the user wrote; the code is findable; the
 * journald priority prefix stays; secrets are redacted exactly as in JSON.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DestinationStream } from 'pino';
import {
  createLogger,
  resolveLogFormat,
  stdoutIsJournal,
  type LogFormat,
  type Logger,
} from '../../src/log/logger.js';
import { escapeText, formatTextLine, quoteValue } from '../../src/log/text-format.js';
import { parseLogLine, parseTextLine } from '../support/log-lines.js';
import {
  GATEWAY_CLI,
  killAllChildren,
  sandboxEnv,
  scratchRoot,
  writeConfig,
} from '../support/spawn-gateway.js';

const dir = await scratchRoot('hgw-textlog-');
const SECRET = 's3cr3t-value-that-must-not-show';

/** A real logger (the product's configuration) writing raw lines into an array. */
function rawLogger(
  format: LogFormat,
  env: NodeJS.ProcessEnv = {},
  level: 'trace' | 'info' = 'info',
): { log: Logger; raw: string[] } {
  const raw: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void raw.push(line) };
  return { log: createLogger({ level, env, destination, pretty: false, format }), raw };
}

await test('quoting and escaping', async (t) => {
  await t.test('a plain word stays bare; anything else is quoted', () => {
    assert.equal(quoteValue('connected'), 'connected');
    assert.equal(quoteValue('/var/lib/x.json'), '/var/lib/x.json');
    assert.equal(quoteValue(''), '""');
    assert.equal(quoteValue('two words'), '"two words"');
    assert.equal(quoteValue('a=b'), '"a=b"');
    assert.equal(quoteValue('say "hi"'), '"say \\"hi\\""');
    assert.equal(quoteValue('C:\\dir'), '"C:\\\\dir"');
    assert.equal(quoteValue('tab\there'), '"tab\\there"');
  });

  await t.test('control characters and line separators never reach the line raw', () => {
    const nasty = 'a\nb\r\nc\u001b[31md\u0085e\u2028f\u007f';
    assert.equal(escapeText(nasty), 'a\\nb\\r\\nc\\u001b[31md\\u0085e\\u2028f\\u007f');
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(quoteValue(nasty), /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  });

  await t.test('every quoted value reads back as it was written', () => {
    for (const value of ['plain', '', 'two words', 'x="y"', 'back\\slash', 'multi\nline\ttext']) {
      const line = formatTextLine(JSON.stringify({ level: 30, msg: 'm', value }));
      assert.equal(parseTextLine(line)?.value, value, line);
    }
  });

  await t.test('a line that is not a JSON object passes through unchanged', () => {
    assert.equal(formatTextLine('not json\n'), 'not json\n');
    assert.equal(formatTextLine('[1,2]\n'), '[1,2]\n');
  });
});

await test('text lines from the logger', async (t) => {
  await t.test('level, instance, message, (CODE), then key=value; no time, pid or host', () => {
    const { log, raw } = rawLogger('text');
    log
      .child({ platform: 'qqbot' })
      .error({ code: 'GW_ERR_QQ_RECONNECT_EXHAUSTED', attempt: 3, to: 'fatal' }, 'giving up');
    assert.deepEqual(raw, [
      'error qqbot giving up (GW_ERR_QQ_RECONNECT_EXHAUSTED) attempt=3 to=fatal\n',
    ]);
  });

  await t.test('without a platform binding the instance column is "-"', () => {
    const { log, raw } = rawLogger('text');
    log.info({ platforms: ['qqbot', 'qq-test'] }, 'gateway running');
    log.info({ ids: [1, 2], mixed: [1, { a: 1 }] }, 'lists');
    assert.equal(raw[0], 'info  - gateway running platforms=qqbot,qq-test\n');
    assert.equal(raw[1], 'info  - lists ids=1,2 mixed="[1,{\\"a\\":1}]"\n');
    assert.doesNotMatch(raw[0] ?? '', /pid|time|hostname/);
  });

  await t.test('multi-line user text and a stack trace stay one line', () => {
    const { log, raw } = rawLogger('text');
    const child = log.child({ platform: 'qqbot' });
    child.warn({ code: 'GW_ERR_HANDLER_COMMAND_EXIT', stderr: 'first\nsecond\n' }, 'hi\nthere');
    child.error({ err: new Error('boom\nbang') }, 'with an error');
    assert.equal(raw.length, 2);
    for (const line of raw) {
      assert.equal(line.indexOf('\n'), line.length - 1, `one line: ${JSON.stringify(line)}`);
    }
    const warn = parseTextLine(raw[0]!);
    assert.equal(warn?.msg, 'hi\\nthere');
    assert.equal(warn?.code, 'GW_ERR_HANDLER_COMMAND_EXIT');
    assert.equal(warn?.stderr, 'first\nsecond\n');
    const error = parseTextLine(raw[1]!);
    assert.equal(error?.['err.message'], 'boom\nbang');
    assert.match(String(error?.['err.stack']), /^Error: boom\nbang\n {4}at /);
  });

  await t.test('under journald the <N> priority prefix comes first, in both formats', () => {
    for (const format of ['text', 'json'] as const) {
      const { log, raw } = rawLogger(format, { JOURNAL_STREAM: '1:1' }, 'trace');
      log.fatal('f');
      log.error('e');
      log.warn('w');
      log.info('i');
      log.debug('d');
      log.trace('t');
      assert.deepEqual(
        raw.map((line) => /^<(\d)>/.exec(line)?.[1]),
        ['3', '3', '4', '6', '7', '7'],
        format,
      );
      assert.deepEqual(
        raw.map((line) => parseLogLine(line)?.msg),
        ['f', 'e', 'w', 'i', 'd', 't'],
      );
    }
    const { log, raw } = rawLogger('text', { JOURNAL_STREAM: '1:1' });
    log.error({ code: 'GW_ERR_INTERNAL' }, 'bug');
    assert.equal(raw[0], '<3>error - bug (GW_ERR_INTERNAL)\n');
  });

  await t.test("pino's redaction holds in both formats", () => {
    for (const format of ['text', 'json'] as const) {
      const { log, raw } = rawLogger(format);
      const child = log.child({ platform: 'qqbot' });
      child.info(
        {
          client_secret: SECRET,
          token: SECRET,
          headers: { authorization: `Bearer ${SECRET}` },
          request: { api_key: SECRET, access_token: SECRET },
        },
        'calling',
      );
      assert.equal(raw.length, 1);
      assert.ok(!raw[0]!.includes(SECRET), `${format}: ${raw[0]}`);
      const line = parseLogLine(raw[0]!);
      const value = (key: string): unknown =>
        format === 'text'
          ? line?.[key]
          : key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], line);
      for (const key of [
        'client_secret',
        'token',
        'headers.authorization',
        'request.api_key',
        'request.access_token',
      ]) {
        assert.equal(value(key), '[redacted]', `${format}: ${key}`);
      }
    }
  });
});

await test('log_format auto', async (t) => {
  t.after(killAllChildren);
  await t.test('text only when JOURNAL_STREAM names the dev:inode of stdout', () => {
    const stat = fstatSync(1);
    const own = `${stat.dev}:${stat.ino}`;
    assert.equal(stdoutIsJournal({ JOURNAL_STREAM: own }), true);
    assert.equal(resolveLogFormat('auto', { JOURNAL_STREAM: own }), 'text');
    assert.equal(
      resolveLogFormat('auto', { JOURNAL_STREAM: `${stat.dev}:${stat.ino + 1}` }),
      'json',
    );
    assert.equal(resolveLogFormat('auto', { JOURNAL_STREAM: 'garbage' }), 'json');
    assert.equal(resolveLogFormat('auto', {}), 'json');
    assert.equal(resolveLogFormat('json', { JOURNAL_STREAM: own }), 'json');
    assert.equal(resolveLogFormat('text', {}), 'text');
  });

  /**
   * The CLI with stdout on a file and JOURNAL_STREAM naming that file: what journald sets up,
   * without journald. Returns the exit code and the file's lines.
   */
  async function runWithJournalStdout(
    name: string,
    config: Record<string, unknown>,
  ): Promise<{ code: number | null; lines: string[] }> {
    const file = await writeConfig(dir, config, `${name}.yaml`);
    const out = join(dir, `${name}.out`);
    const fd = openSync(out, 'w');
    const stat = fstatSync(fd);
    try {
      const child = spawn(process.execPath, [GATEWAY_CLI, 'run', '--config', file], {
        env: sandboxEnv(dir, { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` }),
        stdio: ['ignore', fd, 'ignore'],
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return {
        code,
        lines: readFileSync(out, 'utf8')
          .split('\n')
          .filter((l) => l !== ''),
      };
    } finally {
      closeSync(fd);
    }
  }

  await t.test('the gateway writes text lines when its stdout is the journal stream', async () => {
    const { code, lines } = await runWithJournalStdout('auto', {
      state_file: join(dir, 'auto-state.json'),
      platforms: { scripted: { then: 'return', after_ms: 10 } },
    });
    assert.equal(code, 1);
    assert.ok(lines.length >= 3, lines.join('\n'));
    for (const line of lines) assert.match(line, /^<\d>(trace|debug|info |warn |error|fatal) /);
    const fatal = lines.map((l) => parseLogLine(l)).find((l) => l?.msg?.startsWith('fatal: '));
    assert.equal(fatal?.code, 'GW_ERR_ADAPTER_RETURNED');
    assert.equal(fatal?.exit_code, 1);
  });

  await t.test('the boot logger (a config error) writes text there too', async () => {
    const { code, lines } = await runWithJournalStdout('boot', {
      state_file: join(dir, 'boot-state.json'),
      log_formt: 'text',
      platforms: { scripted: {} },
    });
    assert.equal(code, 78);
    const line = lines.map((l) => parseLogLine(l)).find((l) => l?.code === 'GW_ERR_CONFIG_INVALID');
    assert.ok(line && lines[0]?.startsWith('<3>error - '), lines.join('\n'));
    assert.equal(line.key, 'log_formt');
  });

  await t.test('log_format: json keeps JSON lines on the journal stream', async () => {
    const { code, lines } = await runWithJournalStdout('json', {
      state_file: join(dir, 'json-state.json'),
      log_format: 'json',
      platforms: { scripted: { then: 'return', after_ms: 10 } },
    });
    assert.equal(code, 1);
    for (const line of lines) assert.match(line, /^<\d>\{"level":/);
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { captureLogger } from '../support/capture.js';
import {
  killAllChildren,
  runGatewayCli,
  sandboxEnv,
  splitPriority,
  writeConfig,
  scratchRoot,
} from '../support/spawn-gateway.js';

const dir = await scratchRoot('hgw-log-');

await test('createLogger', async (t) => {
  t.after(killAllChildren);
  await t.test('writes one JSON object per line with a numeric level and a code field', () => {
    const { log, raw, lines } = captureLogger('info');
    log.error({ code: 'GW_ERR_INTERNAL' }, 'boom');
    log.debug('not at info');
    assert.equal(raw.length, 1);
    assert.ok(raw[0]?.endsWith('\n'));
    assert.equal(lines[0]?.level, 50);
    assert.equal(lines[0]?.code, 'GW_ERR_INTERNAL');
    assert.equal(lines[0]?.pid, process.pid);
  });

  await t.test('without JOURNAL_STREAM, lines have no priority prefix', () => {
    const { log, raw } = captureLogger('info', {});
    log.error('x');
    assert.ok(raw[0]?.startsWith('{'));
  });
  // The <N> prefix of each level, in both formats: text-format.test.ts.
});

await test('journald priorities end to end', async (t) => {
  t.after(killAllChildren);
  await t.test(
    'with JOURNAL_STREAM=1:1, the gateway error lines start with <3> and info lines with <6>',
    async () => {
      const file = await writeConfig(dir, {
        state_file: `${dir}/state.json`,
        platforms: { scripted: { then: 'return', after_ms: 10 } },
      });
      const run = await runGatewayCli(['run', '--config', file], {
        env: sandboxEnv(dir, { JOURNAL_STREAM: '1:1' }),
      });
      assert.equal(run.code, 1);
      const raw = run.stdout.split('\n').filter((l) => l !== '');
      assert.ok(raw.length >= 3);
      let errors = 0;
      let infos = 0;
      for (const line of raw) {
        const { priority, body } = splitPriority(line);
        const parsed = JSON.parse(body) as { level: number; code?: string };
        if (parsed.level === 50) {
          assert.equal(priority, 3, line);
          errors += 1;
        } else if (parsed.level === 30) {
          assert.equal(priority, 6, line);
          infos += 1;
        }
        assert.notEqual(priority, null, `every line has a prefix: ${line}`);
      }
      assert.ok(errors >= 1 && infos >= 1);
      assert.ok(run.codes.includes('GW_ERR_ADAPTER_RETURNED'));
    },
  );
});

/**
 * Issue #16, item 1, on the handler side: an OpenAI-compatible server answering 401 with
 * `Incorrect API key provided: Bearer <key>`. The gateway (the test CLI, a scripted platform
 * emitting one event) logs the failure with an excerpt of the answer; the key must be in
 * none of stdout, stderr and the state file, while the rest of the answer is.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeOpenAi } from '../fakes/openai/server.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  scratchRoot,
} from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-echoed-key-');

await test('item 1: an API key echoed in a 401 reaches no log line and no state file', async (t) => {
  t.after(killAllChildren);
  const fake = await startFakeOpenAi({ apiKey: 'the-right-key', echoAuthorization: true });
  t.after(() => fake.close());
  const key = 'sk-wrong-"\\-5e1f0a9c';
  const g = await launchGateway(
    join(root, 'g1'),
    {
      handler: {
        type: 'openai',
        base_url: fake.baseUrl,
        model: 'fake-model',
        api_key: '${HGW_TEST_OPENAI_KEY}',
        max_attempts: 1,
      },
      platforms: { scripted: { then: 'echo_events', events: 1 } },
    },
    { HGW_TEST_OPENAI_KEY: key },
  );
  const failed = await g.proc.waitForLine(
    (l) => l.code === 'GW_ERR_HANDLER_HTTP_STATUS',
    'the handler failure',
    60_000,
  );
  assert.equal(failed.status, 401);
  assert.match(String(failed.response_excerpt), /Incorrect API key provided: Bearer \[redacted\]/);
  await g.proc.waitForState(g.statePath, allConnected, 'connected', 60_000);
  g.proc.signal('SIGTERM');
  assert.equal((await g.proc.waitForExit(60_000)).code, 0);
  const state = await readFile(g.statePath, 'utf8');
  const once = JSON.stringify(key).slice(1, -1);
  for (const [where, text] of Object.entries({
    stdout: g.proc.stdout,
    stderr: g.proc.stderr,
    'state file': state,
  })) {
    for (const form of [key, once, JSON.stringify(once).slice(1, -1), '5e1f0a9c']) {
      assert.ok(!text.includes(form), `a form of the key is in ${where}`);
    }
  }
});
